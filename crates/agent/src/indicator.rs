//! The doorbell's outputs: an LED that blinks while the visitor waits for the owner, stays on
//! during a call and is off when idle, and a chime (relay or buzzer) pulsed on a press.
//!
//! Each output is an [`OutputLine`] (a GPIO line on the Pi, a recorder in tests) driven by its
//! own task, so a slow or failing line never holds up the call. Wiring: the agent calls
//! [`Indicator::show`] when the LED's mode changes and [`Indicator::chime`] on a press.

use crate::call_flow::LedMode;
use crate::event_sink::EventSink;
use crate::events::AgentEvent;
use crate::gpio::{chip_path, gpio_problem};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Half a blink: on this long, then off this long.
pub const BLINK_HALF_PERIOD: Duration = Duration::from_millis(500);
/// How long the chime line is switched on per press.
pub const DEFAULT_CHIME_PULSE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum IndicatorError {
    #[error("bad output line {spec:?}: {why}")]
    BadSpec { spec: String, why: String },
    #[error("{0}")]
    Gpio(String),
}

/// A switchable output (LED, relay, buzzer).
pub trait OutputLine: Send + 'static {
    fn set(&mut self, on: bool) -> Result<(), IndicatorError>;
}

/// A parsed `gpio:CHIP:LINE[:active-low]` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLineSpec {
    pub chip: PathBuf,
    pub line: u32,
    /// The output is on when the pin is low (e.g. an LED between 3.3 V and the pin, or a
    /// low-triggered relay board).
    pub active_low: bool,
}

impl OutputLineSpec {
    /// Parses `gpio:CHIP:LINE[:active-low|active-high]`.
    pub fn parse(spec: &str) -> Result<Self, IndicatorError> {
        let bad = |why: &str| IndicatorError::BadSpec {
            spec: spec.to_owned(),
            why: format!("{why}; expected gpio:CHIP:LINE[:active-low], e.g. gpio:gpiochip0:27"),
        };
        let rest = spec
            .strip_prefix("gpio:")
            .ok_or_else(|| bad("not a GPIO line"))?;
        let mut parts = rest.split(':');
        let chip = parts
            .next()
            .filter(|c| !c.is_empty())
            .map(chip_path)
            .ok_or_else(|| bad("no chip"))?;
        let line = parts
            .next()
            .and_then(|l| l.parse::<u32>().ok())
            .ok_or_else(|| bad("the line must be a number"))?;
        let mut active_low = false;
        for option in parts {
            match option {
                "active-low" => active_low = true,
                "active-high" => active_low = false,
                other => return Err(bad(&format!("unknown option {other:?}"))),
            }
        }
        Ok(Self {
            chip,
            line,
            active_low,
        })
    }
}

/// An output GPIO line, requested for as long as this lives (released on drop).
pub struct GpioOutputLine {
    request: gpiocdev::Request,
}

impl GpioOutputLine {
    /// Requests the line as an output, switched off. `consumer` shows up in `gpioinfo`.
    pub fn open(spec: &OutputLineSpec, consumer: &str) -> Result<Self, IndicatorError> {
        let mut builder = gpiocdev::Request::builder();
        builder
            .on_chip(&spec.chip)
            .with_consumer(consumer)
            .with_line(spec.line);
        if spec.active_low {
            builder.as_active_low();
        }
        builder.as_output(gpiocdev::line::Value::Inactive);
        let request = builder
            .request()
            .map_err(|e| IndicatorError::Gpio(gpio_problem(&spec.chip, spec.line, &e)))?;
        Ok(Self { request })
    }
}

impl OutputLine for GpioOutputLine {
    fn set(&mut self, on: bool) -> Result<(), IndicatorError> {
        let value = if on {
            gpiocdev::line::Value::Active
        } else {
            gpiocdev::line::Value::Inactive
        };
        self.request
            .set_lone_value(value)
            .map_err(|e| IndicatorError::Gpio(format!("cannot switch the GPIO line: {e}")))
    }
}

/// The running outputs. Dropping it switches them off and ends their tasks.
pub struct Indicator {
    led: Option<watch::Sender<LedMode>>,
    chime: Option<mpsc::Sender<()>>,
}

