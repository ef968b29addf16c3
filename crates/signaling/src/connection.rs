//! The live Socket.IO session: connecting, and the task that owns the websocket (replies to
//! pings, pings on Engine.IO 3, notices a dead server, forwards events both ways).

use super::endpoint::Endpoint;
use super::handshake::{packet_kind, send_text, socket_io_handshake};
use super::{SignalingConfig, SignalingError, tls};
use doorbell_protocol::limits::MAX_PAYLOAD_BYTES;
use doorbell_protocol::wire::{EngineIoVersion, EnginePacket, SocketPacket};
use doorbell_protocol::{ClientEvent, ServerEvent};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use url::Host;

/// Events the server sent that the application has not read yet. When full, the connection
/// stops reading the socket until the application catches up.
const EVENT_QUEUE: usize = 64;
/// How long a polite close may take before the socket is simply dropped.
const CLOSE_BOUND: Duration = Duration::from_secs(2);

/// Connects to the Socket.IO server of `config` (TCP, TLS for `https`, websocket, Engine.IO
/// open, Socket.IO connect), all within `config.connect_timeout`.
pub async fn connect(config: &SignalingConfig) -> Result<SignalingConnection, SignalingError> {
    let endpoint = Endpoint::new(&config.server, config.engine_io, config.token.as_deref())?;
    tracing::info!(server = %endpoint.redacted, "connecting to the signaling server");
    let attempt = async {
        let tcp = connect_tcp(&endpoint).await?;
        if endpoint.tls {
            let stream = tls::handshake(tcp, &endpoint.host, &config.trust).await?;
            establish(stream, &endpoint, config).await
        } else {
            establish(tcp, &endpoint, config).await
        }
    };
    timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| SignalingError::Timeout(config.connect_timeout))?
}

/// Like [`connect`], over a transport the caller opened (a proxy tunnel, an in-memory pipe in
/// tests). `config.server` still names the host for the websocket request; `config.trust`
/// is not used: TLS, if any, is the stream's business.
pub async fn connect_over_stream<S>(
    stream: S,
    config: &SignalingConfig,
) -> Result<SignalingConnection, SignalingError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let endpoint = Endpoint::new(&config.server, config.engine_io, config.token.as_deref())?;
    timeout(config.connect_timeout, establish(stream, &endpoint, config))
        .await
        .map_err(|_| SignalingError::Timeout(config.connect_timeout))?
}

async fn connect_tcp(endpoint: &Endpoint) -> Result<TcpStream, SignalingError> {
    let connected = match &endpoint.host {
        Host::Domain(name) => TcpStream::connect((name.as_str(), endpoint.port)).await,
        Host::Ipv4(ip) => TcpStream::connect((*ip, endpoint.port)).await,
        Host::Ipv6(ip) => TcpStream::connect((*ip, endpoint.port)).await,
    };
    let tcp = connected.map_err(|e| SignalingError::Connect {
        server: endpoint.redacted.clone(),
        reason: e.to_string(),
    })?;
    // Signaling messages are small and latency matters more than packet count.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not disable Nagle's algorithm");
    }
    Ok(tcp)
}

async fn establish<S>(
    stream: S,
    endpoint: &Endpoint,
    config: &SignalingConfig,
) -> Result<SignalingConnection, SignalingError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(4 * MAX_PAYLOAD_BYTES))
        .max_frame_size(Some(4 * MAX_PAYLOAD_BYTES));
    let (mut ws, _response) =
        tokio_tungstenite::client_async_with_config(endpoint.url.as_str(), stream, Some(ws_config))
            .await
            .map_err(|e| websocket_error(e, endpoint))?;
    let open = socket_io_handshake(&mut ws, config.engine_io, config.token.as_deref()).await?;
    tracing::info!(
        server = %endpoint.redacted,
        ping_interval_ms = open.ping_interval,
        ping_timeout_ms = open.ping_timeout,
        "connected to the signaling server"
    );
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let driver = Driver {
        ws,
        version: config.engine_io,
        ping_interval: Duration::from_millis(open.ping_interval),
        ping_timeout: Duration::from_millis(open.ping_timeout),
        events: events_tx,
        commands: commands_rx,
    };
    Ok(SignalingConnection {
        sender: SignalingSender {
            commands: commands_tx,
        },
        events: events_rx,
        driver: tokio::spawn(driver.run()),
        sid: open.sid,
    })
}

