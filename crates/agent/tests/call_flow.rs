//! The call state machine, driven with injected time: every timeout, and every input in every
//! state.

use doorbell_agent::call_flow::{
    CallFlow, CallState, Input, LedMode, LiveView, Output, RecordedMessage, Timeouts,
};
use doorbell_agent::events::{AgentEvent, EndReason};
use doorbell_protocol::{CallStats, IceServer, IceServers, IceTransportPolicy, PeerEvent};
use doorbell_protocol::{
    ClientEvent, ErrorCode, ErrorPayload, IceCandidate, RoomId, SdpType, ServerEvent,
    SessionDescription,
};
use std::time::{Duration, Instant};

fn room(name: &str) -> RoomId {
    RoomId::parse(name).unwrap()
}

fn offer() -> SessionDescription {
    SessionDescription {
        kind: SdpType::Offer,
        sdp: "v=0\r\noffer".into(),
    }
}

fn answer() -> SessionDescription {
    SessionDescription {
        kind: SdpType::Answer,
        sdp: "v=0\r\nanswer".into(),
    }
}

fn candidate(n: u16) -> Option<IceCandidate> {
    Some(IceCandidate {
        candidate: format!("candidate:{n} 1 udp 1 192.0.2.1 {n} typ host"),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    })
}

fn ice_servers() -> IceServers {
    IceServers {
        servers: vec![IceServer {
            urls: vec!["turn:turn.test:3478?transport=udp".into()],
            username: Some("1800000000:agent".into()),
            credential: Some("c2VjcmV0".into()),
        }],
        policy: IceTransportPolicy::Relay,
        ttl_secs: 3600,
    }
}

const TIMEOUTS: Timeouts = Timeouts {
    join: Duration::from_secs(5),
    ring: Duration::from_secs(60),
    offer: Duration::from_secs(15),
    answer: Duration::from_secs(10),
    connect: Duration::from_secs(15),
    max_call: Duration::from_secs(600),
};

struct Harness {
    flow: CallFlow,
    now: Instant,
    room: RoomId,
}

impl Harness {
    fn new() -> Self {
        let mut flow = CallFlow::new(TIMEOUTS, "https://door.test:8443/");
        let now = Instant::now();
        flow.handle_input(Input::SignalingConnected, now);
        Harness {
            flow,
            now,
            room: room("RingRoom1"),
        }
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.flow.handle_input(input, self.now)
    }

    fn advance(&mut self, by: Duration) -> Vec<Output> {
        self.now += by;
        self.flow.handle_timeout(self.now)
    }

    fn state(&self) -> &'static str {
        self.flow.state().name()
    }

    /// Walks from idle to the named state the way a real call does.
    fn drive_to(&mut self, target: &str) {
        let steps: Vec<Input> = vec![
            Input::Press {
                fresh_room: Ok(self.room.clone()),
            },
            Input::Server(ServerEvent::Created(self.room.clone())),
            Input::Server(ServerEvent::NewPeer(self.room.clone())),
            Input::Server(ServerEvent::Invite(offer())),
            Input::AnswerReady(answer()),
            Input::Peer(PeerEvent::MediaConnected { ice: None }),
            Input::Server(ServerEvent::Bye),
        ];
        let mut steps = steps.into_iter();
        while self.state_label() != target {
            let step = steps
                .next()
                .unwrap_or_else(|| panic!("cannot reach {target}"));
            self.input(step);
        }
    }

    /// State name, telling the two halves of in_call apart.
    fn state_label(&self) -> &'static str {
        match self.flow.state() {
            CallState::InCall {
                media_connected: true,
                ..
            } => "in_call_connected",
            s => s.name(),
        }
    }
}

fn events(out: &[Output]) -> Vec<AgentEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn event_names(out: &[Output]) -> Vec<&'static str> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.name()),
            _ => None,
        })
        .collect()
}

fn call_end_reason(out: &[Output]) -> Option<EndReason> {
    events(out).into_iter().find_map(|e| match e {
        AgentEvent::CallEnd { reason, .. } => Some(reason),
        _ => None,
    })
}

