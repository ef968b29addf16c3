//! What the driver needs from the outside world, as traits. The real ones — our Socket.IO
//! client, the webrtc-rs peer, the camera — are wired in the `doorbell` binary
//! (`crates/doorbell/src/agent_io.rs`), so this crate, its call flow and its tests build
//! without webrtc or the video encoder; tests drive the real driver with fakes.

use crate::event_sink::EventSink;
use crate::indicator::Indicator;
use doorbell_notify::Notifier;
use doorbell_protocol::{
    CallStats, ClientEvent, IceCandidate, IceServers, PeerEvent, ServerEvent, SessionDescription,
};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::mpsc;

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

/// The outside world the driver talks to.
pub struct AgentIo {
    pub connector: Arc<dyn Connector>,
    pub answerer: Arc<dyn Answerer>,
    /// `None`: no video, so no photo.
    pub camera: Option<Arc<dyn Camera>>,
    pub notifiers: Vec<Arc<dyn Notifier>>,
    pub events: Box<dyn EventSink>,
    pub indicator: Indicator,
}
