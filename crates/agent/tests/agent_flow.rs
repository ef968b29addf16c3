//! The agent's decisions around the call, with injected time and jitter: connecting, backoff,
//! a press while the connection is down or being made, stopping, the LED and the chime.

use doorbell_agent::agent_flow::{AgentFlow, Link, Reconnect};
use doorbell_agent::call_flow::{Input, LedMode, Output, Timeouts};
use doorbell_agent::events::{AgentEvent, EndReason};
use doorbell_protocol::{
    CallStats, ClientEvent, ErrorCode, ErrorPayload, RoomId, SdpType, ServerEvent,
    SessionDescription,
};
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

fn room() -> RoomId {
    RoomId::parse("RingRoom1").unwrap()
}

struct Harness {
    flow: AgentFlow,
    now: Instant,
}

impl Harness {
    /// A machine whose jitter is always `jitter`; its start outputs are returned too.
    fn with_jitter(jitter: f64) -> (Self, Vec<Output>) {
        let mut flow = AgentFlow::new(
            Timeouts::default(),
            "https://door.test",
            Reconnect {
                initial: Duration::from_millis(250),
                max: Duration::from_millis(1500),
            },
            Box::new(move || jitter),
        );
        let start = flow.start();
        (
            Harness {
                flow,
                now: Instant::now(),
            },
            start,
        )
    }

    fn new() -> Self {
        Self::with_jitter(0.0).0
    }

    fn connected() -> Self {
        let mut h = Self::new();
        h.input(Input::SignalingConnected);
        h
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.flow.handle_input(input, self.now)
    }

    fn press(&mut self) -> Vec<Output> {
        self.input(Input::Press {
            fresh_room: Ok(room()),
        })
    }

    /// Moves time to the machine's next deadline and handles it.
    fn run_to_next_deadline(&mut self) -> (Duration, Vec<Output>) {
        let at = self.flow.poll_timeout().expect("a deadline");
        let waited = at - self.now;
        self.now = at;
        (waited, self.flow.handle_timeout(at))
    }

    fn advance(&mut self, by: Duration) -> Vec<Output> {
        self.now += by;
        self.flow.handle_timeout(self.now)
    }
}

fn events(outputs: &[Output]) -> Vec<AgentEvent> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn has(outputs: &[Output], wanted: &Output) -> bool {
    outputs.contains(wanted)
}

fn joins(outputs: &[Output]) -> bool {
    outputs
        .iter()
        .any(|o| matches!(o, Output::Send(ClientEvent::Join(_))))
}

#[test]
fn starting_says_ready_and_connects_at_once() {
    let (h, start) = Harness::with_jitter(0.0);
    assert_eq!(
        start,
        vec![Output::Event(AgentEvent::Ready), Output::Connect]
    );
    assert_eq!(h.flow.link(), Link::Connecting);
    assert_eq!(
        h.flow.poll_timeout(),
        None,
        "nothing to wait for but the attempt"
    );
}

#[test]
fn failed_connects_retry_with_capped_doubling_backoff_and_say_so_once() {
    let mut h = Harness::new();
    let mut delays = Vec::new();
    let mut errors = 0;
    for _ in 0..5 {
        let out = h.input(Input::SignalingConnectFailed("refused".into()));
        errors += events(&out)
            .iter()
            .filter(|e| matches!(e, AgentEvent::Error { .. }))
            .count();
        let (waited, out) = h.run_to_next_deadline();
        assert_eq!(out, vec![Output::Connect]);
        delays.push(waited.as_millis());
    }
    assert_eq!(delays, [250, 500, 1000, 1500, 1500]);
    assert_eq!(errors, 1, "one error event per outage");
}

#[test]
fn jitter_only_shortens_the_wait_by_at_most_a_fifth() {
    let (mut h, _) = Harness::with_jitter(0.5);
    h.input(Input::SignalingConnectFailed("refused".into()));
    let (waited, _) = h.run_to_next_deadline();
    assert_eq!(waited, 225 * MS);
}