fn websocket_error(error: tungstenite::Error, endpoint: &Endpoint) -> SignalingError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            if status.as_u16() == 401 || status.as_u16() == 403 {
                SignalingError::Refused(format!("HTTP {status} to the websocket request"))
            } else {
                SignalingError::Protocol(format!(
                    "the server answered HTTP {status} to the websocket request for {}",
                    endpoint.redacted
                ))
            }
        }
        tungstenite::Error::Io(e) => SignalingError::Connect {
            server: endpoint.redacted.clone(),
            reason: e.to_string(),
        },
        other => SignalingError::Protocol(format!("websocket handshake failed: {other}")),
    }
}

/// An open signaling session. Events from the server come out of [`recv`](Self::recv);
/// events go out through [`sender`](Self::sender) handles.
#[derive(Debug)]
pub struct SignalingConnection {
    sender: SignalingSender,
    events: mpsc::Receiver<ServerEvent>,
    driver: JoinHandle<()>,
    sid: String,
}

impl SignalingConnection {
    /// A handle for sending events; clone it freely, it works from any task.
    pub fn sender(&self) -> SignalingSender {
        self.sender.clone()
    }

    /// The next event from the server; `None` once the connection is gone (closed by either
    /// side, the server silent beyond its ping bound, or a transport error). Invalid events are
    /// logged and skipped, never returned.
    pub async fn recv(&mut self) -> Option<ServerEvent> {
        self.events.recv().await
    }

    /// The Engine.IO session id (not a secret; useful in logs to match the server's).
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Leaves politely: Socket.IO disconnect (`41`), Engine.IO close (`1`), websocket close.
    /// Bounded: a server that does not answer is dropped after a short while.
    pub async fn close(mut self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.sender.commands.send(Command::Close(done_tx)).is_ok() {
            // Unblocks a driver that waits for room in a full event queue; it then closes
            // politely on its own. Either way `done` resolves (sent, or dropped with the
            // driver's command queue).
            self.events.close();
            let _ = timeout(CLOSE_BOUND * 2, done_rx).await;
        }
        self.driver.abort();
    }
}

impl Drop for SignalingConnection {
    fn drop(&mut self) {
        // Dropping the connection ends the session; the driver closes politely on its own
        // when it sees the event receiver gone.
        self.events.close();
    }
}

/// Sends events on a [`SignalingConnection`]. Cheap to clone, `Send`.
#[derive(Debug, Clone)]
pub struct SignalingSender {
    commands: mpsc::UnboundedSender<Command>,
}

impl SignalingSender {
    /// Queues one event for the server. Fails with [`SignalingError::Closed`] once the
    /// connection is gone.
    pub fn send(&self, event: ClientEvent) -> Result<(), SignalingError> {
        self.commands
            .send(Command::Emit(event))
            .map_err(|_| SignalingError::Closed)
    }

    /// Whether the connection this sender belongs to is gone.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

#[derive(Debug)]
enum Command {
    Emit(ClientEvent),
    Close(oneshot::Sender<()>),
}

enum Flow {
    Continue,
    Stop,
}

struct Driver<S> {
    ws: WebSocketStream<S>,
    version: EngineIoVersion,
    ping_interval: Duration,
    ping_timeout: Duration,
    events: mpsc::Sender<ServerEvent>,
    commands: mpsc::UnboundedReceiver<Command>,
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    async fn run(mut self) {
        // EIO4: the server pings every interval and waits `timeout` for the pong; EIO3: we ping
        // and it answers. Either way a live server sends something every interval, so silence
        // beyond interval + timeout means it is gone.
        let silence_bound = self.ping_interval + self.ping_timeout;
        let mut deadline = Instant::now() + silence_bound;
        let mut next_ping = Instant::now() + self.ping_interval;
        let pinging = self.version == EngineIoVersion::V3;
        loop {
            tokio::select! {
                incoming = self.ws.next() => {
                    deadline = Instant::now() + silence_bound;
                    if let Flow::Stop = self.incoming(incoming).await {
                        break;
                    }
                }
                command = self.commands.recv() => match command {
                    Some(Command::Emit(event)) => {
                        if let Flow::Stop = self.emit(&event).await {
                            break;
                        }
                    }
                    Some(Command::Close(done)) => {
                        self.close_politely().await;
                        let _ = done.send(());
                        break;
                    }
                    None => {
                        self.close_politely().await;
                        break;
                    }
                },
                () = sleep_until(deadline) => {
                    tracing::warn!(
                        silence = ?silence_bound,
                        "the signaling server sent nothing within its ping bound; connection lost"
                    );
                    break;
                }
                () = sleep_until(next_ping), if pinging => {
                    next_ping += self.ping_interval;
                    if send_text(&mut self.ws, EnginePacket::Ping(String::new()).encode()).await.is_err() {
                        break;
                    }
                }
                () = self.events.closed() => {
                    self.close_politely().await;
                    break;
                }
            }
        }
        // Senders must fail from now on, before `recv` reports the end (the event queue
        // closes when `self` drops after this).
        self.commands.close();
        tracing::info!("signaling connection ended");
    }

