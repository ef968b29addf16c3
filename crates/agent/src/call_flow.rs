//! The agent's call flow as one explicit state machine with no I/O (docs/architecture.md).
//!
//! ```text
//! idle ──press──▶ joining ──created──▶ (notify) ──▶ waiting_for_peer ──new_peer──▶ waiting_for_offer
//!   ▲               │ joined/full/error/timeout            │ timeout                  │ invite
//!   │               ▼                                      ▼                          ▼
//!   └──────────── cleanup ◀── bye / ICE lost / timeouts / max length ── answering ──▶ in_call
//! ```
//!
//! A live view (`live` from our server: a paired owner opens the camera without a ring) takes
//! the same path from `joining`, without chime, photo or notification, and with its own LED
//! rule ([`LiveView`]). A press during a live view ends it (`ring_took_over`) and rings as soon
//! as the peer is closed: the visitor always wins.
//!
//! [`crate::agent_flow::AgentFlow`] wraps it with the signaling connection; the driver
//! ([`crate::driver`]) feeds [`Input`]s and the current time in, carries out the [`Output`]s
//! (send on signaling, notify, build or close the WebRTC peer, print events) and asks
//! `poll_timeout` when to call `handle_timeout`. Time is passed in,
//! never read, so every timeout is tested by moving a plain `Instant` forward.

use crate::events::{AgentEvent, EndReason};
use doorbell_protocol::{
    CallStats, ClientEvent, IceCandidate, IceServers, PeerEvent, RoomId, ServerEvent,
    SessionDescription,
};
use std::time::{Duration, Instant};

/// How long each wait may last. Every wait in the flow has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `join` sent → `created`.
    pub join: Duration,
    /// `created` → the owner's page joins (`new_peer`): how long the bell rings.
    pub ring: Duration,
    /// `new_peer` → `invite`.
    pub offer: Duration,
    /// `invite` → answer built (includes the bounded ICE gathering).
    pub answer: Duration,
    /// `ok` sent → media connected.
    pub connect: Duration,
    /// The longest a call may last.
    pub max_call: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            join: Duration::from_secs(5),
            ring: Duration::from_secs(60),
            offer: Duration::from_secs(15),
            answer: Duration::from_secs(10),
            connect: Duration::from_secs(15),
            max_call: Duration::from_secs(600),
        }
    }
}

