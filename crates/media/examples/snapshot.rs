//! Writes one test-pattern frame as a JPEG (or raw I420 for a `.yuv` name), to look at it.
//!
//! `cargo run -p doorbell-media --example snapshot -- OUT.jpg|OUT.yuv [WIDTHxHEIGHT]`

use std::time::SystemTime;

use doorbell_media::{TestPattern, VideoFormat, encode_jpeg};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: snapshot OUT.jpg [WIDTHxHEIGHT]")?;
    let size = args.next().unwrap_or_else(|| "640x480".into());
    let (width, height) = size.split_once('x').ok_or("size must look like 640x480")?;
    let format = VideoFormat {
        width: width.parse()?,
        height: height.parse()?,
        fps: 30,
    };
    let frame = TestPattern::new(format)?.frame_at(123, SystemTime::now());
    if out.ends_with(".yuv") {
        // Raw I420, e.g. for `ffplay -f rawvideo -pixel_format yuv420p -video_size 640x480`.
        std::fs::write(&out, [frame.y, frame.u, frame.v].concat())?;
    } else {
        std::fs::write(&out, encode_jpeg(&frame, 90)?)?;
    }
    println!("wrote {out} ({format})");
    Ok(())
}