impl Indicator {
    /// Starts a task per configured output on the current tokio runtime.
    pub fn spawn(
        led: Option<Box<dyn OutputLine>>,
        chime: Option<(Box<dyn OutputLine>, Duration)>,
    ) -> Self {
        let led = led.map(|line| {
            let (tx, rx) = watch::channel(LedMode::Off);
            tokio::spawn(drive_led(line, rx));
            tx
        });
        let chime = chime.map(|(line, pulse)| {
            // One pending pulse is enough: presses during a pulse add nothing.
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(drive_chime(line, rx, pulse));
            tx
        });
        Self { led, chime }
    }

    /// Opens the configured LED and chime lines; a line that cannot be opened is reported as an
    /// `error` event and left out (the doorbell works without them).
    pub fn open(
        led: Option<&OutputLineSpec>,
        chime: Option<(&OutputLineSpec, Duration)>,
        events: &mut dyn EventSink,
    ) -> Self {
        let mut open = |spec: &OutputLineSpec, what: &str| -> Option<Box<dyn OutputLine>> {
            match GpioOutputLine::open(spec, "doorbell") {
                Ok(line) => Some(Box::new(line)),
                Err(e) => {
                    events.emit(&AgentEvent::Error {
                        message: format!("{what} line unavailable, going on without it: {e}"),
                    });
                    None
                }
            }
        };
        let led = led.and_then(|spec| open(spec, "LED"));
        let chime = chime.and_then(|(spec, pulse)| open(spec, "chime").map(|line| (line, pulse)));
        if led.is_none() && chime.is_none() {
            Indicator::none()
        } else {
            Indicator::spawn(led, chime)
        }
    }

    /// Nothing configured.
    pub fn none() -> Self {
        Self {
            led: None,
            chime: None,
        }
    }

    pub fn show(&self, mode: LedMode) {
        if let Some(led) = &self.led {
            led.send_if_modified(|current| {
                let changed = *current != mode;
                *current = mode;
                changed
            });
        }
    }

    /// Pulses the chime (never waits; a press during a pulse is absorbed by it).
    pub fn chime(&self) {
        if let Some(chime) = &self.chime {
            let _ = chime.try_send(());
        }
    }
}

/// Sets the line, logging only the first failure of a run of failures (a broken line would
/// otherwise log twice a second).
fn set_line(line: &mut dyn OutputLine, on: bool, what: &str, failing: &mut bool) {
    match line.set(on) {
        Ok(()) => *failing = false,
        Err(error) => {
            if !*failing {
                tracing::warn!("the {what} output failed: {error}");
            }
            *failing = true;
        }
    }
}

async fn drive_led(mut line: Box<dyn OutputLine>, mut modes: watch::Receiver<LedMode>) {
    let mut failing = false;
    set_line(line.as_mut(), false, "LED", &mut failing);
    loop {
        let mode = *modes.borrow_and_update();
        match mode {
            LedMode::Off | LedMode::On => {
                set_line(line.as_mut(), mode == LedMode::On, "LED", &mut failing);
                if modes.changed().await.is_err() {
                    break;
                }
            }
            LedMode::Blink => {
                let mut lit = true;
                loop {
                    set_line(line.as_mut(), lit, "LED", &mut failing);
                    tokio::select! {
                        changed = modes.changed() => {
                            if changed.is_err() {
                                set_line(line.as_mut(), false, "LED", &mut failing);
                                return;
                            }
                            break;
                        }
                        () = tokio::time::sleep(BLINK_HALF_PERIOD) => lit = !lit,
                    }
                }
            }
        }
    }
    set_line(line.as_mut(), false, "LED", &mut failing);
}

