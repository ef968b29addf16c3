//! `doorbell devices`: what a new Pi has to offer, in the words the config uses — cameras with
//! their formats, sizes and rates, ALSA capture and playback devices, GPIO chips and lines.

use clap::Args;
use doorbell_agent::gpio::{GpioChipInfo, list_gpio_chips};
use doorbell_media::{CameraInfo, CameraPixelFormat, list_cameras};
use std::fmt::Write as _;

#[derive(Debug, Clone, Default, Args)]
pub struct DevicesArgs {
    /// Also list every GPIO line (by default only the lines of the first chip that are free).
    #[arg(long)]
    pub all_lines: bool,
}

/// An ALSA PCM, as far as this report needs it (kept apart from the `alsa` feature's type so
/// the report is tested in every build).
#[derive(Debug, Clone)]
pub struct AlsaEntry {
    pub name: String,
    pub description: String,
    pub capture: bool,
    pub playback: bool,
}

/// Prints the report on stdout.
pub fn run(args: DevicesArgs) -> Result<(), String> {
    let report = report(&list_cameras(), &alsa_devices(), &list_gpio_chips(), &args);
    print!("{report}");
    Ok(())
}

#[cfg(feature = "alsa")]
fn alsa_devices() -> Result<Vec<AlsaEntry>, String> {
    doorbell_media::list_alsa_devices().map(|devices| {
        devices
            .into_iter()
            .map(|d| AlsaEntry {
                name: d.name,
                description: d.description,
                capture: d.capture,
                playback: d.playback,
            })
            .collect()
    })
}

#[cfg(not(feature = "alsa"))]
fn alsa_devices() -> Result<Vec<AlsaEntry>, String> {
    Err(
        "this doorbell was built without ALSA support (build with `--features alsa`, as \
         scripts/build-pi does); without it the microphone and speaker cannot be used"
            .into(),
    )
}

/// The whole report as text.
pub fn report(
    cameras: &[CameraInfo],
    alsa: &Result<Vec<AlsaEntry>, String>,
    chips: &[GpioChipInfo],
    args: &DevicesArgs,
) -> String {
    let mut out = String::new();
    cameras_section(&mut out, cameras);
    alsa_section(&mut out, alsa);
    gpio_section(&mut out, chips, args.all_lines);
    out
}

fn cameras_section(out: &mut String, cameras: &[CameraInfo]) {
    let _ = writeln!(out, "Cameras (--video):");
    if cameras.is_empty() {
        let _ = writeln!(
            out,
            "  none found. Plug in a USB (UVC) webcam; `ls /dev/video*` should show it."
        );
    }
    for camera in cameras {
        let _ = writeln!(
            out,
            "  {}  {} ({})",
            camera.path.display(),
            if camera.name.is_empty() {
                "?"
            } else {
                &camera.name
            },
            if camera.driver.is_empty() {
                "?"
            } else {
                &camera.driver
            }
        );
        match &camera.modes {
            Err(why) => {
                let _ = writeln!(out, "    cannot be used: {why}");
            }
            Ok(modes) if modes.is_empty() => {
                let _ = writeln!(
                    out,
                    "    offers neither YUYV nor MJPEG: the agent cannot use it"
                );
            }
            Ok(modes) => {
                for format in [CameraPixelFormat::Yuyv, CameraPixelFormat::Mjpeg] {
                    let sizes: Vec<String> = modes
                        .iter()
                        .filter(|m| m.pixel_format == format)
                        .map(|m| format!("{}x{} {}", m.width, m.height, m.rates))
                        .collect();
                    if !sizes.is_empty() {
                        let _ = writeln!(out, "    {:<5} {}", format.name(), sizes.join(", "));
                    }
                }
                let _ = writeln!(
                    out,
                    "    use: --video {}  (any size above; the nearest is taken)",
                    camera.path.display()
                );
            }
        }
        if !camera.other_formats.is_empty() {
            let _ = writeln!(
                out,
                "    also offers (not used): {}",
                camera.other_formats.join(", ")
            );
        }
    }
    let _ = writeln!(out);
}

fn alsa_section(out: &mut String, alsa: &Result<Vec<AlsaEntry>, String>) {
    match alsa {
        Err(why) => {
            let _ = writeln!(out, "Microphones and speakers (--audio-in, --audio-out):");
            let _ = writeln!(out, "  {why}");
        }
        Ok(devices) => {
            for (title, flag, wanted) in [
                ("Microphones (--audio-in alsa:NAME)", "--audio-in", true),
                ("Speakers (--audio-out alsa:NAME)", "--audio-out", false),
            ] {
                let _ = writeln!(out, "{title}:");
                let listed: Vec<&AlsaEntry> = devices
                    .iter()
                    .filter(|d| if wanted { d.capture } else { d.playback })
                    .collect();
                if listed.is_empty() {
                    let _ = writeln!(
                        out,
                        "  none found (is the sound device plugged in? `{}` needs one)",
                        flag
                    );
                }
                for device in listed {
                    let _ = writeln!(out, "  alsa:{}", device.name);
                    if !device.description.is_empty() {
                        let _ = writeln!(out, "      {}", device.description);
                    }
                }
            }
            let _ = writeln!(
                out,
                "  Prefer plughw:CARD=...,DEV=... names (they convert formats and survive \
                 renumbering);\n  `default` shares the card with other programs."
            );
        }
    }
    let _ = writeln!(out);
}

