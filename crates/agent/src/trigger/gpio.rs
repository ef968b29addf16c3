//! The push button on a GPIO line (`gpio:CHIP:LINE[:OPTION]...`), read through the kernel's
//! GPIO character device (`gpiocdev`) as edge events: no polling.
//!
//! Contacts bounce and people hold buttons, so the edges go through [`ButtonDebouncer`], a pure
//! state machine with injected time: a level counts once it has held for the debounce period,
//! and a press is one stable released → pressed change, however long it is held. The agent
//! decides what a press during a call means (it reports it as busy); this trigger only counts.

use super::press::{Press, Trigger, TriggerError};
use crate::gpio::{chip_path, gpio_problem, parse_millis};
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use gpiocdev::line::{Bias, EdgeDetection, EdgeKind, Value};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a level must hold before it counts (contact bounce lasts a few milliseconds).
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(50);

/// The button's logical level (after applying the line's polarity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonLevel {
    Pressed,
    Released,
}

/// Debounce and press counting as a state machine: feed it every edge with its time, wake it at
/// [`ButtonDebouncer::deadline`], and it answers with at most one press per stable press.
#[derive(Debug, Clone)]
pub struct ButtonDebouncer {
    debounce: Duration,
    /// The level that has held for the debounce period.
    stable: ButtonLevel,
    /// The latest level seen and since when.
    latest: ButtonLevel,
    latest_since: Instant,
}

impl ButtonDebouncer {
    /// Starts at `initial` (the line's level when the trigger starts: a button held down at
    /// start-up does not ring until it is released and pressed again).
    pub fn new(debounce: Duration, initial: ButtonLevel, now: Instant) -> Self {
        Self {
            debounce,
            stable: initial,
            latest: initial,
            latest_since: now,
        }
    }

    /// An edge: the line is now at `level`. Repeated levels (a missed edge) are harmless.
    pub fn on_level(&mut self, level: ButtonLevel, at: Instant) {
        if level != self.latest {
            self.latest = level;
            self.latest_since = at;
        }
    }

    /// When to call [`ButtonDebouncer::on_timeout`] next; `None` while nothing is pending.
    pub fn deadline(&self) -> Option<Instant> {
        (self.latest != self.stable).then(|| self.latest_since + self.debounce)
    }

    /// Settles a level that has held long enough; a settled press is returned once.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Press> {
        let deadline = self.deadline()?;
        if now < deadline {
            return None;
        }
        self.stable = self.latest;
        (self.stable == ButtonLevel::Pressed).then_some(Press)
    }

    /// The settled level.
    pub fn level(&self) -> ButtonLevel {
        self.stable
    }
}

/// Runs the debouncer over a stream of levels until the stream ends (`Ok`) or fails, sending
/// one [`Press`] per settled press. Generic so tests drive it with a scripted stream.
pub async fn debounce_presses<S, E>(
    levels: S,
    debouncer: ButtonDebouncer,
    presses: mpsc::Sender<Press>,
) -> Result<(), E>
where
    S: Stream<Item = Result<ButtonLevel, E>>,
{
    let mut levels = std::pin::pin!(levels);
    let mut debouncer = debouncer;
    loop {
        let next = match debouncer.deadline() {
            Some(deadline) => tokio::select! {
                next = levels.next() => next,
                () = tokio::time::sleep_until(deadline) => {
                    if let Some(press) = debouncer.on_timeout(Instant::now()) {
                        tracing::debug!("button pressed");
                        if presses.send(press).await.is_err() {
                            return Ok(()); // the agent is gone
                        }
                    }
                    continue;
                }
            },
            None => levels.next().await,
        };
        match next {
            Some(Ok(level)) => debouncer.on_level(level, Instant::now()),
            Some(Err(error)) => return Err(error),
            None => return Ok(()),
        }
    }
}

/// Which way the button is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// Button between the pin and GND, internal pull-up: pressed reads low. The default (no
    /// resistor needed).
    ActiveLow,
    /// Button between the pin and 3.3 V, pull-down: pressed reads high.
    ActiveHigh,
}