/// A visitor's message on the doorbell's disk, waiting to be handed to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedMessage {
    /// The ring it answers.
    pub room: RoomId,
    /// The MP4 file.
    pub path: std::path::PathBuf,
    pub duration: Duration,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The button was pressed; `fresh_room` is a new random room id for the ring it may start,
    /// or why none could be made (the OS random generator failed).
    Press {
        fresh_room: Result<RoomId, String>,
    },
    SignalingConnected,
    /// A connect attempt failed (the reason, for the event stream).
    SignalingConnectFailed(String),
    SignalingLost,
    Server(ServerEvent),
    /// The peer was built from the offer; this is the answer (with its candidates).
    AnswerReady(SessionDescription),
    AnswerFailed(String),
    Peer(PeerEvent),
    /// The driver closed the peer (after [`Output::ClosePeer`]).
    PeerClosed(CallStats),
    /// The agent is stopping: end whatever is going on.
    Shutdown,
    /// Every trigger has ended (e.g. end of standard input): stop once idle.
    TriggersEnded,
    /// The recorder finished the visitor's message (after [`Output::RecordMessage`]).
    MessageRecorded(Result<RecordedMessage, String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Print one line of the event stream.
    Event(AgentEvent),
    /// Send on the signaling connection (dropped if it is down).
    Send(ClientEvent),
    /// Open the signaling connection and report `SignalingConnected`/`SignalingConnectFailed`.
    Connect,
    /// Close the signaling connection (the agent is stopping).
    CloseSignaling,
    /// Start taking the visitor's photo for the notification that follows.
    TakeSnapshot,
    /// Pulse the chime.
    Chime,
    /// Show this on the LED.
    Led(LedMode),
    /// Tell the owner (every configured notifier) that someone is at the door.
    Notify { room: RoomId, url: String },
    /// Tell the owner someone rang although no call can be opened (server unreachable).
    NotifyUnreachable,
    /// Build the WebRTC peer from this offer, with the ICE servers the signaling server gave
    /// for this call (`None`: it gave none, e.g. the lab's server), and report
    /// `AnswerReady`/`AnswerFailed`.
    StartAnswer {
        offer: SessionDescription,
        ice: Option<IceServers>,
    },
    /// Apply the page's new offer to the running peer (an ICE restart) and report the answer
    /// as `AnswerReady`/`AnswerFailed`.
    RestartIce(SessionDescription),
    /// Hand a candidate trickled by the page to the peer.
    AddRemoteCandidate(Option<IceCandidate>),
    /// Close the peer (or abandon building it), release camera/mic/encoders, then report
    /// `PeerClosed`.
    ClosePeer,
    /// Play the prompt, then record the visitor for at most `max` (less if they fall silent),
    /// and report `MessageRecorded`.
    RecordMessage { room: RoomId, max: Duration },
    /// End the recording now (the visitor pressed again, or the agent stops).
    StopRecording,
    /// Keep the message until the server has it, and tell the owners.
    DeliverMessage(RecordedMessage),
    /// Play the owners' recorded reply `id` on the speaker now.
    PlayReply(i64),
    /// Bring the copies of the owners' replies up to date with the server's.
    RefreshReplies,
    /// Nothing is left to do: the driver returns.
    Exit,
}

/// How the doorbell treats live view requests (`[agent] live-view`, `live-view-led`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveView {
    /// Whether paired owners may open the camera without a ring.
    pub allowed: bool,
    /// Whether the LED is lit while the camera is live, so people at the door can tell.
    pub led: bool,
}

impl Default for LiveView {
    fn default() -> Self {
        Self {
            allowed: true,
            led: true,
        }
    }
}

/// What the LED shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedMode {
    Off,
    /// Someone rang and waits for the owner.
    Blink,
    /// A call is going on.
    On,
}

impl LedMode {
    /// Blinking from the press until the call is up, on during the call, off otherwise.
    pub fn for_call_state(state: &CallState) -> Self {
        match state {
            CallState::Idle | CallState::CleaningUp { .. } => LedMode::Off,
            CallState::Joining { .. }
            | CallState::WaitingForPeer { .. }
            | CallState::WaitingForOffer { .. }
            | CallState::Answering { .. } => LedMode::Blink,
            // The camera is recording: people at the door can tell.
            CallState::InCall { .. } | CallState::Recording { .. } => LedMode::On,
        }
    }
}

/// The states of a call. Each carries what it needs and the instant its wait ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    Idle,
    Joining {
        room: RoomId,
        deadline: Instant,
    },
    WaitingForPeer {
        room: RoomId,
        deadline: Instant,
    },
    WaitingForOffer {
        room: RoomId,
        deadline: Instant,
        remote_candidates: Vec<Option<IceCandidate>>,
    },
    Answering {
        room: RoomId,
        deadline: Instant,
        remote_candidates: Vec<Option<IceCandidate>>,
        local_candidates: Vec<Option<IceCandidate>>,
    },
    InCall {
        room: RoomId,
        media_connected: bool,
        /// Until media connects: the connect deadline; then the end of the longest call.
        deadline: Instant,
        call_deadline: Instant,
    },
    /// Waiting for the driver to close the peer before reporting the end.
    CleaningUp {
        reason: EndReason,
    },
    /// Nobody answered: recording the visitor's message for the ring in `room`.
    Recording {
        room: RoomId,
        /// The recording's longest length plus the prompt and a margin: a recorder that has
        /// not finished by then is given up.
        deadline: Instant,
    },
}