#[test]
fn a_whole_call_emits_the_event_stream_in_order() {
    let mut h = Harness::new();
    let mut all = Vec::new();
    let r = h.room.clone();
    all.extend(h.input(Input::Press {
        fresh_room: Ok(r.clone()),
    }));
    assert!(all.contains(&Output::Send(ClientEvent::Join(r.clone()))));
    all.extend(h.input(Input::Server(ServerEvent::Created(r.clone()))));
    assert!(all.contains(&Output::Notify {
        room: r.clone(),
        url: "https://door.test:8443/?room=RingRoom1".into()
    }));
    all.extend(h.input(Input::Server(ServerEvent::NewPeer(r.clone()))));
    all.extend(h.input(Input::Server(ServerEvent::Invite(offer()))));
    assert!(all.contains(&Output::StartAnswer {
        offer: offer(),
        ice: None
    }));
    all.extend(h.input(Input::AnswerReady(answer())));
    assert!(all.contains(&Output::Send(ClientEvent::Ok(answer()))));
    all.extend(h.input(Input::Peer(PeerEvent::MediaConnected { ice: None })));
    all.extend(h.input(Input::Server(ServerEvent::Bye)));
    assert!(all.contains(&Output::Send(ClientEvent::Bye(Some(r.clone())))));
    assert!(all.contains(&Output::ClosePeer));
    assert_eq!(h.state(), "cleaning_up");
    all.extend(h.input(Input::PeerClosed(CallStats {
        audio_frames_received: 150,
        audio_frames_nonsilent: 140,
        video_frames_sent: 90,
        ..CallStats::default()
    })));
    assert_eq!(
        event_names(&all),
        [
            "trigger",
            "created",
            "notified",
            "new_peer",
            "invite",
            "ok_sent",
            "media_connected",
            "bye_received",
            "call_end",
            "ready"
        ]
    );
    assert!(events(&all).contains(&AgentEvent::CallEnd {
        reason: EndReason::Hangup,
        audio_frames_received: 150,
        audio_frames_nonsilent: 140,
        video_frames_sent: 90
    }));
    assert!(h.flow.is_idle());
}

#[test]
fn candidates_are_held_until_the_peer_exists_and_local_ones_follow_the_answer() {
    let mut h = Harness::new();
    h.drive_to("waiting_for_offer");
    // A page may trickle before its offer is relayed; nothing reaches a peer that is not there.
    assert!(
        h.input(Input::Server(ServerEvent::IceCandidate(candidate(1))))
            .is_empty()
    );
    h.input(Input::Server(ServerEvent::Invite(offer())));
    assert!(
        h.input(Input::Server(ServerEvent::IceCandidate(candidate(2))))
            .is_empty()
    );
    assert!(
        h.input(Input::Peer(PeerEvent::LocalCandidate(candidate(9))))
            .is_empty()
    );
    let out = h.input(Input::AnswerReady(answer()));
    assert_eq!(
        out.iter()
            .filter(|o| !matches!(o, Output::Event(_)))
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            Output::Send(ClientEvent::Ok(answer())),
            Output::Send(ClientEvent::IceCandidate(candidate(9))),
            Output::AddRemoteCandidate(candidate(1)),
            Output::AddRemoteCandidate(candidate(2)),
        ]
    );
    assert_eq!(
        h.input(Input::Server(ServerEvent::IceCandidate(None))),
        vec![Output::AddRemoteCandidate(None)]
    );
    assert_eq!(
        h.input(Input::Peer(PeerEvent::LocalCandidate(candidate(10)))),
        vec![Output::Send(ClientEvent::IceCandidate(candidate(10)))]
    );
}

#[test]
fn a_press_during_a_ring_or_call_is_busy_and_starts_nothing() {
    for state in [
        "joining",
        "waiting_for_peer",
        "waiting_for_offer",
        "answering",
        "in_call",
        "in_call_connected",
    ] {
        let mut h = Harness::new();
        h.drive_to(state);
        let before = h.flow.state().clone();
        let out = h.input(Input::Press {
            fresh_room: Ok(room("Other")),
        });
        assert_eq!(
            out,
            vec![Output::Event(AgentEvent::Trigger { busy: true })],
            "{state}"
        );
        assert_eq!(*h.flow.state(), before, "{state}");
    }
}

#[test]
fn a_press_without_a_random_room_id_rings_without_a_link_and_opens_no_room() {
    let mut h = Harness::new();
    let out = h.input(Input::Press {
        fresh_room: Err("the OS random generator failed: ENOSYS".into()),
    });
    assert_eq!(event_names(&out), ["trigger", "error"]);
    assert!(out.contains(&Output::NotifyUnreachable));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Send(_))),
        "no join with a guessable room: {out:?}"
    );
    assert_eq!(h.state(), "idle");
}