#[test]
fn a_server_that_accepts_then_drops_is_retried_from_the_first_delay() {
    let mut h = Harness::new();
    for _ in 0..3 {
        h.input(Input::SignalingConnectFailed("refused".into()));
        h.run_to_next_deadline();
    }
    h.input(Input::SignalingConnected);
    let out = h.input(Input::SignalingLost);
    assert_eq!(events(&out), vec![AgentEvent::Disconnected]);
    let (waited, out) = h.run_to_next_deadline();
    assert_eq!(waited, 250 * MS, "a success resets the backoff");
    assert_eq!(out, vec![Output::Connect]);
}

#[test]
fn a_server_that_refuses_us_after_connecting_is_retried_with_backoff_and_says_why() {
    let mut h = Harness::new();
    let mut delays = Vec::new();
    let mut errors = Vec::new();
    for _ in 0..4 {
        h.input(Input::SignalingConnected);
        // Our server refuses a full house this way: an `error` event, then it closes.
        let refusal = h.input(Input::Server(ServerEvent::Error(ErrorPayload {
            code: ErrorCode::TooManyConnections,
            message: "the server holds too many connections; try again later".into(),
        })));
        assert!(
            refusal.is_empty(),
            "no 'server error' for the refusal itself: {refusal:?}"
        );
        let out = h.input(Input::SignalingLost);
        errors.extend(events(&out).into_iter().filter_map(|e| match e {
            AgentEvent::Error { message } => Some(message),
            _ => None,
        }));
        let (waited, out) = h.run_to_next_deadline();
        assert_eq!(out, vec![Output::Connect]);
        delays.push(waited.as_millis());
    }
    assert_eq!(
        delays,
        [250, 500, 1000, 1500],
        "backs off like a failed connect"
    );
    assert_eq!(errors.len(), 1, "said once: {errors:?}");
    assert!(
        errors[0].contains("refused the connection") && errors[0].contains("too_many_connections"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_press_while_connected_rings_at_once_with_chime_and_photo() {
    let mut h = Harness::connected();
    let out = h.press();
    assert_eq!(out[0], Output::Chime);
    assert_eq!(out[1], Output::TakeSnapshot);
    assert!(joins(&out));
    assert!(has(&out, &Output::Led(LedMode::Blink)));
}

#[test]
fn a_press_during_backoff_connects_at_once_and_rings_with_a_link_when_it_succeeds() {
    let mut h = Harness::new();
    h.input(Input::SignalingConnectFailed("refused".into()));
    assert!(matches!(h.flow.link(), Link::Down { retry_at: Some(_) }));
    h.advance(100 * MS);
    let out = h.press();
    assert!(
        has(&out, &Output::Connect),
        "no waiting for the backoff timer"
    );
    assert!(
        has(&out, &Output::TakeSnapshot),
        "the photo starts at the press"
    );
    assert!(!joins(&out));
    assert!(
        events(&out).is_empty(),
        "nothing said until the attempt ends"
    );

    h.advance(40 * MS);
    let out = h.input(Input::SignalingConnected);
    assert!(joins(&out));
    assert_eq!(
        events(&out),
        vec![AgentEvent::Connected, AgentEvent::Trigger { busy: false }]
    );
    assert!(!has(&out, &Output::NotifyUnreachable));
}

#[test]
fn a_press_during_backoff_whose_attempt_fails_rings_without_a_link() {
    let mut h = Harness::new();
    h.input(Input::SignalingConnectFailed("refused".into()));
    h.press();
    let out = h.input(Input::SignalingConnectFailed("refused".into()));
    assert!(has(&out, &Output::NotifyUnreachable));
    assert!(
        events(&out).contains(&AgentEvent::Trigger { busy: false }),
        "{out:?}"
    );
}

#[test]
fn a_press_while_connecting_waits_for_the_attempt_up_to_the_join_timeout() {
    let mut h = Harness::new();
    let out = h.press();
    assert!(
        !has(&out, &Output::Connect),
        "an attempt is already under way"
    );
    assert_eq!(
        h.flow.poll_timeout(),
        Some(h.now + Timeouts::default().join)
    );

    let out = h.advance(Timeouts::default().join - MS);
    assert!(out.is_empty(), "not a millisecond early: {out:?}");
    let out = h.advance(MS);
    assert!(has(&out, &Output::NotifyUnreachable));
    assert!(events(&out).contains(&AgentEvent::Trigger { busy: false }));
}

#[test]
fn a_second_press_while_one_waits_only_chimes() {
    let mut h = Harness::new();
    h.press();
    assert_eq!(h.press(), vec![Output::Chime]);
    let out = h.input(Input::SignalingConnected);
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::Send(ClientEvent::Join(_))))
            .count(),
        1
    );
}

