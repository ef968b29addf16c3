//! Everything the agent decides, as one sans-IO machine: the call flow ([`CallFlow`]) plus the
//! signaling connection around it — when to connect, when to retry (capped, jittered backoff),
//! what a press does while the connection is down or still being made, when to stop, and what
//! the LED shows. The driver ([`crate::driver`]) only turns [`Output`]s into I/O and I/O into
//! [`Input`]s, and calls [`AgentFlow::handle_timeout`] at [`AgentFlow::poll_timeout`].
//!
//! ```text
//! connecting ──connected──▶ up ──lost──▶ down(retry at now+backoff) ──timer──▶ connecting
//!      │                                    ▲        │ press: connect now and hold the press
//!      └──────────connect failed────────────┘        ▼        (until connected, failed, or
//!                                                 connecting    the join timeout)
//! ```
//!
//! Time is passed in and randomness (the jitter) is injected, so every decision is tested with
//! plain `Instant`s (tests/agent_flow.rs) and the real driver with tokio's paused clock
//! (tests/driver.rs).

use crate::call_flow::{CallFlow, CallState, Input, LedMode, LiveView, Output, Timeouts};
use crate::events::AgentEvent;
use doorbell_protocol::backoff::Backoff;
use doorbell_protocol::{ErrorCode, RoomId, ServerEvent};
use std::time::{Duration, Instant};

/// How the signaling connection is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    pub initial: Duration,
    /// Capped low so a returning server is found within about this long.
    pub max: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_millis(1500),
        }
    }
}

/// The signaling connection as the machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// An attempt is under way (the driver carries out [`Output::Connect`]).
    Connecting,
    Up,
    /// Down; the next attempt starts at `retry_at` (`None`: never, the agent is stopping).
    Down {
        retry_at: Option<Instant>,
    },
}

/// A press that came while the connection was down or being made: it waits for the attempt's
/// outcome, at most until `deadline`, instead of ringing without a link at once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HeldPress {
    room: Result<RoomId, String>,
    deadline: Instant,
}

pub struct AgentFlow {
    call: CallFlow,
    link: Link,
    backoff: Backoff,
    jitter: Box<dyn FnMut() -> f64 + Send>,
    /// Failed attempts in a row: the event stream hears of the first only.
    connect_failures: u32,
    /// Why the server refused the connection it just accepted (it says so in an `error`
    /// event, then closes it): that drop counts as a failed attempt, so the retries back off.
    refused: Option<String>,
    held_press: Option<HeldPress>,
    /// How long a press waits for a connect attempt.
    press_wait: Duration,
    stopping: bool,
    triggers_open: bool,
    led: LedMode,
    exited: bool,
}

impl AgentFlow {
    /// `jitter` returns values in `[0, 1)`; it spreads reconnects so that many doorbells do not
    /// hammer a restarted server in step.
    pub fn new(
        timeouts: Timeouts,
        public_url: impl Into<String>,
        reconnect: Reconnect,
        jitter: Box<dyn FnMut() -> f64 + Send>,
    ) -> Self {
        Self {
            call: CallFlow::new(timeouts, public_url),
            link: Link::Connecting,
            backoff: Backoff::new(reconnect.initial, reconnect.max),
            jitter,
            connect_failures: 0,
            refused: None,
            held_press: None,
            press_wait: timeouts.join,
            stopping: false,
            triggers_open: true,
            led: LedMode::Off,
            exited: false,
        }
    }

    /// See [`CallFlow::with_live_view`].
    pub fn with_live_view(mut self, live_view: LiveView) -> Self {
        self.call = self.call.with_live_view(live_view);
        self
    }

    /// See [`CallFlow::with_message_length`].
    pub fn with_message_length(mut self, length: Duration) -> Self {
        self.call = self.call.with_message_length(length);
        self
    }

    /// See [`CallFlow::accepting_internal_candidates`].
    pub fn accepting_internal_candidates(mut self, accept: bool) -> Self {
        self.call = self.call.accepting_internal_candidates(accept);
        self
    }

    /// The first outputs: `ready`, and the first connect attempt at once.
    pub fn start(&mut self) -> Vec<Output> {
        self.link = Link::Connecting;
        vec![Output::Event(AgentEvent::Ready), Output::Connect]
    }

    pub fn call_state(&self) -> &CallState {
        self.call.state()
    }

    pub fn link(&self) -> Link {
        self.link
    }

    /// Whether the machine has asked the driver to exit (after [`Output::Exit`]).
    pub fn has_exited(&self) -> bool {
        self.exited
    }