#[test]
fn a_press_while_the_server_is_unreachable_still_tells_the_owner() {
    let mut flow = CallFlow::new(TIMEOUTS, "https://door.test");
    let out = flow.handle_input(
        Input::Press {
            fresh_room: Ok(room("R")),
        },
        Instant::now(),
    );
    assert!(out.contains(&Output::NotifyUnreachable));
    assert!(!out.iter().any(|o| matches!(o, Output::Send(_))));
    assert!(flow.is_idle());
}

/// Each wait ends at its deadline, not a moment before, with the right reason.
#[test]
fn every_wait_times_out_with_its_reason() {
    let cases = [
        ("joining", TIMEOUTS.join, EndReason::JoinTimeout, false),
        (
            "waiting_for_peer",
            TIMEOUTS.ring,
            EndReason::NoAnswer,
            false,
        ),
        (
            "waiting_for_offer",
            TIMEOUTS.offer,
            EndReason::OfferTimeout,
            false,
        ),
        ("answering", TIMEOUTS.answer, EndReason::AnswerFailed, true),
        ("in_call", TIMEOUTS.connect, EndReason::MediaTimeout, true),
        (
            "in_call_connected",
            TIMEOUTS.max_call,
            EndReason::MaxDuration,
            true,
        ),
    ];
    for (state, wait, reason, has_peer) in cases {
        let mut h = Harness::new();
        h.drive_to(state);
        assert_eq!(h.flow.poll_timeout(), Some(h.now + wait), "{state}");
        assert!(
            h.advance(wait - Duration::from_millis(1)).is_empty(),
            "{state}"
        );
        assert_eq!(h.state_label(), state);
        let mut out = h.advance(Duration::from_millis(1));
        assert!(
            out.contains(&Output::Send(ClientEvent::Bye(Some(h.room.clone())))),
            "{state} must leave its room"
        );
        if has_peer {
            assert!(out.contains(&Output::ClosePeer), "{state}");
            assert_eq!(h.state(), "cleaning_up");
            assert_eq!(h.flow.poll_timeout(), None);
            out.extend(h.input(Input::PeerClosed(CallStats::default())));
        }
        assert_eq!(call_end_reason(&out), Some(reason), "{state}");
        assert_eq!(event_names(&out).last(), Some(&"ready"), "{state}");
        assert!(h.flow.is_idle(), "{state}");
        // The next ring works.
        h.drive_to("waiting_for_peer");
    }
}

#[test]
fn a_second_new_peer_restarts_the_offer_wait() {
    let mut h = Harness::new();
    h.drive_to("waiting_for_offer");
    h.advance(Duration::from_secs(10));
    h.input(Input::Server(ServerEvent::NewPeer(h.room.clone())));
    assert_eq!(h.flow.poll_timeout(), Some(h.now + TIMEOUTS.offer));
}

#[test]
fn refusals_on_join_end_the_ring_with_a_reason() {
    let refused = ServerEvent::Error(ErrorPayload {
        code: ErrorCode::Unauthorized,
        message: "bad token".into(),
    });
    for (event, reason) in [
        (ServerEvent::Joined(room("RingRoom1")), EndReason::RoomTaken),
        (ServerEvent::Full(room("RingRoom1")), EndReason::RoomTaken),
        (refused, EndReason::ServerRefused),
    ] {
        let mut h = Harness::new();
        h.drive_to("joining");
        let out = h.input(Input::Server(event));
        assert_eq!(call_end_reason(&out), Some(reason));
        assert!(h.flow.is_idle());
    }
}