impl CallState {
    pub fn name(&self) -> &'static str {
        match self {
            CallState::Idle => "idle",
            CallState::Joining { .. } => "joining",
            CallState::WaitingForPeer { .. } => "waiting_for_peer",
            CallState::WaitingForOffer { .. } => "waiting_for_offer",
            CallState::Answering { .. } => "answering",
            CallState::InCall { .. } => "in_call",
            CallState::CleaningUp { .. } => "cleaning_up",
            CallState::Recording { .. } => "recording",
        }
    }

    fn room(&self) -> Option<&RoomId> {
        match self {
            CallState::Joining { room, .. }
            | CallState::WaitingForPeer { room, .. }
            | CallState::WaitingForOffer { room, .. }
            | CallState::Answering { room, .. }
            | CallState::InCall { room, .. } => Some(room),
            CallState::Idle | CallState::CleaningUp { .. } | CallState::Recording { .. } => None,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            CallState::Recording { deadline, .. }
            | CallState::Joining { deadline, .. }
            | CallState::WaitingForPeer { deadline, .. }
            | CallState::WaitingForOffer { deadline, .. }
            | CallState::Answering { deadline, .. }
            | CallState::InCall { deadline, .. } => Some(*deadline),
            CallState::Idle | CallState::CleaningUp { .. } => None,
        }
    }

    /// Whether a WebRTC peer exists (or is being built) and must be closed at the end.
    fn has_peer(&self) -> bool {
        matches!(self, CallState::Answering { .. } | CallState::InCall { .. })
    }
}

pub struct CallFlow {
    state: CallState,
    timeouts: Timeouts,
    /// Base of the link sent to the owner, e.g. `https://door.example.com:8443`.
    public_url: String,
    signaling_up: bool,
    /// The ICE servers the signaling server handed out for the current ring.
    ice: Option<IceServers>,
    /// Whether remote candidates on loopback or link-local addresses are used: only when the
    /// agent itself is on such an address (a test or demo on one machine). From the network
    /// they would make the agent probe its own local services.
    accept_internal_candidates: bool,
    /// Remote candidates handed to the peer since the last offer (capped).
    remote_candidates_in_call: usize,
    live_view: LiveView,
    /// The current call is a live view, not a ring.
    live: bool,
    /// A press that ended a live view: it rings once the live view's peer is closed.
    queued_press: Option<Result<RoomId, String>>,
    /// The longest message a visitor may leave when nobody answers (zero: none).
    message_length: Duration,
    /// The ring that just went unanswered: its message is recorded once it has ended.
    record_after: Option<RoomId>,
}

/// The prompt (about 6 s) and the recorder's start and finish, beyond the message itself.
const RECORDING_MARGIN: Duration = Duration::from_secs(15);

impl CallFlow {
    pub fn new(timeouts: Timeouts, public_url: impl Into<String>) -> Self {
        let public_url = public_url.into();
        Self {
            state: CallState::Idle,
            timeouts,
            public_url: public_url.trim_end_matches('/').to_owned(),
            signaling_up: false,
            ice: None,
            accept_internal_candidates: false,
            remote_candidates_in_call: 0,
            live_view: LiveView::default(),
            live: false,
            queued_press: None,
            message_length: Duration::ZERO,
            record_after: None,
        }
    }

    /// Lets a visitor nobody answered leave a message of at most `length` (zero: off).
    pub fn with_message_length(mut self, length: Duration) -> Self {
        self.message_length = length;
        self
    }

    /// How live view requests are treated (default: allowed, LED lit).
    pub fn with_live_view(mut self, live_view: LiveView) -> Self {
        self.live_view = live_view;
        self
    }

    /// Whether the current call is a live view.
    pub fn is_live(&self) -> bool {
        self.live && !self.is_idle()
    }