    /// When [`AgentFlow::handle_timeout`] must next be called, if anything waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retry = match self.link {
            Link::Down { retry_at } => retry_at,
            Link::Connecting | Link::Up => None,
        };
        [
            self.call.poll_timeout(),
            retry,
            self.held_press.as_ref().map(|p| p.deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if let Link::Down { retry_at: Some(at) } = self.link
            && at <= now
        {
            self.link = Link::Connecting;
            out.push(Output::Connect);
        }
        if self.held_press.as_ref().is_some_and(|p| p.deadline <= now) {
            // The attempt takes too long: ring without a link rather than keep the visitor
            // waiting; the owner still hears of the ring.
            self.release_press(now, &mut out);
        }
        out.extend(self.call.handle_timeout(now));
        self.after(&mut out);
        out
    }

    pub fn handle_input(&mut self, input: Input, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Press { fresh_room } => self.on_press(fresh_room, now, &mut out),
            Input::SignalingConnected => {
                // The backoff resets once the connection proves accepted (see SignalingLost).
                self.refused = None;
                if self.stopping {
                    // Too late: nobody needs the connection any more.
                    self.link = Link::Down { retry_at: None };
                    out.push(Output::CloseSignaling);
                } else {
                    self.link = Link::Up;
                    out.extend(self.call.handle_input(Input::SignalingConnected, now));
                    self.release_press(now, &mut out);
                }
            }
            Input::SignalingConnectFailed(why) => {
                self.connect_failures += 1;
                // Said once per outage in the event stream; the log keeps the rest.
                if self.connect_failures == 1 {
                    out.push(Output::Event(AgentEvent::Error {
                        message: format!("cannot reach the signaling server: {why}"),
                    }));
                }
                tracing::warn!(
                    attempt = self.connect_failures,
                    "signaling connect failed: {why}"
                );
                self.link = Link::Down {
                    retry_at: self.next_retry(now),
                };
                self.release_press(now, &mut out);
            }
            Input::SignalingLost => {
                match self.refused.take() {
                    Some(why) => {
                        self.connect_failures += 1;
                        if self.connect_failures == 1 {
                            out.push(Output::Event(AgentEvent::Error {
                                message: format!(
                                    "the signaling server refused the connection: {why}"
                                ),
                            }));
                        }
                        tracing::warn!(
                            attempt = self.connect_failures,
                            "signaling connection refused: {why}"
                        );
                    }
                    None => {
                        self.backoff.reset();
                        self.connect_failures = 0;
                    }
                }
                self.link = Link::Down {
                    retry_at: self.next_retry(now),
                };
                out.extend(self.call.handle_input(Input::SignalingLost, now));
            }
            Input::Server(ServerEvent::Error(e))
                if self.call.is_idle()
                    && matches!(
                        e.code,
                        ErrorCode::TooManyConnections | ErrorCode::ShuttingDown
                    ) =>
            {
                // The server's answer to our connect: it closes the connection next.
                self.refused = Some(format!("{} ({})", e.message, e.code));
            }
            Input::Shutdown => {
                self.stopping = true;
                self.held_press = None;
                if let Link::Down { .. } = self.link {
                    self.link = Link::Down { retry_at: None };
                }
                out.extend(self.call.handle_input(Input::Shutdown, now));
            }
            Input::TriggersEnded => self.triggers_open = false,
            other => out.extend(self.call.handle_input(other, now)),
        }
        self.after(&mut out);
        out
    }

    fn next_retry(&mut self, now: Instant) -> Option<Instant> {
        (!self.stopping).then(|| now + self.backoff.next_delay((self.jitter)()))
    }

    fn on_press(&mut self, room: Result<RoomId, String>, now: Instant, out: &mut Vec<Output>) {
        // The chime answers every press, even a busy one: the visitor hears the bell work.
        out.push(Output::Chime);
        if !self.call.is_idle() {
            out.extend(
                self.call
                    .handle_input(Input::Press { fresh_room: room }, now),
            );
            return;
        }
        if self.held_press.is_some() {
            // Already ringing, waiting for the connection: one ring is enough.
            return;
        }
        // The photo starts now, at the press, so it is ready when the owner's message goes.
        out.push(Output::TakeSnapshot);
        match self.link {
            Link::Up => out.extend(
                self.call
                    .handle_input(Input::Press { fresh_room: room }, now),
            ),
            Link::Down { .. } if self.stopping => out.extend(
                self.call
                    .handle_input(Input::Press { fresh_room: room }, now),
            ),
            Link::Down { .. } => {
                // In backoff: the server may well be back; try now instead of at the timer.
                self.link = Link::Connecting;
                out.push(Output::Connect);
                self.held_press = Some(HeldPress {
                    room,
                    deadline: now + self.press_wait,
                });
            }
            Link::Connecting => {
                self.held_press = Some(HeldPress {
                    room,
                    deadline: now + self.press_wait,
                });
            }
        }
    }

    /// Hands a held press to the call flow (which rings with a link if the connection is up,
    /// and without one otherwise).
    fn release_press(&mut self, now: Instant, out: &mut Vec<Output>) {
        if let Some(press) = self.held_press.take() {
            out.extend(self.call.handle_input(
                Input::Press {
                    fresh_room: press.room,
                },
                now,
            ));
        }
    }

    /// What follows every step: the LED, and whether the agent is done.
    fn after(&mut self, out: &mut Vec<Output>) {
        let led = self.call.led();
        if led != self.led {
            self.led = led;
            out.push(Output::Led(led));
        }
        let done = (self.stopping || !self.triggers_open)
            && self.call.is_idle()
            && self.held_press.is_none();
        if done && !self.exited {
            self.exited = true;
            if self.link == Link::Up {
                self.link = Link::Down { retry_at: None };
                out.push(Output::CloseSignaling);
            }
            out.push(Output::Exit);
        }
    }
}