    async fn emit(&mut self, event: &ClientEvent) -> Flow {
        let name = event.name().as_str();
        let packet = SocketPacket::event(name, event.payload());
        let text = EnginePacket::Message(packet.encode()).encode();
        match send_text(&mut self.ws, text).await {
            Ok(()) => {
                tracing::debug!(event = name, "sent");
                Flow::Continue
            }
            Err(e) => {
                tracing::warn!(event = name, error = %e, "could not send to the signaling server");
                Flow::Stop
            }
        }
    }

    async fn incoming(&mut self, incoming: Option<Result<Message, tungstenite::Error>>) -> Flow {
        let text = match incoming {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => {
                tracing::info!("the signaling server closed the websocket");
                return Flow::Stop;
            }
            Some(Ok(Message::Binary(_))) => {
                tracing::debug!("skipping a binary websocket message");
                return Flow::Continue;
            }
            // Websocket-level pings are answered by tungstenite itself.
            Some(Ok(_)) => return Flow::Continue,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "signaling websocket failed");
                return Flow::Stop;
            }
        };
        let packet = match EnginePacket::decode(text.as_str()) {
            Ok(packet) => packet,
            Err(e) => {
                tracing::warn!(error = %e, "skipping an undecodable Engine.IO packet");
                return Flow::Continue;
            }
        };
        match packet {
            EnginePacket::Ping(data) => {
                let pong = EnginePacket::Pong(data).encode();
                if send_text(&mut self.ws, pong).await.is_err() {
                    return Flow::Stop;
                }
                Flow::Continue
            }
            EnginePacket::Message(message) => self.socket_packet(&message).await,
            EnginePacket::Close => {
                tracing::info!("the signaling server closed the Engine.IO session");
                Flow::Stop
            }
            other => {
                tracing::trace!(kind = packet_kind(&other), "ignored Engine.IO packet");
                Flow::Continue
            }
        }
    }

    async fn socket_packet(&mut self, message: &str) -> Flow {
        let packet = match SocketPacket::decode(message) {
            Ok(packet) => packet,
            Err(e) => {
                tracing::warn!(error = %e, "skipping an undecodable Socket.IO packet");
                return Flow::Continue;
            }
        };
        match packet {
            SocketPacket::Event {
                namespace,
                name,
                args,
                ..
            } if namespace == "/" => {
                let payload = args.into_iter().next().unwrap_or(Value::Null);
                match ServerEvent::parse(&name, &payload) {
                    Ok(event) => {
                        tracing::debug!(event = %short(&name), "received");
                        if self.events.send(event).await.is_err() {
                            // Nobody listens any more: leave.
                            self.close_politely().await;
                            return Flow::Stop;
                        }
                    }
                    // The payload may hold a room id (a secret): log only the name and code.
                    Err(e) => tracing::warn!(
                        event = %short(&name),
                        code = %e.code,
                        "skipping an invalid event from the signaling server"
                    ),
                }
                Flow::Continue
            }
            SocketPacket::Disconnect { namespace } if namespace == "/" => {
                tracing::info!("the signaling server disconnected us");
                Flow::Stop
            }
            SocketPacket::ConnectError { namespace, .. } if namespace == "/" => {
                tracing::warn!("the signaling server revoked the connection");
                Flow::Stop
            }
            _ => Flow::Continue,
        }
    }

    async fn close_politely(&mut self) {
        let goodbye = async {
            let leave = SocketPacket::Disconnect {
                namespace: "/".to_owned(),
            };
            let _ = send_text(&mut self.ws, EnginePacket::Message(leave.encode()).encode()).await;
            let _ = send_text(&mut self.ws, EnginePacket::Close.encode()).await;
            let _ = self.ws.close(None).await;
        };
        if timeout(CLOSE_BOUND, goodbye).await.is_err() {
            tracing::debug!("the signaling server did not take the close in time");
        }
    }
}

/// An event name from the network, cut short for logs.
fn short(name: &str) -> String {
    name.chars().take(40).collect()
}