/// A parsed `gpio:CHIP:LINE[:OPTION]...` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioButtonSpec {
    /// `/dev/gpiochipN`.
    pub chip: PathBuf,
    /// The line offset on the chip (the BCM GPIO number on a Pi's gpiochip0).
    pub line: u32,
    pub polarity: Polarity,
    /// `None`: pull-up for active-low, pull-down for active-high.
    pub bias: Option<Bias>,
    pub debounce: Duration,
}

const GPIO_SPEC_HELP: &str = "expected gpio:CHIP:LINE[:OPTION]..., e.g. gpio:gpiochip0:17 or \
     gpio:gpiochip0:17:active-high:debounce=30ms; options: active-low (default), active-high, \
     pull-up, pull-down, no-pull, debounce=DURATION (e.g. 50ms)";

impl GpioButtonSpec {
    /// Parses the part after `gpio:`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.split(':');
        let chip = parts
            .next()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| GPIO_SPEC_HELP.to_owned())?;
        let line = parts
            .next()
            .and_then(|l| l.parse::<u32>().ok())
            .ok_or_else(|| format!("the line must be a number; {GPIO_SPEC_HELP}"))?;
        let mut parsed = Self {
            chip: chip_path(chip),
            line,
            polarity: Polarity::ActiveLow,
            bias: None,
            debounce: DEFAULT_DEBOUNCE,
        };
        for option in parts {
            match option {
                "active-low" => parsed.polarity = Polarity::ActiveLow,
                "active-high" => parsed.polarity = Polarity::ActiveHigh,
                "pull-up" => parsed.bias = Some(Bias::PullUp),
                "pull-down" => parsed.bias = Some(Bias::PullDown),
                "no-pull" => parsed.bias = Some(Bias::Disabled),
                _ => match option.strip_prefix("debounce=") {
                    Some(text) => parsed.debounce = parse_millis(text)?,
                    None => return Err(format!("unknown option {option:?}; {GPIO_SPEC_HELP}")),
                },
            }
        }
        Ok(parsed)
    }

    fn bias(&self) -> Bias {
        self.bias.unwrap_or(match self.polarity {
            Polarity::ActiveLow => Bias::PullUp,
            Polarity::ActiveHigh => Bias::PullDown,
        })
    }
}

/// The button trigger.
pub struct GpioTrigger {
    spec: GpioButtonSpec,
}

impl GpioTrigger {
    pub fn new(spec: GpioButtonSpec) -> Self {
        Self { spec }
    }
}

impl Trigger for GpioTrigger {
    fn name(&self) -> String {
        format!("gpio:{}:{}", self.spec.chip.display(), self.spec.line)
    }

