//! What the driver needs from the outside world, as traits. The real ones — our Socket.IO
//! client, the webrtc-rs peer, the camera — are wired in the `doorbell` binary
//! (`crates/doorbell/src/agent_io.rs`), so this crate, its call flow and its tests build
//! without webrtc or the video encoder; tests drive the real driver with fakes.

use crate::call_flow::RecordedMessage;
use crate::event_sink::EventSink;
use crate::events::AgentEvent;
use crate::indicator::Indicator;
use doorbell_notify::Notifier;
use doorbell_protocol::{
    CallStats, ClientEvent, IceCandidate, IceServers, PeerEvent, RoomId, ServerEvent,
    SessionDescription,
};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// An open signaling connection.
pub trait SignalingLink: Send + 'static {
    /// Queues an event for the server; never waits. `Err` says why it cannot be sent.
    fn send(&self, event: ClientEvent) -> Result<(), String>;
    /// The next event from the server; `None` once the connection is gone.
    fn recv(&mut self) -> BoxFuture<'_, Option<ServerEvent>>;
    /// Closes the connection politely.
    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Opens signaling connections.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SignalingLink>, String>>;
}

/// One call's WebRTC peer, once its answer is built.
pub trait Peer: Send + 'static {
    /// Applies a candidate trickled by the page (`None`: end of candidates).
    fn add_remote_candidate(
        &self,
        candidate: Option<IceCandidate>,
    ) -> BoxFuture<'_, Result<(), String>>;
    /// Applies the page's new offer during the call (an ICE restart) and returns the answer;
    /// the new local candidates follow as `PeerEvent::LocalCandidate`.
    fn restart_ice(
        &self,
        offer: SessionDescription,
    ) -> BoxFuture<'_, Result<SessionDescription, String>>;
    /// Closes the peer; resolves once camera, microphone and encoders are released.
    fn close(self: Box<Self>) -> BoxFuture<'static, CallStats>;
}

/// The answer to an offer: the peer and the SDP to send back.
pub type Answered = (Box<dyn Peer>, SessionDescription);

/// Builds peers.
pub trait Answerer: Send + Sync + 'static {
    /// Opens the call's media and answers `offer`, using the ICE servers the signaling server
    /// gave for this call besides the agent's own. Whatever the peer reports later (and any
    /// part of the media that could not be opened, as `MediaError`) comes on `events`.
    fn answer(
        &self,
        offer: SessionDescription,
        ice: Option<IceServers>,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> BoxFuture<'static, Result<Answered, String>>;
}

/// Where the visitor's photo comes from.
pub trait Camera: Send + Sync + 'static {
    /// A JPEG taken now. The driver bounds how long anyone waits for it.
    fn snapshot_jpeg(&self) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}

/// The visitor's message when nobody answers.
pub trait MessageRecorder: Send + Sync + 'static {
    /// Plays the prompt on the speaker, then records camera and microphone into a file for at
    /// most `max`, ending early when the visitor falls silent or `stop` fires.
    fn record(
        &self,
        room: RoomId,
        max: Duration,
        stop: oneshot::Receiver<()>,
    ) -> BoxFuture<'static, Result<RecordedMessage, String>>;
}

/// Where recorded messages wait until the server has them.
pub trait MessageOutbox: Send + Sync + 'static {
    /// Takes the message (its file is the outbox's from now on) and keeps trying to hand it
    /// over; what happens is said on `events` (`message_uploaded`, `message_failed`), and
    /// `uploaded` hears of each message the server took.
    fn deliver(
        &self,
        message: RecordedMessage,
        events: mpsc::UnboundedSender<AgentEvent>,
        uploaded: mpsc::UnboundedSender<RecordedMessage>,
    );
}

/// The owners' recorded replies, kept on the doorbell and played on its speaker.
pub trait ReplyPlayer: Send + Sync + 'static {
    /// Starts playing reply `id`; resolves once its first sound is on the speaker, with how
    /// long that took from the call (the rest plays on).
    fn play(&self, id: i64) -> BoxFuture<'static, Result<Duration, String>>;
    /// Brings the copies up to date with the server's replies; how many are kept.
    fn refresh(&self) -> BoxFuture<'static, Result<usize, String>>;
}

/// Video messages: the recorder and the outbox.
pub struct Messages {
    pub recorder: Arc<dyn MessageRecorder>,
    pub outbox: Arc<dyn MessageOutbox>,
    /// Messages an earlier run left in the outbox: handed over again at start.
    pub left_over: Vec<RecordedMessage>,
}

/// The outside world the driver talks to.
pub struct AgentIo {
    pub connector: Arc<dyn Connector>,
    pub answerer: Arc<dyn Answerer>,
    /// `None`: no video, so no photo.
    pub camera: Option<Arc<dyn Camera>>,
    pub notifiers: Vec<Arc<dyn Notifier>>,
    pub events: Box<dyn EventSink>,
    pub indicator: Indicator,
    /// `None`: no video messages (the driver then never gets [`crate::call_flow::Output::RecordMessage`] that
    /// it could not carry out: the flow's message length is zero).
    pub messages: Option<Messages>,
    /// `None`: replies are not played (a lab server has none).
    pub replies: Option<Arc<dyn ReplyPlayer>>,
}
