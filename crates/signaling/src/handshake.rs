//! The Engine.IO open and the Socket.IO connect of the default namespace, over an open
//! websocket.

use super::SignalingError;
use doorbell_protocol::wire::{EngineIoVersion, EnginePacket, OpenInfo, SocketPacket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Waits for the Engine.IO `open` packet, then connects the default namespace: Engine.IO 4
/// sends `40` (with `{"token"}` when there is one) and waits for the server's `40{"sid"}`;
/// Engine.IO 3 servers connect `/` by themselves and send `40`. A `44` is a refusal.
pub(crate) async fn socket_io_handshake<S>(
    ws: &mut WebSocketStream<S>,
    version: EngineIoVersion,
    token: Option<&str>,
) -> Result<OpenInfo, SignalingError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let open = match EnginePacket::decode(&next_text(ws).await?) {
        Ok(EnginePacket::Open(open)) => open,
        Ok(other) => {
            return Err(SignalingError::Protocol(format!(
                "expected the Engine.IO open packet first, got {}",
                packet_kind(&other)
            )));
        }
        Err(e) => return Err(SignalingError::Protocol(e.to_string())),
    };
    if version == EngineIoVersion::V4 {
        let connect = SocketPacket::Connect {
            namespace: "/".to_owned(),
            data: token.map(|t| json!({ "token": t })),
        };
        send_text(ws, EnginePacket::Message(connect.encode()).encode()).await?;
    }
    loop {
        let packet = match EnginePacket::decode(&next_text(ws).await?) {
            Ok(packet) => packet,
            Err(e) => {
                tracing::debug!(error = %e, "skipping an undecodable packet during the handshake");
                continue;
            }
        };
        match packet {
            EnginePacket::Message(text) => match SocketPacket::decode(&text) {
                Ok(SocketPacket::Connect { namespace, .. }) if namespace == "/" => return Ok(open),
                Ok(SocketPacket::ConnectError { namespace, data }) if namespace == "/" => {
                    return Err(SignalingError::Refused(refusal_message(&data, token)));
                }
                Ok(_) => tracing::debug!("skipping a Socket.IO packet that came before connect"),
                Err(e) => tracing::debug!(error = %e, "skipping an undecodable Socket.IO packet"),
            },
            EnginePacket::Ping(data) => send_text(ws, EnginePacket::Pong(data).encode()).await?,
            EnginePacket::Close => {
                return Err(SignalingError::Protocol(
                    "the server closed the Engine.IO session during the handshake".to_owned(),
                ));
            }
            EnginePacket::Open(_) => {
                return Err(SignalingError::Protocol(
                    "a second Engine.IO open packet".to_owned(),
                ));
            }
            EnginePacket::Pong(_) | EnginePacket::Upgrade | EnginePacket::Noop => {}
        }
    }
}

/// The next text message; websocket pings and pongs are handled by tungstenite.
async fn next_text<S>(ws: &mut WebSocketStream<S>) -> Result<String, SignalingError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => {
                return Err(SignalingError::Protocol(
                    "the server closed the websocket during the handshake".to_owned(),
                ));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(SignalingError::Protocol(e.to_string())),
        }
    }
}

pub(crate) async fn send_text<S>(
    ws: &mut WebSocketStream<S>,
    text: String,
) -> Result<(), SignalingError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.send(Message::text(text))
        .await
        .map_err(|e| SignalingError::Protocol(format!("sending failed: {e}")))
}

/// The reason in a connect error: `{"message": …}` (Socket.IO 5 protocol) or a bare string
/// (socket.io 2.x). Bounded, and with the token cut out should a server echo it.
fn refusal_message(data: &Value, token: Option<&str>) -> String {
    let text = match data {
        Value::Object(map) => match map.get("message") {
            Some(Value::String(message)) => message.clone(),
            _ => data.to_string(),
        },
        Value::String(message) => message.clone(),
        Value::Null => "no reason given".to_owned(),
        other => other.to_string(),
    };
    let text: String = text.chars().take(200).collect();
    match token {
        Some(token) if !token.is_empty() => text.replace(token, "<redacted>"),
        _ => text,
    }
}

pub(crate) fn packet_kind(packet: &EnginePacket) -> &'static str {
    match packet {
        EnginePacket::Open(_) => "open",
        EnginePacket::Close => "close",
        EnginePacket::Ping(_) => "ping",
        EnginePacket::Pong(_) => "pong",
        EnginePacket::Message(_) => "message",
        EnginePacket::Upgrade => "upgrade",
        EnginePacket::Noop => "noop",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_messages_of_both_generations() {
        assert_eq!(
            refusal_message(&json!({"message":"bad token"}), None),
            "bad token"
        );
        assert_eq!(
            refusal_message(&json!("Not authorized"), None),
            "Not authorized"
        );
        assert_eq!(refusal_message(&Value::Null, None), "no reason given");
        assert_eq!(refusal_message(&json!({"code":1}), None), r#"{"code":1}"#);
    }

    #[test]
    fn refusal_messages_never_echo_the_token() {
        let m = refusal_message(&json!({"message":"token tok123 is wrong"}), Some("tok123"));
        assert_eq!(m, "token <redacted> is wrong");
    }
}