fn gpio_section(out: &mut String, chips: &[GpioChipInfo], all_lines: bool) {
    let _ = writeln!(
        out,
        "GPIO (--trigger gpio:CHIP:LINE, LED and chime outputs gpio:CHIP:LINE):"
    );
    if chips.is_empty() {
        let _ = writeln!(
            out,
            "  no GPIO chips found (not a Raspberry Pi, or no access to /dev/gpiochip*: \
             add the user to the `gpio` group)"
        );
    }
    for (index, chip) in chips.iter().enumerate() {
        let chip_name = chip
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| chip.path.display().to_string());
        match &chip.lines {
            Err(why) => {
                let _ = writeln!(out, "  {chip_name}: cannot be read: {why}");
            }
            Ok(lines) => {
                let _ = writeln!(out, "  {chip_name} [{}] {} lines", chip.label, lines.len());
                // On a Pi the header pins are on the first chip; the others are rarely wanted.
                if index > 0 && !all_lines {
                    continue;
                }
                for line in lines {
                    let state = match &line.consumer {
                        Some(consumer) => format!("used by {consumer}"),
                        None if line.output => "free (output)".to_owned(),
                        None => "free".to_owned(),
                    };
                    if line.consumer.is_some() && !all_lines {
                        continue;
                    }
                    let _ = writeln!(
                        out,
                        "    gpio:{chip_name}:{:<3} {:<14} {state}",
                        line.offset, line.name
                    );
                }
            }
        }
    }
    if !chips.is_empty() && !all_lines {
        let _ = writeln!(out, "  (lines in use and other chips: --all-lines)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorbell_agent::gpio::GpioLineInfo;
    use doorbell_media::{CameraMode, FrameRates};
    use std::path::PathBuf;

    fn camera() -> CameraInfo {
        CameraInfo {
            path: PathBuf::from("/dev/video0"),
            name: "HD Webcam C270".into(),
            driver: "uvcvideo".into(),
            modes: Ok(vec![
                CameraMode {
                    pixel_format: CameraPixelFormat::Yuyv,
                    width: 640,
                    height: 480,
                    rates: FrameRates::List(vec![30, 15]),
                },
                CameraMode {
                    pixel_format: CameraPixelFormat::Mjpeg,
                    width: 1280,
                    height: 720,
                    rates: FrameRates::List(vec![30]),
                },
            ]),
            other_formats: vec!["H264 (H.264)".into()],
        }
    }

    fn chip() -> GpioChipInfo {
        let line = |offset: u32, name: &str, consumer: Option<&str>| GpioLineInfo {
            offset,
            name: name.into(),
            consumer: consumer.map(str::to_owned),
            output: false,
        };
        GpioChipInfo {
            path: PathBuf::from("/dev/gpiochip0"),
            name: "gpiochip0".into(),
            label: "pinctrl-bcm2711".into(),
            lines: Ok(vec![
                line(17, "GPIO17", None),
                line(18, "GPIO18", Some("doorbell LED")),
            ]),
        }
    }

    #[test]
    fn the_report_says_what_to_put_in_the_config() {
        let alsa = Ok(vec![
            AlsaEntry {
                name: "plughw:CARD=U0x46d0x825,DEV=0".into(),
                description: "USB Device 0x46d:0x825 — USB Audio".into(),
                capture: true,
                playback: false,
            },
            AlsaEntry {
                name: "default".into(),
                description: String::new(),
                capture: true,
                playback: true,
            },
        ]);
        let text = report(&[camera()], &alsa, &[chip()], &DevicesArgs::default());
        for expected in [
            "/dev/video0  HD Webcam C270 (uvcvideo)",
            "YUYV  640x480 30/15 fps",
            "MJPEG 1280x720 30 fps",
            "use: --video /dev/video0",
            "also offers (not used): H264",
            "alsa:plughw:CARD=U0x46d0x825,DEV=0",
            "gpio:gpiochip0:17  GPIO17",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
        }
        // The webcam mic is capture-only: it is not offered as a speaker.
        let speakers = &text[text.find("Speakers").unwrap()..];
        assert!(!speakers[..speakers.find("Prefer").unwrap()].contains("U0x46d0x825"));
        // Lines in use are hidden unless asked for.
        assert!(!text.contains("used by doorbell LED"));
        let all = report(
            &[camera()],
            &alsa,
            &[chip()],
            &DevicesArgs { all_lines: true },
        );
        assert!(all.contains("used by doorbell LED"), "{all}");
    }

    #[test]
    fn an_empty_machine_gets_hints() {
        let text = report(
            &[],
            &Err("built without ALSA".into()),
            &[],
            &DevicesArgs::default(),
        );
        assert!(text.contains("Plug in a USB (UVC) webcam"), "{text}");
        assert!(text.contains("built without ALSA"), "{text}");
        assert!(text.contains("no GPIO chips found"), "{text}");
    }

    #[test]
    fn run_works_on_a_machine_without_devices() {
        assert!(run(DevicesArgs::default()).is_ok());
    }
}
