//! GPIO lines as the doorbell uses them, shared by the button (trigger) and the LED and chime
//! (indicator): where a chip lives, durations in line specs, what a failure means to the user,
//! and the chips `doorbell devices` lists.

use std::path::PathBuf;
use std::time::Duration;

/// `gpiochip0` → `/dev/gpiochip0`; paths stay as they are.
pub fn chip_path(chip: &str) -> PathBuf {
    if chip.starts_with('/') {
        PathBuf::from(chip)
    } else {
        PathBuf::from("/dev").join(chip)
    }
}

/// `50ms`, `0.1s`, `1s` → a duration of at most 10 s.
pub fn parse_millis(text: &str) -> Result<Duration, String> {
    let err = || format!("{text:?} is not a duration like 50ms or 0.1s");
    let seconds: f64 = if let Some(ms) = text.strip_suffix("ms") {
        ms.trim().parse::<f64>().map_err(|_| err())? / 1000.0
    } else if let Some(s) = text.strip_suffix('s') {
        s.trim().parse::<f64>().map_err(|_| err())?
    } else {
        return Err(err());
    };
    if !(0.0..=10.0).contains(&seconds) {
        return Err(format!("{text:?} is outside 0..10s"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// What went wrong with a GPIO line, said so that the user knows what to check.
pub fn gpio_problem(chip: &std::path::Path, line: u32, error: &gpiocdev::Error) -> String {
    let text = error.to_string();
    let hint = if text.contains("No such file") || text.contains("NotFound") {
        "the chip does not exist; `doorbell devices` lists the GPIO chips"
    } else if text.contains("ermission") {
        "permission denied: add the user running the doorbell to the `gpio` group"
    } else if text.contains("busy") || text.contains("Busy") {
        "the line is in use by another program or a kernel driver; pick another line"
    } else if text.contains("nvalid argument") {
        "the chip has no such line (or refused the settings); `doorbell devices` lists the lines"
    } else {
        "check the chip and line numbers with `doorbell devices`"
    };
    format!("GPIO {}:{line}: {text}: {hint}", chip.display())
}

/// One GPIO chip as `doorbell devices` shows it.
#[derive(Debug, Clone)]
pub struct GpioChipInfo {
    pub path: PathBuf,
    pub name: String,
    pub label: String,
    /// The lines, or why they could not be read.
    pub lines: Result<Vec<GpioLineInfo>, String>,
}

/// One line of a chip.
#[derive(Debug, Clone)]
pub struct GpioLineInfo {
    pub offset: u32,
    /// The board's name for it, e.g. `GPIO17` on a Pi.
    pub name: String,
    /// Who holds it (a driver or program), if anyone.
    pub consumer: Option<String>,
    pub output: bool,
}

/// Every GPIO character device with its lines. No chips (not a Pi, or no permission to
/// /dev) is an empty list.
pub fn list_gpio_chips() -> Vec<GpioChipInfo> {
    let paths = gpiocdev::chip::chips().unwrap_or_default();
    paths
        .into_iter()
        .map(|path| match gpiocdev::chip::Chip::from_path(&path) {
            Err(e) => GpioChipInfo {
                lines: Err(e.to_string()),
                name: String::new(),
                label: String::new(),
                path,
            },
            Ok(chip) => {
                let (name, label) = match chip.info() {
                    Ok(info) => (info.name, info.label),
                    Err(_) => (chip.name(), String::new()),
                };
                let lines = chip
                    .line_info_iter()
                    .map(|lines| {
                        lines
                            .filter_map(Result::ok)
                            .map(|info| GpioLineInfo {
                                offset: info.offset,
                                name: info.name,
                                consumer: (info.used || !info.consumer.is_empty())
                                    .then_some(info.consumer)
                                    .map(|c| if c.is_empty() { "kernel".to_owned() } else { c }),
                                output: info.direction == gpiocdev::line::Direction::Output,
                            })
                            .collect()
                    })
                    .map_err(|e| e.to_string());
                GpioChipInfo {
                    path,
                    name,
                    label,
                    lines,
                }
            }
        })
        .collect()
}