/// Every input in every state: where the flow goes. Inputs that make no sense in a state
/// change nothing (and must not panic).
#[test]
fn every_input_in_every_state() {
    let inputs: Vec<(&str, Input)> = vec![
        (
            "press",
            Input::Press {
                fresh_room: Ok(room("Second")),
            },
        ),
        (
            "created",
            Input::Server(ServerEvent::Created(room("RingRoom1"))),
        ),
        (
            "created_other",
            Input::Server(ServerEvent::Created(room("Elsewhere"))),
        ),
        (
            "joined",
            Input::Server(ServerEvent::Joined(room("RingRoom1"))),
        ),
        ("full", Input::Server(ServerEvent::Full(room("RingRoom1")))),
        (
            "new_peer",
            Input::Server(ServerEvent::NewPeer(room("RingRoom1"))),
        ),
        ("invite", Input::Server(ServerEvent::Invite(offer()))),
        ("ok", Input::Server(ServerEvent::Ok(answer()))),
        (
            "ice",
            Input::Server(ServerEvent::IceCandidate(candidate(1))),
        ),
        ("bye", Input::Server(ServerEvent::Bye)),
        (
            "error",
            Input::Server(ServerEvent::Error(ErrorPayload {
                code: ErrorCode::RateLimited,
                message: "slow down".into(),
            })),
        ),
        ("answer_ready", Input::AnswerReady(answer())),
        ("answer_failed", Input::AnswerFailed("no codec".into())),
        (
            "local_candidate",
            Input::Peer(PeerEvent::LocalCandidate(candidate(2))),
        ),
        (
            "media_connected",
            Input::Peer(PeerEvent::MediaConnected { ice: None }),
        ),
        ("ice_lost", Input::Peer(PeerEvent::IceLost)),
        ("peer_closed_by_page", Input::Peer(PeerEvent::Closed)),
        (
            "media_error",
            Input::Peer(PeerEvent::MediaError("camera gone".into())),
        ),
        ("peer_closed", Input::PeerClosed(CallStats::default())),
        ("signaling_lost", Input::SignalingLost),
        ("signaling_connected", Input::SignalingConnected),
        ("shutdown", Input::Shutdown),
        (
            "signaling_connect_failed",
            Input::SignalingConnectFailed("refused".into()),
        ),
        ("triggers_ended", Input::TriggersEnded),
        (
            "ice_servers",
            Input::Server(ServerEvent::IceServers(ice_servers())),
        ),
    ];
    // Per state: the inputs that move it, and where to. Everything else keeps the state.
    let moves: &[(&str, &[(&str, &str)])] = &[
        ("idle", &[("press", "joining")]),
        (
            "joining",
            &[
                ("created", "waiting_for_peer"),
                ("joined", "idle"),
                ("full", "idle"),
                ("error", "idle"),
                ("signaling_lost", "idle"),
                ("shutdown", "idle"),
            ],
        ),
        (
            "waiting_for_peer",
            &[
                ("new_peer", "waiting_for_offer"),
                ("signaling_lost", "idle"),
                ("shutdown", "idle"),
            ],
        ),
        (
            "waiting_for_offer",
            &[
                ("invite", "answering"),
                ("bye", "idle"),
                ("signaling_lost", "idle"),
                ("shutdown", "idle"),
            ],
        ),
        (
            "answering",
            &[
                ("bye", "cleaning_up"),
                ("answer_ready", "in_call"),
                ("answer_failed", "cleaning_up"),
                ("signaling_lost", "cleaning_up"),
                ("shutdown", "cleaning_up"),
            ],
        ),
        (
            "in_call",
            &[
                ("bye", "cleaning_up"),
                ("ice_lost", "cleaning_up"),
                ("peer_closed_by_page", "cleaning_up"),
                ("media_connected", "in_call_connected"),
                ("shutdown", "cleaning_up"),
            ],
        ),
        (
            "in_call_connected",
            &[
                ("bye", "cleaning_up"),
                ("ice_lost", "cleaning_up"),
                ("peer_closed_by_page", "cleaning_up"),
                ("shutdown", "cleaning_up"),
            ],
        ),
        ("cleaning_up", &[("peer_closed", "idle")]),
    ];
    for (state, state_moves) in moves {
        for (input_name, input) in &inputs {
            let mut h = Harness::new();
            if *state == "cleaning_up" {
                h.drive_to("in_call_connected");
                h.input(Input::Server(ServerEvent::Bye));
            } else {
                h.drive_to(state);
            }
            assert_eq!(h.state_label(), *state);
            let expected = state_moves
                .iter()
                .find(|(i, _)| i == input_name)
                .map_or(*state, |(_, to)| *to);
            let out = h.input(input.clone());
            assert_eq!(
                h.state_label(),
                expected,
                "state {state}, input {input_name}: outputs {out:?}"
            );
            // In a call, a new offer (an ICE restart) and its answer touch the peer and the wire.
            let restart =
                state.starts_with("in_call") && matches!(*input_name, "invite" | "answer_ready");
            if expected == *state && !matches!(*input_name, "ice" | "local_candidate") && !restart {
                // Staying put sends nothing and touches no peer, except events (and, on
                // connecting, refreshing the replies' copies).
                assert!(
                    out.iter()
                        .all(|o| matches!(o, Output::Event(_) | Output::RefreshReplies)),
                    "state {state}, input {input_name}: {out:?}"
                );
            }
        }
    }
}