    /// What the LED shows now: blinking from a press until the call is up, on during it; during
    /// a live view on throughout (or off, if so configured).
    pub fn led(&self) -> LedMode {
        if self.is_live() && !matches!(self.state, CallState::CleaningUp { .. }) {
            return if self.live_view.led {
                LedMode::On
            } else {
                LedMode::Off
            };
        }
        LedMode::for_call_state(&self.state)
    }

    /// Uses loopback and link-local remote candidates too (see the field).
    pub fn accepting_internal_candidates(mut self, accept: bool) -> Self {
        self.accept_internal_candidates = accept;
        self
    }

    pub fn state(&self) -> &CallState {
        &self.state
    }

    pub fn is_idle(&self) -> bool {
        self.state == CallState::Idle
    }

    /// The link the owner opens for `room`.
    pub fn link(&self, room: &RoomId) -> String {
        format!("{}/?room={}", self.public_url, room.as_str())
    }

    /// When [`CallFlow::handle_timeout`] must next be called, if any wait is running.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.state.deadline()
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(deadline) = self.state.deadline() else {
            return out;
        };
        if now < deadline {
            return out;
        }
        let reason = match &self.state {
            CallState::Recording { .. } => {
                out.push(Output::StopRecording);
                out.push(Output::Event(AgentEvent::MessageFailed {
                    reason: "the recorder did not finish in time; the message is lost".into(),
                    retrying: false,
                }));
                self.state = CallState::Idle;
                out.push(Output::Event(AgentEvent::Ready));
                return out;
            }
            CallState::Joining { .. } => EndReason::JoinTimeout,
            CallState::WaitingForPeer { room, .. } => {
                if !self.live && !self.message_length.is_zero() {
                    self.record_after = Some(room.clone());
                }
                EndReason::NoAnswer
            }
            CallState::WaitingForOffer { .. } => EndReason::OfferTimeout,
            CallState::Answering { .. } => EndReason::AnswerFailed,
            CallState::InCall {
                media_connected: false,
                ..
            } => EndReason::MediaTimeout,
            CallState::InCall { .. } => EndReason::MaxDuration,
            CallState::Idle | CallState::CleaningUp { .. } => return out,
        };
        if reason == EndReason::AnswerFailed {
            out.push(Output::Event(AgentEvent::Error {
                message: "building the answer took too long".into(),
            }));
        }
        self.end(reason, now, &mut out);
        out
    }

    pub fn handle_input(&mut self, input: Input, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Press { fresh_room } => self.on_press(fresh_room, now, &mut out),
            Input::SignalingConnected => {
                self.signaling_up = true;
                out.push(Output::Event(AgentEvent::Connected));
                // The replies may have changed while we were away.
                out.push(Output::RefreshReplies);
            }
            Input::SignalingLost => {
                self.signaling_up = false;
                out.push(Output::Event(AgentEvent::Disconnected));
                // The server dropped our room with the connection. A call already up is peer to
                // peer and goes on; anything still being set up cannot finish.
                match self.state {
                    CallState::Joining { .. }
                    | CallState::WaitingForPeer { .. }
                    | CallState::WaitingForOffer { .. }
                    | CallState::Answering { .. } => {
                        self.end(EndReason::SignalingLost, now, &mut out)
                    }
                    // A recording is local; it is handed to the server when it is back.
                    CallState::Idle
                    | CallState::InCall { .. }
                    | CallState::CleaningUp { .. }
                    | CallState::Recording { .. } => {}
                }
            }
            Input::Server(event) => self.on_server_event(event, now, &mut out),
            Input::AnswerReady(answer) => self.on_answer_ready(answer, now, &mut out),
            Input::AnswerFailed(message) => match self.state {
                CallState::Answering { .. } => {
                    out.push(Output::Event(AgentEvent::Error { message }));
                    self.end(EndReason::AnswerFailed, now, &mut out);
                }
                // A refused restart offer leaves the call on its old path; if that is gone,
                // ICE lost ends it.
                CallState::InCall { .. } => out.push(Output::Event(AgentEvent::Error {
                    message: format!("the ICE restart offer was refused: {message}"),
                })),
                _ => {}
            },
            Input::Peer(signal) => self.on_peer_event(signal, now, &mut out),
            Input::PeerClosed(counters) => {
                if let CallState::CleaningUp { reason } = self.state {
                    self.finish(reason, counters, now, &mut out);
                }
            }
            Input::Shutdown if matches!(self.state, CallState::Recording { .. }) => {
                // The message so far is kept: the recorder finishes the file.
                out.push(Output::StopRecording);
            }
            Input::Shutdown => {
                if !matches!(self.state, CallState::Idle | CallState::CleaningUp { .. }) {
                    self.end(EndReason::Shutdown, now, &mut out);
                }
            }
            Input::MessageRecorded(recorded) => self.on_message_recorded(recorded, &mut out),
            // The connection around the call is [`crate::agent_flow`]'s business.
            Input::SignalingConnectFailed(_) | Input::TriggersEnded => {}
        }
        out
    }

    fn on_press(
        &mut self,
        fresh_room: Result<RoomId, String>,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        if self.live && !self.is_idle() {
            // The visitor wins over a live view: end it, ring when its peer is closed.
            if self.queued_press.is_some() {
                out.push(Output::Event(AgentEvent::Trigger { busy: true }));
                return;
            }
            self.queued_press = Some(fresh_room);
            if !matches!(self.state, CallState::CleaningUp { .. }) {
                self.end(EndReason::RingTookOver, now, out);
            }
            return;
        }
        if let CallState::Recording { .. } = self.state {
            // The visitor presses again: their message is done.
            out.push(Output::Event(AgentEvent::Trigger { busy: true }));
            out.push(Output::StopRecording);
            return;
        }
        if !self.is_idle() {
            // A press during a ring or call is reported, never a second call.
            out.push(Output::Event(AgentEvent::Trigger { busy: true }));
            return;
        }
        out.push(Output::Event(AgentEvent::Trigger { busy: false }));
        let fresh_room = match fresh_room {
            Ok(room) => room,
            Err(why) => {
                // A guessable room would hand the call to whoever guesses it: no call at all.
                out.push(Output::Event(AgentEvent::Error {
                    message: format!(
                        "someone rang but no secret room id could be made ({why}); \
                         the owner is told without a link"
                    ),
                }));
                out.push(Output::NotifyUnreachable);
                return;
            }
        };
        if !self.signaling_up {
            out.push(Output::Event(AgentEvent::Error {
                message: "someone rang but the call service is unreachable; \
                          the owner is told without a link"
                    .into(),
            }));
            out.push(Output::NotifyUnreachable);
            return;
        }
        self.ice = None;
        self.live = false;
        out.push(Output::Send(ClientEvent::Join(fresh_room.clone())));
        self.state = CallState::Joining {
            room: fresh_room,
            deadline: now + self.timeouts.join,
        };
    }

    /// The server asks for a live view in `room` on behalf of a paired owner.
    fn on_live_request(&mut self, room: RoomId, now: Instant, out: &mut Vec<Output>) {
        let refusal = if !self.live_view.allowed {
            Some("live view is turned off on this doorbell (live-view = false)")
        } else if !self.is_idle() || self.queued_press.is_some() {
            Some("the doorbell is busy with a call")
        } else if !self.signaling_up {
            Some("the signaling connection is down")
        } else {
            None
        };
        if let Some(why) = refusal {
            out.push(Output::Event(AgentEvent::LiveViewRefused {
                why: why.into(),
            }));
            return;
        }
        self.ice = None;
        self.live = true;
        out.push(Output::Event(AgentEvent::LiveView {
            room: room.as_str().to_owned(),
        }));
        out.push(Output::Send(ClientEvent::Join(room.clone())));
        self.state = CallState::Joining {
            room,
            deadline: now + self.timeouts.join,
        };
    }

    fn on_server_event(&mut self, event: ServerEvent, now: Instant, out: &mut Vec<Output>) {
        match (&mut self.state, event) {
            (_, ServerEvent::Live(room)) => self.on_live_request(room, now, out),
            (_, ServerEvent::RepliesChanged) => out.push(Output::RefreshReplies),
            (CallState::WaitingForPeer { .. }, ServerEvent::Reply { id, end }) => {
                // An owner answers the ring with a recording instead of a call.
                out.push(Output::Event(AgentEvent::Reply { id, end }));
                out.push(Output::PlayReply(id));
                if end {
                    self.end(EndReason::Replied, now, out);
                }
            }
            (_, ServerEvent::Reply { id, .. }) => {
                out.push(Output::Event(AgentEvent::Error {
                    message: format!("reply {id} came when nothing rings; not played"),
                }));
            }
            (CallState::Joining { room, .. }, ServerEvent::Created(created))
                if *room == created && self.live =>
            {
                // The owner who asked is already on the way: no chime, no message, and the
                // wait for their page is the offer wait, not a ring's.
                let room = room.clone();
                out.push(Output::Event(AgentEvent::Created {
                    room: room.as_str().to_owned(),
                }));
                self.state = CallState::WaitingForPeer {
                    room,
                    deadline: now + self.timeouts.offer,
                };
            }
            (CallState::Joining { room, .. }, ServerEvent::Created(created))
                if *room == created =>
            {
                let room = room.clone();
                let url = self.link(&room);
                out.push(Output::Event(AgentEvent::Created {
                    room: room.as_str().to_owned(),
                }));
                out.push(Output::Notify {
                    room: room.clone(),
                    url: url.clone(),
                });
                out.push(Output::Event(AgentEvent::Notified {
                    room: room.as_str().to_owned(),
                    url,
                }));
                self.state = CallState::WaitingForPeer {
                    room,
                    deadline: now + self.timeouts.ring,
                };
            }
            (CallState::Joining { .. }, ServerEvent::Joined(_) | ServerEvent::Full(_)) => {
                self.end(EndReason::RoomTaken, now, out);
            }
            (CallState::Joining { .. }, ServerEvent::Error(e)) => {
                out.push(Output::Event(AgentEvent::Error {
                    message: format!("the server refused the room: {} ({})", e.message, e.code),
                }));
                self.end(EndReason::ServerRefused, now, out);
            }
            (CallState::WaitingForPeer { room, .. }, ServerEvent::NewPeer(_))
            | (CallState::WaitingForOffer { room, .. }, ServerEvent::NewPeer(_)) => {
                // A second `new_peer` while waiting for the offer: the first page left and
                // another arrived; give the new one the whole offer wait.
                let room = room.clone();
                out.push(Output::Event(AgentEvent::NewPeer));
                self.state = CallState::WaitingForOffer {
                    room,
                    deadline: now + self.timeouts.offer,
                    remote_candidates: Vec::new(),
                };
            }
            (
                CallState::WaitingForOffer {
                    room,
                    remote_candidates,
                    ..
                },
                ServerEvent::Invite(offer),
            ) => {
                let room = room.clone();
                let remote_candidates = std::mem::take(remote_candidates);
                out.push(Output::Event(AgentEvent::Invite));
                out.push(Output::StartAnswer {
                    offer,
                    ice: self.ice.clone(),
                });
                self.state = CallState::Answering {
                    room,
                    deadline: now + self.timeouts.answer,
                    remote_candidates,
                    local_candidates: Vec::new(),
                };
            }
            (
                CallState::WaitingForOffer {
                    remote_candidates, ..
                }
                | CallState::Answering {
                    remote_candidates, ..
                },
                ServerEvent::IceCandidate(c),
            ) => {
                // Held until the peer exists; the offer may even come after its candidates.
                if usable(&c, self.accept_internal_candidates)
                    && remote_candidates.len() < MAX_BUFFERED_CANDIDATES
                {
                    remote_candidates.push(c);
                }
            }
            (
                CallState::Joining { .. }
                | CallState::WaitingForPeer { .. }
                | CallState::WaitingForOffer { .. },
                ServerEvent::IceServers(servers),
            ) => {
                // Sent right after `created`; kept for the answer.
                self.ice = Some(servers);
            }
            (CallState::InCall { .. }, ServerEvent::IceCandidate(c)) => {
                if usable(&c, self.accept_internal_candidates)
                    && self.remote_candidates_in_call < MAX_BUFFERED_CANDIDATES
                {
                    self.remote_candidates_in_call += 1;
                    out.push(Output::AddRemoteCandidate(c));
                }
            }
            (CallState::InCall { .. }, ServerEvent::Invite(offer)) => {
                self.remote_candidates_in_call = 0;
                // The page lost its path (a new network, a NAT that forgot us) and restarts
                // ICE with a new offer on the same call. The call's deadlines stand; if the new
                // path never comes up, the peer reports ICE lost as before.
                out.push(Output::Event(AgentEvent::IceRestart { answered: false }));
                out.push(Output::RestartIce(offer));
            }
            (
                CallState::WaitingForOffer { .. }
                | CallState::Answering { .. }
                | CallState::InCall { .. },
                ServerEvent::Bye,
            ) => {
                out.push(Output::Event(AgentEvent::ByeReceived));
                self.end(EndReason::Hangup, now, out);
            }
            (_, ServerEvent::Error(e)) => {
                out.push(Output::Event(AgentEvent::Error {
                    message: format!("server error: {} ({})", e.message, e.code),
                }));
            }
            (state, event) => {
                tracing::debug!(state = state.name(), ?event, "ignoring unexpected event");
            }
        }
    }

    fn on_answer_ready(&mut self, answer: SessionDescription, now: Instant, out: &mut Vec<Output>) {
        if let CallState::InCall { .. } = self.state {
            // The answer to an ICE restart: the call is already up, only the path changes.
            out.push(Output::Send(ClientEvent::Ok(answer)));
            out.push(Output::Event(AgentEvent::IceRestart { answered: true }));
            return;
        }
        let CallState::Answering {
            room,
            remote_candidates,
            local_candidates,
            ..
        } = &mut self.state
        else {
            return;
        };
        let room = room.clone();
        let remote = std::mem::take(remote_candidates);
        let local = std::mem::take(local_candidates);
        out.push(Output::Send(ClientEvent::Ok(answer)));
        out.push(Output::Event(AgentEvent::OkSent));
        out.extend(
            local
                .into_iter()
                .map(|c| Output::Send(ClientEvent::IceCandidate(c))),
        );
        self.remote_candidates_in_call = remote.len();
        out.extend(remote.into_iter().map(Output::AddRemoteCandidate));
        self.state = CallState::InCall {
            room,
            media_connected: false,
            deadline: now + self.timeouts.connect,
            call_deadline: now + self.timeouts.max_call,
        };
    }

    fn on_peer_event(&mut self, signal: PeerEvent, now: Instant, out: &mut Vec<Output>) {
        match (&mut self.state, signal) {
            (
                CallState::Answering {
                    local_candidates, ..
                },
                PeerEvent::LocalCandidate(c),
            ) => {
                // Must not overtake the answer on the wire.
                if local_candidates.len() < MAX_BUFFERED_CANDIDATES {
                    local_candidates.push(c);
                }
            }
            (CallState::InCall { .. }, PeerEvent::LocalCandidate(c)) => {
                out.push(Output::Send(ClientEvent::IceCandidate(c)));
            }
            (
                CallState::InCall {
                    media_connected,
                    deadline,
                    call_deadline,
                    ..
                },
                PeerEvent::MediaConnected { ice },
            ) => {
                if !*media_connected {
                    *media_connected = true;
                    *deadline = *call_deadline;
                    out.push(Output::Event(AgentEvent::MediaConnected { ice }));
                }
            }
            (CallState::InCall { .. }, PeerEvent::IceLost | PeerEvent::Closed) => {
                self.end(EndReason::IceLost, now, out)
            }
            (CallState::Answering { .. } | CallState::InCall { .. }, PeerEvent::MediaError(m)) => {
                out.push(Output::Event(AgentEvent::Error { message: m }));
            }
            (state, signal) => {
                tracing::debug!(state = state.name(), ?signal, "ignoring late peer signal");
            }
        }
    }

    /// Leaves the room and, when a peer exists, asks the driver to close it first.
    fn end(&mut self, reason: EndReason, now: Instant, out: &mut Vec<Output>) {
        let had_peer = self.state.has_peer();
        if let Some(room) = self.state.room() {
            // `bye` is how we leave the room, so the link shows "this call has ended" at once,
            // whether or not the page is still there.
            out.push(Output::Send(ClientEvent::Bye(Some(room.clone()))));
        }
        if had_peer {
            out.push(Output::ClosePeer);
            self.state = CallState::CleaningUp { reason };
        } else {
            self.finish(reason, CallStats::default(), now, out);
        }
    }

    fn finish(
        &mut self,
        reason: EndReason,
        counters: CallStats,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        out.push(Output::Event(AgentEvent::CallEnd {
            reason,
            audio_frames_received: counters.audio_frames_received,
            audio_frames_nonsilent: counters.audio_frames_nonsilent,
            video_frames_sent: counters.video_frames_sent,
        }));
        self.state = CallState::Idle;
        self.live = false;
        if let Some(room) = self.record_after.take() {
            out.push(Output::Event(AgentEvent::MessageRecording {
                room: room.as_str().to_owned(),
            }));
            out.push(Output::RecordMessage {
                room: room.clone(),
                max: self.message_length,
            });
            self.state = CallState::Recording {
                room,
                deadline: now + self.message_length + RECORDING_MARGIN,
            };
            return;
        }
        match self.queued_press.take() {
            // The live view is closed: the camera is free for the ring's photo and call.
            Some(fresh_room) => {
                out.push(Output::TakeSnapshot);
                self.on_press(fresh_room, now, out);
            }
            None => out.push(Output::Event(AgentEvent::Ready)),
        }
    }
}