    fn run(
        self: Box<Self>,
        presses: mpsc::Sender<Press>,
    ) -> BoxFuture<'static, Result<(), TriggerError>> {
        Box::pin(async move {
            let spec = self.spec;
            let bad = TriggerError::Gpio;
            let mut builder = gpiocdev::Request::builder();
            builder
                .on_chip(&spec.chip)
                .with_consumer("doorbell button")
                .with_line(spec.line)
                .as_input()
                .with_bias(spec.bias())
                .with_edge_detection(EdgeDetection::BothEdges);
            if spec.polarity == Polarity::ActiveLow {
                // The kernel inverts the line: "active" and rising edges mean pressed.
                builder.as_active_low();
            }
            let request = builder
                .request()
                .map_err(|e| bad(gpio_problem(&spec.chip, spec.line, &e)))?;
            let initial = match request.lone_value() {
                Ok(Value::Active) => ButtonLevel::Pressed,
                Ok(Value::Inactive) => ButtonLevel::Released,
                Err(e) => return Err(bad(gpio_problem(&spec.chip, spec.line, &e))),
            };
            if initial == ButtonLevel::Pressed {
                tracing::warn!(
                    "the button on {}:{} reads pressed at start; if nobody is pressing it, \
                     check the wiring and the active-low/active-high option",
                    spec.chip.display(),
                    spec.line
                );
            }
            tracing::info!(
                chip = %spec.chip.display(),
                line = spec.line,
                polarity = ?spec.polarity,
                debounce_ms = spec.debounce.as_millis() as u64,
                "watching the button"
            );
            let request = gpiocdev::tokio::AsyncRequest::new(request);
            let levels = request.edge_events().map(|event| {
                event.map(|e| match e.kind {
                    EdgeKind::Rising => ButtonLevel::Pressed,
                    EdgeKind::Falling => ButtonLevel::Released,
                })
            });
            let debouncer = ButtonDebouncer::new(spec.debounce, initial, Instant::now());
            let (chip, line) = (spec.chip.clone(), spec.line);
            debounce_presses(levels, debouncer, presses)
                .await
                .map_err(|e| bad(gpio_problem(&chip, line, &e)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_defaults_and_options() {
        let plain = GpioButtonSpec::parse("gpiochip0:17").unwrap();
        assert_eq!(plain.chip, PathBuf::from("/dev/gpiochip0"));
        assert_eq!(plain.line, 17);
        assert_eq!(plain.polarity, Polarity::ActiveLow);
        assert_eq!(plain.bias(), Bias::PullUp);
        assert_eq!(plain.debounce, DEFAULT_DEBOUNCE);

        let seed = GpioButtonSpec::parse("/dev/gpiochip4:27:active-high:debounce=30ms").unwrap();
        assert_eq!(seed.chip, PathBuf::from("/dev/gpiochip4"));
        assert_eq!(seed.polarity, Polarity::ActiveHigh);
        assert_eq!(seed.bias(), Bias::PullDown);
        assert_eq!(seed.debounce, Duration::from_millis(30));

        let external = GpioButtonSpec::parse("gpiochip0:17:no-pull:debounce=0.1s").unwrap();
        assert_eq!(external.bias(), Bias::Disabled);
        assert_eq!(external.debounce, Duration::from_millis(100));

        for bad in [
            "",
            "gpiochip0",
            "gpiochip0:x",
            "gpiochip0:17:sideways",
            "gpiochip0:17:debounce=5",
            "gpiochip0:17:debounce=20s",
        ] {
            assert!(GpioButtonSpec::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[tokio::test]
    async fn a_missing_chip_is_an_error_naming_it() {
        let spec = GpioButtonSpec::parse("gpiochip-doorbell-test:17").unwrap();
        let (tx, _rx) = mpsc::channel(1);
        let error = Box::new(GpioTrigger::new(spec))
            .run(tx)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("/dev/gpiochip-doorbell-test"), "{error}");
        assert!(error.contains("doorbell devices"), "{error}");
    }

    // ---- debounce and press logic on a scripted line, paused time ----

    use ButtonLevel::{Pressed, Released};
    use std::convert::Infallible;

    const MS: u64 = 1;

    /// Plays `script` (milliseconds since start, level) into the debouncer and returns when
    /// each press arrived, in ms since start. The line starts at `initial`.
    async fn presses_for(initial: ButtonLevel, script: &[(u64, ButtonLevel)]) -> Vec<u64> {
        let start = Instant::now();
        let (level_tx, level_rx) = mpsc::unbounded_channel::<Result<ButtonLevel, Infallible>>();
        let levels = futures_util::stream::unfold(level_rx, |mut rx| async move {
            rx.recv().await.map(|level| (level, rx))
        });
        let (press_tx, mut press_rx) = mpsc::channel(16);
        let debouncer = ButtonDebouncer::new(DEFAULT_DEBOUNCE, initial, start);
        let runner = tokio::spawn(debounce_presses(levels, debouncer, press_tx));
        let script = script.to_vec();
        tokio::spawn(async move {
            for (at, level) in script {
                tokio::time::sleep_until(start + Duration::from_millis(at)).await;
                let _ = level_tx.send(Ok(level));
            }
            // Keep the line open long enough for the last level to settle, then unplug.
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        let mut arrivals = Vec::new();
        while let Some(Press) = press_rx.recv().await {
            arrivals.push(start.elapsed().as_millis() as u64);
        }
        assert!(matches!(runner.await, Ok(Ok(()))));
        arrivals
    }

    /// A contact that chatters for a few ms each way.
    fn bouncy(at: u64, to: ButtonLevel) -> Vec<(u64, ButtonLevel)> {
        let other = if to == Pressed { Released } else { Pressed };
        vec![
            (at, to),
            (at + 2 * MS, other),
            (at + 3 * MS, to),
            (at + 7 * MS, other),
            (at + 8 * MS, to),
        ]
    }

    #[tokio::test(start_paused = true)]
    async fn a_bouncing_press_is_one_press_once_it_settles() {
        let mut script = bouncy(100, Pressed);
        script.extend(bouncy(400, Released));
        // Settled 50 ms after the last bounce at 108 ms; the bouncy release adds nothing.
        assert_eq!(presses_for(Released, &script).await, vec![158]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_hold_is_one_press() {
        let script = [(100, Pressed), (60_100, Released)];
        assert_eq!(presses_for(Released, &script).await, vec![150]);
    }

    #[tokio::test(start_paused = true)]
    async fn glitches_shorter_than_the_debounce_never_ring() {
        // Interference on a long cable: 20 ms spikes.
        let script = [
            (100, Pressed),
            (120, Released),
            (300, Pressed),
            (349, Released),
        ];
        assert_eq!(presses_for(Released, &script).await, Vec::<u64>::new());
    }

    #[tokio::test(start_paused = true)]
    async fn separate_presses_count_and_a_short_let_go_does_not() {
        let script = [
            (100, Pressed),
            (300, Released),
            (500, Pressed), // second press, well after the release settled
            (700, Released),
            (720, Pressed), // let go for 20 ms only: the same press
            (900, Released),
        ];
        assert_eq!(presses_for(Released, &script).await, vec![150, 550]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_button_held_at_start_rings_only_after_a_new_press() {
        let script = [(1_000, Released), (2_000, Pressed), (2_100, Released)];
        assert_eq!(presses_for(Pressed, &script).await, vec![2_050]);
    }

    #[tokio::test(start_paused = true)]
    async fn presses_during_a_call_are_still_counted_one_each() {
        // The trigger does not know about calls: an impatient visitor pressing three times
        // during a call gives three presses, which the call flow reports as busy rings.
        let mut script = Vec::new();
        for at in [1_000, 1_400, 1_800] {
            script.extend(bouncy(at, Pressed));
            script.extend(bouncy(at + 150, Released));
        }
        assert_eq!(
            presses_for(Released, &script).await,
            vec![1_058, 1_458, 1_858]
        );

        use crate::call_flow::{CallFlow, Input, Timeouts};
        use crate::events::AgentEvent;
        let now = std::time::Instant::now();
        let room = |id: &str| doorbell_protocol::RoomId::parse(id).unwrap();
        let mut flow = CallFlow::new(Timeouts::default(), "https://door.example");
        flow.handle_input(Input::SignalingConnected, now);
        flow.handle_input(
            Input::Press {
                fresh_room: Ok(room("first")),
            },
            now,
        );
        assert!(!flow.is_idle());
        let outputs = flow.handle_input(
            Input::Press {
                fresh_room: Ok(room("second")),
            },
            now,
        );
        assert!(outputs.iter().any(|o| matches!(
            o,
            crate::call_flow::Output::Event(AgentEvent::Trigger { busy: true })
        )));
    }

    #[test]
    fn the_state_machine_reports_its_deadline_and_level() {
        let start = Instant::now();
        let mut debouncer = ButtonDebouncer::new(DEFAULT_DEBOUNCE, Released, start);
        assert_eq!(debouncer.deadline(), None);
        debouncer.on_level(Pressed, start);
        debouncer.on_level(Pressed, start + Duration::from_millis(10)); // repeated level
        assert_eq!(debouncer.deadline(), Some(start + DEFAULT_DEBOUNCE));
        assert_eq!(
            debouncer.on_timeout(start + Duration::from_millis(49)),
            None
        );
        assert_eq!(debouncer.level(), Released);
        assert_eq!(debouncer.on_timeout(start + DEFAULT_DEBOUNCE), Some(Press));
        assert_eq!(debouncer.level(), Pressed);
        assert_eq!(debouncer.on_timeout(start + Duration::from_secs(5)), None);
    }
}