#[test]
fn a_press_during_a_ring_is_busy_and_still_chimes() {
    let mut h = Harness::connected();
    h.press();
    let out = h.press();
    assert_eq!(
        out,
        vec![
            Output::Chime,
            Output::Event(AgentEvent::Trigger { busy: true })
        ]
    );
}

/// Walks a connected machine into a call with a peer.
fn in_call(h: &mut Harness) {
    h.press();
    h.input(Input::Server(ServerEvent::Created(room())));
    h.input(Input::Server(ServerEvent::NewPeer(room())));
    h.input(Input::Server(ServerEvent::Invite(SessionDescription {
        kind: SdpType::Offer,
        sdp: "v=0".into(),
    })));
    let out = h.input(Input::AnswerReady(SessionDescription {
        kind: SdpType::Answer,
        sdp: "v=0".into(),
    }));
    assert!(has(&out, &Output::Led(LedMode::On)));
}

#[test]
fn stopping_during_a_call_ends_it_closes_signaling_and_exits_in_that_order() {
    let mut h = Harness::connected();
    in_call(&mut h);
    let out = h.input(Input::Shutdown);
    assert!(has(&out, &Output::Send(ClientEvent::Bye(Some(room())))));
    assert!(has(&out, &Output::ClosePeer));
    assert!(!has(&out, &Output::Exit), "not before the peer is closed");
    assert!(
        has(&out, &Output::Led(LedMode::Off)),
        "the LED is off at once"
    );

    let out = h.input(Input::PeerClosed(CallStats::default()));
    let end = out
        .iter()
        .position(|o| {
            matches!(
                o,
                Output::Event(AgentEvent::CallEnd {
                    reason: EndReason::Shutdown,
                    ..
                })
            )
        })
        .expect("call_end");
    let close = out
        .iter()
        .position(|o| *o == Output::CloseSignaling)
        .unwrap();
    let exit = out.iter().position(|o| *o == Output::Exit).unwrap();
    assert!(end < close && close < exit, "{out:?}");
    assert!(h.flow.has_exited());
}

#[test]
fn stopping_stops_retrying() {
    let mut h = Harness::new();
    h.input(Input::SignalingConnectFailed("refused".into()));
    let out = h.input(Input::Shutdown);
    assert_eq!(out, vec![Output::Exit]);
    assert_eq!(h.flow.poll_timeout(), None);
}

#[test]
fn a_connection_made_after_stopping_is_closed() {
    let mut h = Harness::new();
    h.input(Input::Shutdown);
    let out = h.input(Input::SignalingConnected);
    assert_eq!(out, vec![Output::CloseSignaling]);
}

#[test]
fn the_end_of_the_triggers_waits_for_the_call_then_exits() {
    let mut h = Harness::connected();
    in_call(&mut h);
    let out = h.input(Input::TriggersEnded);
    assert!(!has(&out, &Output::Exit), "a call is going on");
    h.input(Input::Server(ServerEvent::Bye));
    let out = h.input(Input::PeerClosed(CallStats::default()));
    assert!(has(&out, &Output::Exit));
}

#[test]
fn the_end_of_the_triggers_waits_for_a_held_press() {
    let mut h = Harness::new();
    h.press();
    let out = h.input(Input::TriggersEnded);
    assert!(!has(&out, &Output::Exit));
    let out = h.input(Input::SignalingConnected);
    assert!(joins(&out));
    assert!(!has(&out, &Output::Exit));
}