impl CallFlow {
    fn on_message_recorded(
        &mut self,
        recorded: Result<RecordedMessage, String>,
        out: &mut Vec<Output>,
    ) {
        match recorded {
            Ok(message) => {
                out.push(Output::Event(AgentEvent::MessageRecorded {
                    room: message.room.as_str().to_owned(),
                    duration_ms: u64::try_from(message.duration.as_millis()).unwrap_or(u64::MAX),
                    bytes: message.bytes,
                }));
                out.push(Output::DeliverMessage(message));
            }
            Err(reason) => out.push(Output::Event(AgentEvent::MessageFailed {
                reason,
                retrying: false,
            })),
        }
        // A late report (the recorder outlived its deadline) changes nothing else.
        if let CallState::Recording { .. } = self.state {
            self.state = CallState::Idle;
            out.push(Output::Event(AgentEvent::Ready));
        }
    }
}

/// A remote candidate the flow passes on: the end marker, or one it may use (see
/// `CallFlow::accept_internal_candidates`).
fn usable(candidate: &Option<IceCandidate>, accept_internal: bool) -> bool {
    let usable = candidate
        .as_ref()
        .is_none_or(|c| accept_internal || !c.is_internal());
    if !usable {
        tracing::debug!("ignoring a remote candidate on a loopback or link-local address");
    }
    usable
}

/// A page trickles a dozen candidates at most; more is noise or an attack.
const MAX_BUFFERED_CANDIDATES: usize = 64;
