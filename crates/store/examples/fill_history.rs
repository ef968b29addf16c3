//! Fills a data dir's ring history with N rings (each with a 40 KiB JPEG-like snapshot), for
//! the history benchmark in BENCHMARKS.md:
//!
//!     cargo run --release -p doorbell-store --example fill_history -- DIR 100000

use doorbell_store::Store;
use std::time::{Duration, SystemTime};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: fill_history DIR [N]")?;
    let count: u64 = args
        .next()
        .map_or(Ok(100_000), |n| n.parse())
        .map_err(|e| format!("{e}"))?;
    let store = Store::open(std::path::Path::new(&dir)).map_err(|e| e.to_string())?;
    let start = SystemTime::now() - Duration::from_secs(count * 60);
    let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain(std::iter::repeat_n(7, 40 * 1024))
        .collect();
    for n in 0..count {
        let room = format!("BenchRoom{n:013}");
        let at = start + Duration::from_secs(n * 60);
        store.ring_started(&room, at).map_err(|e| e.to_string())?;
        if n % 3 == 0 {
            store
                .ring_answered(&room, Some("bench"), at + Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
        }
        store
            .attach_snapshot(&room, &jpeg)
            .map_err(|e| e.to_string())?;
        store
            .ring_ended(&room, at + Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
    }
    println!("{count} rings in {dir}");
    Ok(())
}