async fn drive_chime(
    mut line: Box<dyn OutputLine>,
    mut pulses: mpsc::Receiver<()>,
    pulse: Duration,
) {
    let mut failing = false;
    set_line(line.as_mut(), false, "chime", &mut failing);
    while pulses.recv().await.is_some() {
        set_line(line.as_mut(), true, "chime", &mut failing);
        tokio::time::sleep(pulse).await;
        set_line(line.as_mut(), false, "chime", &mut failing);
        // Presses that came in during the pulse belong to it.
        while pulses.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    /// Records every switch as (ms since `start`, on).
    #[derive(Clone)]
    struct Recorder {
        start: Instant,
        log: Arc<Mutex<Vec<(u64, bool)>>>,
    }

    impl OutputLine for Recorder {
        fn set(&mut self, on: bool) -> Result<(), IndicatorError> {
            let at = self.start.elapsed().as_millis() as u64;
            self.log.lock().unwrap().push((at, on));
            Ok(())
        }
    }

    fn recorder() -> Recorder {
        Recorder {
            start: Instant::now(),
            log: Arc::default(),
        }
    }

    /// Drops repeated values: what an observer of the pin sees.
    fn transitions(rec: &Recorder) -> Vec<(u64, bool)> {
        let mut out: Vec<(u64, bool)> = Vec::new();
        for &(at, on) in rec.log.lock().unwrap().iter() {
            if out.last().map(|&(_, last)| last) != Some(on) {
                out.push((at, on));
            }
        }
        out
    }

    async fn advance_to(start: Instant, ms: u64) {
        tokio::time::sleep_until(start + Duration::from_millis(ms)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn led_blinks_while_waiting_is_on_in_a_call_and_off_when_idle() {
        let rec = recorder();
        let start = rec.start;
        let indicator = Indicator::spawn(Some(Box::new(rec.clone())), None);
        advance_to(start, 100).await;
        indicator.show(LedMode::Blink);
        advance_to(start, 1_650).await;
        indicator.show(LedMode::On);
        advance_to(start, 5_000).await;
        indicator.show(LedMode::Off);
        advance_to(start, 6_000).await;
        assert_eq!(
            transitions(&rec),
            vec![
                (0, false),
                (100, true),
                (600, false),
                (1_100, true),
                (1_600, false),
                (1_650, true),
                (5_000, false),
            ]
        );
        drop(indicator);
    }

    #[tokio::test(start_paused = true)]
    async fn call_states_map_to_led_modes() {
        use crate::call_flow::CallState;
        let room = doorbell_protocol::RoomId::parse("abcd").unwrap();
        let deadline = std::time::Instant::now();
        assert_eq!(LedMode::for_call_state(&CallState::Idle), LedMode::Off);
        assert_eq!(
            LedMode::for_call_state(&CallState::WaitingForPeer {
                room: room.clone(),
                deadline
            }),
            LedMode::Blink
        );
        assert_eq!(
            LedMode::for_call_state(&CallState::InCall {
                room,
                media_connected: true,
                deadline,
                call_deadline: deadline,
            }),
            LedMode::On
        );
    }

    #[tokio::test(start_paused = true)]
    async fn chime_pulses_once_per_press_and_absorbs_presses_during_a_pulse() {
        let rec = recorder();
        let start = rec.start;
        let indicator = Indicator::spawn(None, Some((Box::new(rec.clone()), DEFAULT_CHIME_PULSE)));
        advance_to(start, 1_000).await;
        indicator.chime();
        advance_to(start, 1_050).await;
        indicator.chime(); // during the pulse
        indicator.chime();
        advance_to(start, 2_000).await;
        indicator.chime();
        advance_to(start, 3_000).await;
        assert_eq!(
            transitions(&rec),
            vec![
                (0, false),
                (1_000, true),
                (1_200, false),
                (2_000, true),
                (2_200, false)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_indicator_switches_the_led_off() {
        let rec = recorder();
        let start = rec.start;
        let indicator = Indicator::spawn(Some(Box::new(rec.clone())), None);
        indicator.show(LedMode::On);
        advance_to(start, 100).await;
        drop(indicator);
        advance_to(start, 200).await;
        assert_eq!(transitions(&rec).last(), Some(&(100, false)));
    }

    #[test]
    fn output_specs_parse() {
        let led = OutputLineSpec::parse("gpio:gpiochip0:27").unwrap();
        assert_eq!(led.chip, PathBuf::from("/dev/gpiochip0"));
        assert_eq!(led.line, 27);
        assert!(!led.active_low);
        assert!(
            OutputLineSpec::parse("gpio:gpiochip0:22:active-low")
                .unwrap()
                .active_low
        );
        for bad in [
            "gpiochip0:27",
            "gpio:gpiochip0",
            "gpio:gpiochip0:x",
            "gpio:c:1:blue",
        ] {
            assert!(OutputLineSpec::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_missing_chip_is_named() {
        let spec = OutputLineSpec::parse("gpio:gpiochip-doorbell-test:27").unwrap();
        let error = match GpioOutputLine::open(&spec, "doorbell LED") {
            Ok(_) => panic!("a missing chip opened"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains("/dev/gpiochip-doorbell-test"), "{error}");
    }
}