#[test]
fn a_new_offer_during_the_call_restarts_ice_on_the_same_peer() {
    let mut h = Harness::new();
    h.drive_to("in_call_connected");
    let restart = SessionDescription {
        sdp: "v=0 restart".into(),
        ..offer()
    };
    let out = h.input(Input::Server(ServerEvent::Invite(restart.clone())));
    assert_eq!(
        out,
        vec![
            Output::Event(AgentEvent::IceRestart { answered: false }),
            Output::RestartIce(restart),
        ]
    );
    let out = h.input(Input::AnswerReady(answer()));
    assert_eq!(
        out,
        vec![
            Output::Send(ClientEvent::Ok(answer())),
            Output::Event(AgentEvent::IceRestart { answered: true }),
        ]
    );
    assert_eq!(h.state_label(), "in_call_connected");
    // A refused restart leaves the call on its old path, said as an error.
    let out = h.input(Input::AnswerFailed("bad sdp".into()));
    assert_eq!(event_names(&out), ["error"]);
    assert_eq!(h.state_label(), "in_call_connected");
    // The call's own deadline still stands: a restart does not lengthen the call.
    let out = h.advance(TIMEOUTS.max_call);
    assert!(out.contains(&Output::ClosePeer), "{out:?}");
    assert_eq!(h.state(), "cleaning_up");
}

#[test]
fn loopback_candidates_from_the_network_are_ignored_and_a_call_takes_at_most_64() {
    let candidate = |addr: &str| {
        Some(IceCandidate {
            candidate: format!("candidate:1 1 udp 2122260223 {addr} 5000 typ host"),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        })
    };
    let mut h = Harness::new();
    h.drive_to("waiting_for_offer");
    h.input(Input::Server(ServerEvent::IceCandidate(candidate(
        "127.0.0.1",
    ))));
    h.input(Input::Server(ServerEvent::IceCandidate(candidate(
        "192.0.2.7",
    ))));
    h.input(Input::Server(ServerEvent::Invite(offer())));
    let out = h.input(Input::AnswerReady(answer()));
    let added: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::AddRemoteCandidate(c) => c.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(added.len(), 1, "only the routable one: {added:?}");
    assert!(added[0].candidate.contains("192.0.2.7"));
    let in_call = h.input(Input::Server(ServerEvent::IceCandidate(candidate(
        "169.254.1.1",
    ))));
    assert!(in_call.is_empty(), "link-local: {in_call:?}");
    let forwarded = (0..100)
        .filter(|i| {
            let c = candidate(&format!("192.0.2.{}", i % 250));
            h.input(Input::Server(ServerEvent::IceCandidate(c)))
                .iter()
                .any(|o| matches!(o, Output::AddRemoteCandidate(_)))
        })
        .count();
    assert_eq!(forwarded, 63, "64 in all, the buffered one included");

    // An agent that is itself on loopback (a demo, a test) takes loopback candidates.
    let mut flow = CallFlow::new(TIMEOUTS, "https://door.test").accepting_internal_candidates(true);
    let now = Instant::now();
    flow.handle_input(Input::SignalingConnected, now);
    flow.handle_input(
        Input::Press {
            fresh_room: Ok(room("R1")),
        },
        now,
    );
    flow.handle_input(Input::Server(ServerEvent::Created(room("R1"))), now);
    flow.handle_input(Input::Server(ServerEvent::NewPeer(room("R1"))), now);
    flow.handle_input(Input::Server(ServerEvent::Invite(offer())), now);
    flow.handle_input(Input::AnswerReady(answer()), now);
    let out = flow.handle_input(
        Input::Server(ServerEvent::IceCandidate(candidate("127.0.0.1"))),
        now,
    );
    assert!(
        matches!(out.as_slice(), [Output::AddRemoteCandidate(Some(_))]),
        "{out:?}"
    );
}

#[test]
fn losing_signaling_mid_call_keeps_the_peer_to_peer_call() {
    let mut h = Harness::new();
    h.drive_to("in_call_connected");
    let out = h.input(Input::SignalingLost);
    assert_eq!(event_names(&out), ["disconnected"]);
    assert_eq!(h.state_label(), "in_call_connected");
    // ICE loss still ends it.
    let out = h.input(Input::Peer(PeerEvent::IceLost));
    assert!(out.contains(&Output::ClosePeer));
    let out = h.input(Input::PeerClosed(CallStats::default()));
    assert_eq!(call_end_reason(&out), Some(EndReason::IceLost));
}

