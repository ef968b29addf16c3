//! The agent's ports (`doorbell_agent::ports`) wired to the real parts: our Socket.IO client,
//! the webrtc-rs peer with the configured camera, microphone and speaker, and the camera for
//! the photo at a press. Kept here, in the binary, so that the agent crate builds and tests
//! without webrtc or the video encoder.

use doorbell_agent::ports::{Answered, Answerer, Camera, Connector, Peer, SignalingLink};
use doorbell_peer::media_settings::{MediaSettings, SNAPSHOT_QUALITY};
use doorbell_peer::{CallPeer, PeerConfig};
use doorbell_protocol::{
    CallStats, ClientEvent, IceCandidate, IceServers, IceTransportPolicy, PeerEvent, ServerEvent,
    SessionDescription,
};
use doorbell_signaling::{SignalingConfig, SignalingConnection, SignalingSender};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

/// Connects with our Socket.IO client.
pub struct SocketIoConnector(pub SignalingConfig);

struct SocketIoLink {
    connection: SignalingConnection,
    sender: SignalingSender,
}

impl Connector for SocketIoConnector {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SignalingLink>, String>> {
        let config = self.0.clone();
        Box::pin(async move {
            let connection = doorbell_signaling::connect(&config)
                .await
                .map_err(|e| e.to_string())?;
            let sender = connection.sender();
            Ok(Box::new(SocketIoLink { connection, sender }) as Box<dyn SignalingLink>)
        })
    }
}

impl SignalingLink for SocketIoLink {
    fn send(&self, event: ClientEvent) -> Result<(), String> {
        self.sender.send(event).map_err(|e| e.to_string())
    }

    fn recv(&mut self) -> BoxFuture<'_, Option<ServerEvent>> {
        Box::pin(self.connection.recv())
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(self.connection.close())
    }
}

/// Answers with a webrtc-rs peer carrying the configured media, opened afresh for each call
/// (a camera unplugged in the last call is tried again).
pub struct WebRtcAnswerer {
    pub config: PeerConfig,
    pub media: MediaSettings,
}

impl Answerer for WebRtcAnswerer {
    fn answer(
        &self,
        offer: SessionDescription,
        ice: Option<IceServers>,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> BoxFuture<'static, Result<Answered, String>> {
        let config = with_call_ice_servers(&self.config, ice);
        let (media, problems) = self.media.open();
        for message in problems {
            // The call goes on without the part; the call flow reports it.
            let _ = events.send(PeerEvent::MediaError(message));
        }
        Box::pin(async move {
            let (peer, answer) = CallPeer::answer(&config, &offer, media, events)
                .await
                .map_err(|e| e.to_string())?;
            Ok((Box::new(WebRtcPeer(peer)) as Box<dyn Peer>, answer))
        })
    }
}

/// The agent's own ICE servers plus the ones the signaling server gave for this call. The
/// agent's own win: a server given by both keeps the agent's credentials.
fn with_call_ice_servers(own: &PeerConfig, call: Option<IceServers>) -> PeerConfig {
    let mut config = own.clone();
    let Some(call) = call else {
        return config;
    };
    if call.policy == IceTransportPolicy::Relay {
        // The server's operator asked that neither end learn the other's address.
        config.ice_transport_policy = IceTransportPolicy::Relay;
    }
    for server in call.servers {
        let known = config
            .ice_servers
            .iter()
            .any(|mine| mine.urls.iter().any(|url| server.urls.contains(url)));
        if !known {
            config.ice_servers.push(server);
        }
    }
    config
}

struct WebRtcPeer(CallPeer);

impl Peer for WebRtcPeer {
    fn add_remote_candidate(
        &self,
        candidate: Option<IceCandidate>,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0
                .add_remote_candidate(candidate)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn restart_ice(
        &self,
        offer: SessionDescription,
    ) -> BoxFuture<'_, Result<SessionDescription, String>> {
        Box::pin(async move { self.0.restart_ice(&offer).await.map_err(|e| e.to_string()) })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, CallStats> {
        Box::pin(self.0.close())
    }
}

/// Opens the video source at the press, captures one frame and encodes it (the camera is
/// released again before the call opens it).
pub struct OpenAndCapture(pub MediaSettings);

impl Camera for OpenAndCapture {
    fn snapshot_jpeg(&self) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let media = self.0.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || media.snapshot_jpeg(SNAPSHOT_QUALITY))
                .await
                .map_err(|e| format!("the snapshot worker failed: {e}"))?
        })
    }
}