#[test]
fn the_ice_servers_given_after_created_go_with_the_offer_and_not_to_the_next_ring() {
    let mut h = Harness::new();
    h.input(Input::Press {
        fresh_room: Ok(h.room.clone()),
    });
    h.input(Input::Server(ServerEvent::Created(h.room.clone())));
    h.input(Input::Server(ServerEvent::IceServers(ice_servers())));
    h.input(Input::Server(ServerEvent::NewPeer(h.room.clone())));
    let out = h.input(Input::Server(ServerEvent::Invite(offer())));
    assert!(out.contains(&Output::StartAnswer {
        offer: offer(),
        ice: Some(ice_servers())
    }));
    h.input(Input::Server(ServerEvent::Bye));
    h.input(Input::PeerClosed(CallStats::default()));

    // The next ring through a server that sends none (the lab's) answers without them.
    h.input(Input::Press {
        fresh_room: Ok(h.room.clone()),
    });
    h.input(Input::Server(ServerEvent::Created(h.room.clone())));
    h.input(Input::Server(ServerEvent::NewPeer(h.room.clone())));
    let out = h.input(Input::Server(ServerEvent::Invite(offer())));
    assert!(out.contains(&Output::StartAnswer {
        offer: offer(),
        ice: None
    }));
}

fn live_room() -> RoomId {
    room("LiveRoom1")
}

/// Walks a live view from the server's request to media connected.
fn start_live_view(h: &mut Harness) -> Vec<Output> {
    let mut out = h.input(Input::Server(ServerEvent::Live(live_room())));
    out.extend(h.input(Input::Server(ServerEvent::Created(live_room()))));
    out.extend(h.input(Input::Server(ServerEvent::NewPeer(live_room()))));
    out.extend(h.input(Input::Server(ServerEvent::Invite(offer()))));
    out.extend(h.input(Input::AnswerReady(answer())));
    out.extend(h.input(Input::Peer(PeerEvent::MediaConnected { ice: None })));
    out
}

#[test]
fn a_live_view_opens_the_camera_without_chime_photo_or_notification() {
    let mut h = Harness::new();
    let out = start_live_view(&mut h);
    assert_eq!(h.state_label(), "in_call_connected");
    assert!(
        out.contains(&Output::Send(ClientEvent::Join(live_room()))),
        "it opens the room the server named: {out:?}"
    );
    assert!(
        !out.iter().any(|o| matches!(
            o,
            Output::Chime
                | Output::TakeSnapshot
                | Output::Notify { .. }
                | Output::NotifyUnreachable
        )),
        "nobody is told and nothing rings: {out:?}"
    );
    assert_eq!(
        event_names(&out)[..2],
        ["live_view", "created"],
        "the event stream says it is a live view"
    );
    assert!(h.flow.is_live());
    assert_eq!(
        h.flow.led(),
        LedMode::On,
        "the LED shows the camera is live"
    );
    let out = h.input(Input::Server(ServerEvent::Bye));
    assert_eq!(call_end_reason(&out), None, "ends once the peer is closed");
    let out = h.input(Input::PeerClosed(CallStats::default()));
    assert_eq!(call_end_reason(&out), Some(EndReason::Hangup));
    assert!(!h.flow.is_live());
    assert_eq!(h.flow.led(), LedMode::Off);
}

#[test]
fn a_live_view_waits_for_the_owner_only_as_long_as_for_an_offer() {
    let mut h = Harness::new();
    h.input(Input::Server(ServerEvent::Live(live_room())));
    h.input(Input::Server(ServerEvent::Created(live_room())));
    assert_eq!(h.state(), "waiting_for_peer");
    let out = h.advance(TIMEOUTS.offer);
    assert_eq!(call_end_reason(&out), Some(EndReason::NoAnswer));
    assert!(h.flow.is_idle());
}

#[test]
fn the_live_view_led_can_stay_dark() {
    let mut h = Harness::new();
    h.flow = CallFlow::new(TIMEOUTS, "https://door.test:8443/").with_live_view(LiveView {
        allowed: true,
        led: false,
    });
    h.input(Input::SignalingConnected);
    start_live_view(&mut h);
    assert_eq!(h.state_label(), "in_call_connected");
    assert_eq!(h.flow.led(), LedMode::Off);
}

#[test]
fn live_view_requests_are_refused_when_turned_off_or_busy() {
    let mut h = Harness::new();
    h.flow = CallFlow::new(TIMEOUTS, "https://door.test:8443/").with_live_view(LiveView {
        allowed: false,
        led: true,
    });
    h.input(Input::SignalingConnected);
    let out = h.input(Input::Server(ServerEvent::Live(live_room())));
    assert!(h.flow.is_idle());
    assert!(!out.iter().any(|o| matches!(o, Output::Send(_))), "{out:?}");
    assert!(matches!(
        &events(&out)[..],
        [AgentEvent::LiveViewRefused { why }] if why.contains("live-view = false")
    ));

    let mut h = Harness::new();
    h.drive_to("waiting_for_peer");
    let out = h.input(Input::Server(ServerEvent::Live(live_room())));
    assert_eq!(h.state(), "waiting_for_peer", "the ring goes on");
    assert!(!out.iter().any(|o| matches!(o, Output::Send(_))), "{out:?}");
    assert_eq!(event_names(&out), ["live_view_refused"]);
}

#[test]
fn a_press_during_a_live_view_ends_it_and_rings_once_the_camera_is_free() {
    let mut h = Harness::new();
    start_live_view(&mut h);
    let ring = room("RingAfterLive");
    let out = h.input(Input::Press {
        fresh_room: Ok(ring.clone()),
    });
    assert!(
        out.contains(&Output::Send(ClientEvent::Bye(Some(live_room())))),
        "the live view's room is left: {out:?}"
    );
    assert!(out.contains(&Output::ClosePeer));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Send(ClientEvent::Join(_)))),
        "no ring before the camera is free: {out:?}"
    );
    // A second press while the hand-over runs is busy, not a second ring.
    let again = h.input(Input::Press {
        fresh_room: Ok(room("SecondPress")),
    });
    assert_eq!(events(&again), [AgentEvent::Trigger { busy: true }]);
    let out = h.input(Input::PeerClosed(CallStats::default()));
    assert_eq!(call_end_reason(&out), Some(EndReason::RingTookOver));
    let end = out
        .iter()
        .position(|o| matches!(o, Output::Event(AgentEvent::CallEnd { .. })))
        .unwrap();
    let snapshot = out.iter().position(|o| *o == Output::TakeSnapshot).unwrap();
    let join = out
        .iter()
        .position(|o| *o == Output::Send(ClientEvent::Join(ring.clone())))
        .unwrap();
    assert!(end < snapshot && snapshot < join, "{out:?}");
    assert!(!h.flow.is_live(), "the new call is a ring");
    let out = h.input(Input::Server(ServerEvent::Created(ring.clone())));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Notify { room, .. } if *room == ring)),
        "the owners are told of the ring: {out:?}"
    );
    assert_eq!(h.flow.led(), LedMode::Blink);
}

const MESSAGE: Duration = Duration::from_secs(20);

fn recorded(room: RoomId) -> RecordedMessage {
    RecordedMessage {
        room,
        path: "/var/spool/doorbell/m.mp4".into(),
        duration: Duration::from_millis(12_300),
        bytes: 480_000,
    }
}

fn with_messages() -> Harness {
    let mut h = Harness::new();
    h.flow = CallFlow::new(TIMEOUTS, "https://door.test:8443/").with_message_length(MESSAGE);
    h.input(Input::SignalingConnected);
    h
}

#[test]
fn an_unanswered_ring_records_a_message_then_hands_it_over() {
    let mut h = with_messages();
    h.drive_to("waiting_for_peer");
    let out = h.advance(TIMEOUTS.ring);
    assert_eq!(call_end_reason(&out), Some(EndReason::NoAnswer));
    assert!(out.contains(&Output::Send(ClientEvent::Bye(Some(h.room.clone())))));
    assert!(
        out.contains(&Output::RecordMessage {
            room: h.room.clone(),
            max: MESSAGE
        }),
        "{out:?}"
    );
    assert_eq!(h.state(), "recording");
    assert_eq!(h.flow.led(), LedMode::On, "the camera is recording");
    assert!(
        !event_names(&out).contains(&"ready"),
        "not ready while recording: {out:?}"
    );
    let out = h.input(Input::MessageRecorded(Ok(recorded(h.room.clone()))));
    assert_eq!(
        events(&out)[0],
        AgentEvent::MessageRecorded {
            room: "RingRoom1".into(),
            duration_ms: 12_300,
            bytes: 480_000
        }
    );
    assert!(out.contains(&Output::DeliverMessage(recorded(h.room.clone()))));
    assert!(h.flow.is_idle());
    assert_eq!(event_names(&out).last(), Some(&"ready"));
}

#[test]
fn a_press_while_recording_ends_the_message_and_rings_no_new_call() {
    let mut h = with_messages();
    h.drive_to("waiting_for_peer");
    h.advance(TIMEOUTS.ring);
    let out = h.input(Input::Press {
        fresh_room: Ok(room("Another")),
    });
    assert!(out.contains(&Output::StopRecording));
    assert!(!out.iter().any(|o| matches!(o, Output::Send(_))), "{out:?}");
    assert_eq!(
        h.state(),
        "recording",
        "until the recorder has finished the file"
    );
}

#[test]
fn no_message_without_a_length_after_a_live_view_or_when_the_recorder_fails() {
    let mut h = Harness::new();
    h.drive_to("waiting_for_peer");
    let out = h.advance(TIMEOUTS.ring);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::RecordMessage { .. }))
    );
    assert!(h.flow.is_idle());

    let mut h = with_messages();
    h.input(Input::Server(ServerEvent::Live(live_room())));
    h.input(Input::Server(ServerEvent::Created(live_room())));
    let out = h.advance(TIMEOUTS.offer);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::RecordMessage { .. })),
        "an unused live view is no unanswered visitor: {out:?}"
    );

    let mut h = with_messages();
    h.drive_to("waiting_for_peer");
    h.advance(TIMEOUTS.ring);
    let out = h.input(Input::MessageRecorded(Err("no camera".into())));
    assert!(matches!(
        &events(&out)[0],
        AgentEvent::MessageFailed { reason, retrying: false } if reason == "no camera"
    ));
    assert!(h.flow.is_idle());
}

#[test]
fn a_recorder_that_never_finishes_is_given_up() {
    let mut h = with_messages();
    h.drive_to("waiting_for_peer");
    h.advance(TIMEOUTS.ring);
    assert!(
        h.advance(MESSAGE).is_empty(),
        "the prompt and the margin are its"
    );
    let out = h.advance(Duration::from_secs(15));
    assert!(out.contains(&Output::StopRecording));
    assert_eq!(event_names(&out), ["message_failed", "ready"]);
    assert!(h.flow.is_idle());
    // Its late result is still handed over, and changes nothing else.
    let out = h.input(Input::MessageRecorded(Ok(recorded(h.room.clone()))));
    assert!(out.contains(&Output::DeliverMessage(recorded(h.room.clone()))));
    assert!(h.flow.is_idle());
    assert!(!event_names(&out).contains(&"ready"));
}

#[test]
fn a_reply_plays_while_it_rings_and_may_end_the_ring_without_a_message() {
    let mut h = with_messages();
    h.drive_to("waiting_for_peer");
    let out = h.input(Input::Server(ServerEvent::Reply { id: 4, end: false }));
    assert_eq!(
        out[0],
        Output::Event(AgentEvent::Reply { id: 4, end: false })
    );
    assert!(out.contains(&Output::PlayReply(4)));
    assert_eq!(h.state(), "waiting_for_peer", "it keeps ringing");
    let out = h.input(Input::Server(ServerEvent::Reply { id: 5, end: true }));
    assert!(out.contains(&Output::PlayReply(5)));
    assert_eq!(call_end_reason(&out), Some(EndReason::Replied));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::RecordMessage { .. })),
        "the owner answered: no message is asked for: {out:?}"
    );
    assert!(h.flow.is_idle());
    // Nothing rings now: a late reply is not played.
    let out = h.input(Input::Server(ServerEvent::Reply { id: 6, end: false }));
    assert!(!out.contains(&Output::PlayReply(6)));
}

#[test]
fn the_reply_copies_are_refreshed_at_every_connection_and_when_the_server_says() {
    let mut h = Harness::new();
    assert!(
        h.input(Input::SignalingConnected)
            .contains(&Output::RefreshReplies)
    );
    h.drive_to("in_call_connected");
    assert_eq!(
        h.input(Input::Server(ServerEvent::RepliesChanged)),
        [Output::RefreshReplies]
    );
}
