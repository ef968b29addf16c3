//! Several server nodes, one service (`--redis`): the rooms live in Redis, where every node
//! sees them, and events reach a member on another node through the socket.io Redis adapter
//! protocol (`socketioxide-redis`).
//!
//! Each rule of `rooms.rs` (two members at most, one room per client, only the doorbell opens
//! a room, empty rooms vanish) is one Lua script here, so Redis applies it atomically: two
//! owners joining at once on two nodes get one `joined` and one `full`. A member is stored
//! with its node; nodes renew a liveness key every second, and when a node's key lapses
//! (killed, cut off) the first node to notice removes its members and tells the members left
//! `bye`, as a disconnect would have.
//!
//! Keys (prefix `doorbell:`): `room:R:m` (set of member sids), `room:R` (hash: `answered`,
//! `started`), `member:SID` (hash: `room`, `node`), `node-members:N` (set), `node:N`
//! (liveness, expires), `nodes` (set). The scripts build key names themselves, so this needs
//! one Redis (or a primary with replicas), not Redis Cluster.

use crate::error::ServerError;
use crate::rooms::{CreateRight, Departure, JoinOutcome, Peek};
use doorbell_protocol::{ErrorCode, ProtocolError, RoomId};
use redis::aio::ConnectionManager;
use socketioxide::socket::Sid;
use socketioxide_redis::drivers::redis::{RedisDriver, RedisError};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use std::str::FromStr;
use std::time::Duration;

/// How often a node renews its liveness key.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a node's liveness key lasts: a node silent this long is taken for dead.
pub const NODE_TTL: Duration = Duration::from_secs(5);
/// How long a node waits for Redis at start before giving up with an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const PREFIX: &str = "doorbell:";

/// Removing one member: shared by `leave` and `reap`. Returns {room, remaining sid or '',
/// answered '1' or ''} or nil when the member was in no room.
const LEAVE_FN: &str = r"
local function leave(p, sid)
  local mkey = p .. 'member:' .. sid
  local room = redis.call('HGET', mkey, 'room')
  if not room then return nil end
  local node = redis.call('HGET', mkey, 'node')
  redis.call('DEL', mkey)
  if node then redis.call('SREM', p .. 'node-members:' .. node, sid) end
  local members = p .. 'room:' .. room .. ':m'
  redis.call('SREM', members, sid)
  local rest = redis.call('SMEMBERS', members)
  local answered = redis.call('HGET', p .. 'room:' .. room, 'answered') or ''
  if #rest == 0 then
    redis.call('DEL', members, p .. 'room:' .. room)
    return {room, '', answered}
  end
  return {room, rest[1], answered}
end
";

/// ARGV: prefix, sid, room, right (`allowed`, `no_token`, `wrong_token`), node.
/// Returns {outcome, detail}.
const JOIN: &str = r"
local p, sid, room, right, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local mkey = p .. 'member:' .. sid
local current = redis.call('HGET', mkey, 'room')
if current then return {'already_in_room', current} end
local members = p .. 'room:' .. room .. ':m'
local n = redis.call('SCARD', members)
if n >= 2 then return {'full', ''} end
if n == 0 and right ~= 'allowed' then return {right, ''} end
local other = ''
if n == 1 then
  other = redis.call('SMEMBERS', members)[1]
  redis.call('HSET', p .. 'room:' .. room, 'answered', '1')
end
redis.call('SADD', members, sid)
redis.call('HSET', mkey, 'room', room, 'node', node)
redis.call('SADD', p .. 'node-members:' .. node, sid)
if n == 0 then return {'created', ''} end
return {'joined', other}
";

/// ARGV: prefix, sid. Returns the leave result or {}.
const LEAVE: &str = r"
local r = leave(ARGV[1], ARGV[2])
if not r then return {} end
return r
";

/// The sender's room and the other member, for relaying. ARGV: prefix, sid, offer ('1' for an
/// `invite`). Returns {room, other or '', 1 if this offer is the room's first}, or {}.
const PEER: &str = r"
local p, sid = ARGV[1], ARGV[2]
local room = redis.call('HGET', p .. 'member:' .. sid, 'room')
if not room then return {} end
local other = ''
for _, m in ipairs(redis.call('SMEMBERS', p .. 'room:' .. room .. ':m')) do
  if m ~= sid then other = m end
end
local first = 0
if ARGV[3] == '1' and other ~= '' then
  first = redis.call('HSETNX', p .. 'room:' .. room, 'started', '1')
end
return {room, other, first}
";

/// A dead node's members leave. ARGV: prefix, node. Only the first caller after the node's
/// liveness key lapsed gets its departures (flat: room, remaining, answered, ...).
const REAP: &str = r"
local p, node = ARGV[1], ARGV[2]
if redis.call('EXISTS', p .. 'node:' .. node) == 1 then return {} end
if redis.call('SREM', p .. 'nodes', node) == 0 then return {} end
local out = {}
for _, sid in ipairs(redis.call('SMEMBERS', p .. 'node-members:' .. node)) do
  local r = leave(p, sid)
  if r then
    table.insert(out, r[1]); table.insert(out, r[2]); table.insert(out, r[3])
  end
end
redis.call('DEL', p .. 'node-members:' .. node)
return out
";

/// A departure as Redis reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedDeparture {
    pub departure: Departure<Sid>,
    /// Someone had answered the ring (the room's second member joined at some point).
    pub answered: bool,
}

/// The sender's room and peer, for a relay.
#[derive(Debug)]
pub(crate) struct Peer {
    pub room: RoomId,
    pub other: Option<Sid>,
    /// This `invite` is the room's first: the call starts.
    pub first_offer: bool,
}

/// This node's view of the shared rooms.
#[derive(Clone)]
pub struct Cluster {
    client: redis::Client,
    conn: ConnectionManager,
    node: String,
    join: std::sync::Arc<redis::Script>,
    leave: std::sync::Arc<redis::Script>,
    peer: std::sync::Arc<redis::Script>,
    reap: std::sync::Arc<redis::Script>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for messages (a Redis URL may carry one).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The adapter's driver needs RESP3 (Redis ≥ 7) for its pub/sub pushes.
fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

fn unavailable(e: redis::RedisError) -> ProtocolError {
    tracing::warn!("Redis: {e}");
    ProtocolError::new(
        ErrorCode::Unavailable,
        "the server cannot reach its shared state right now; try again in a moment",
    )
}

impl Cluster {
    /// Connects to Redis (`--redis`), checks it is 7 or later, and makes the adapter's driver.
    pub(crate) async fn connect(url: &str) -> Result<(Cluster, NodeDriver), ServerError> {
        let shown = redact(url);
        let bad = |why: String| ServerError::Redis(format!("{shown}: {why}"));
        let open = |url: &str| {
            redis::Client::open(url).map_err(|e| {
                bad(format!(
                    "{e} (give a URL like redis://HOST:6379 or redis://:PASSWORD@HOST:6379/0)"
                ))
            })
        };
        let client = open(url)?;
        let pubsub = open(&with_resp3(url))?;
        let unreachable = |e: String| {
            bad(format!(
                "cannot reach Redis: {e} (is redis-server running there? check --redis)"
            ))
        };
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, client.get_connection_manager())
            .await
            .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_owned();
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 7 {
            return Err(bad(format!(
                "Redis {version} is too old: the socket.io Redis adapter needs Redis 7 or later"
            )));
        }
        let driver = tokio::time::timeout(CONNECT_TIMEOUT, RedisDriver::new(&pubsub))
            .await
            .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| bad(format!("no randomness for the node id: {e}")))?;
        let node: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let script = |body: &str| std::sync::Arc::new(redis::Script::new(body));
        let cluster = Cluster {
            client,
            conn,
            node,
            join: script(JOIN),
            leave: script(&format!("{LEAVE_FN}{LEAVE}")),
            peer: script(PEER),
            reap: script(&format!("{LEAVE_FN}{REAP}")),
        };
        cluster
            .heartbeat()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tracing::info!(redis = %shown, node = %cluster.node, %version, "sharing rooms through Redis");
        Ok((cluster, NodeDriver::Redis(driver)))
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub(crate) async fn join(
        &self,
        sid: Sid,
        room: &RoomId,
        right: CreateRight,
    ) -> Result<JoinOutcome<Sid>, ProtocolError> {
        let right = match right {
            CreateRight::Allowed => "allowed",
            CreateRight::NoToken => "no_token",
            CreateRight::WrongToken => "wrong_token",
        };
        let (outcome, detail): (String, String) = self
            .join
            .arg(PREFIX)
            .arg(sid.to_string())
            .arg(room.as_str())
            .arg(right)
            .arg(&self.node)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        // The same answers as `Rooms::join`, word for word.
        match outcome.as_str() {
            "created" => Ok(JoinOutcome::Created),
            "full" => Ok(JoinOutcome::Full),
            "joined" => Sid::from_str(&detail)
                .map(|other| JoinOutcome::Joined { other })
                .map_err(|_| {
                    ProtocolError::new(ErrorCode::Unavailable, "the shared room state is damaged")
                }),
            "already_in_room" => Err(ProtocolError::new(
                ErrorCode::AlreadyInRoom,
                format!("you are already in room {detail}; send bye before joining another"),
            )),
            "no_token" => Err(ProtocolError::new(
                ErrorCode::NoSuchRoom,
                "this room does not exist (the call has ended); only the doorbell may open rooms",
            )),
            _ => Err(ProtocolError::new(
                ErrorCode::Unauthorized,
                "the doorbell token is wrong; check the token configured on the doorbell",
            )),
        }
    }

    /// `prepare`: the sender's own room, if any, and how `room` stands, changing nothing.
    pub(crate) async fn peek(
        &self,
        sid: Sid,
        room: &RoomId,
    ) -> Result<(Option<RoomId>, Peek), ProtocolError> {
        let (current, members): (Option<String>, usize) = redis::pipe()
            .cmd("HGET")
            .arg(format!("{PREFIX}member:{sid}"))
            .arg("room")
            .cmd("SCARD")
            .arg(format!("{PREFIX}room:{}:m", room.as_str()))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok((
            current.and_then(|r| RoomId::parse(&r).ok()),
            Peek::from_members(members),
        ))
    }

    /// Removes `sid` from its room (a `bye` or a disconnect); `None` if it was in none.
    pub(crate) async fn leave(&self, sid: Sid) -> Result<Option<SharedDeparture>, ProtocolError> {
        let parts: Vec<String> = self
            .leave
            .arg(PREFIX)
            .arg(sid.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(departures(&parts).into_iter().next())
    }

    pub(crate) async fn peer(&self, sid: Sid, offer: bool) -> Result<Peer, ProtocolError> {
        let parts: Vec<redis::Value> = self
            .peer
            .arg(PREFIX)
            .arg(sid.to_string())
            .arg(if offer { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let text = |v: Option<&redis::Value>| match v {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(redis::Value::SimpleString(s)) => s.clone(),
            _ => String::new(),
        };
        let room = RoomId::parse(&text(parts.first())).map_err(|_| {
            ProtocolError::new(ErrorCode::NotInRoom, "you are in no room; send join first")
        })?;
        Ok(Peer {
            room,
            other: Sid::from_str(&text(parts.get(1))).ok(),
            first_offer: matches!(parts.get(2), Some(redis::Value::Int(1))),
        })
    }

    /// Renews this node's liveness.
    pub(crate) async fn heartbeat(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("SET")
            .arg(format!("{PREFIX}node:{}", self.node))
            .arg(1)
            .arg("PX")
            .arg(NODE_TTL.as_millis() as u64)
            .ignore()
            .cmd("SADD")
            .arg(format!("{PREFIX}nodes"))
            .arg(&self.node)
            .ignore()
            .query_async(&mut conn)
            .await
    }

    /// The members of nodes whose liveness lapsed, removed: what each left behind.
    pub(crate) async fn reap_dead_nodes(&self) -> redis::RedisResult<Vec<SharedDeparture>> {
        let mut conn = self.conn.clone();
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(format!("{PREFIX}nodes"))
            .query_async(&mut conn)
            .await?;
        let mut gone = Vec::new();
        for node in nodes.iter().filter(|n| **n != self.node) {
            let parts: Vec<String> = self
                .reap
                .arg(PREFIX)
                .arg(node)
                .invoke_async(&mut conn)
                .await?;
            if !parts.is_empty() {
                tracing::warn!(%node, members = parts.len() / 3, "a node stopped answering; its members left their rooms");
            }
            gone.extend(departures(&parts));
        }
        Ok(gone)
    }

    /// Publishes one ring fact (JSON) for the history node.
    pub(crate) async fn publish_fact(&self, json: String) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(format!("{PREFIX}ring-facts"))
            .arg(json)
            .query_async(&mut conn)
            .await
    }

    /// The ring facts every node publishes, as they come.
    pub(crate) async fn ring_facts(
        &self,
    ) -> redis::RedisResult<impl futures_util::Stream<Item = String> + use<>> {
        use futures_util::StreamExt;
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(format!("{PREFIX}ring-facts")).await?;
        Ok(pubsub
            .into_on_message()
            .filter_map(|msg| async move { msg.get_payload::<String>().ok() }))
    }

    /// This node is stopping: its liveness ends now, so others need not wait for it to lapse.
    pub(crate) async fn retire(&self) {
        let mut conn = self.conn.clone();
        let _: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(format!("{PREFIX}node:{}", self.node))
            .query_async(&mut conn)
            .await;
    }
}

/// `room, remaining, answered` triples as departures (unparseable ones are skipped: a room
/// name we wrote is always valid).
fn departures(parts: &[String]) -> Vec<SharedDeparture> {
    parts
        .chunks_exact(3)
        .filter_map(|c| {
            Some(SharedDeparture {
                departure: Departure {
                    room: RoomId::parse(&c[0]).ok()?,
                    remaining: Sid::from_str(&c[1]).ok(),
                },
                answered: c[2] == "1",
            })
        })
        .collect()
}

/// The adapter's pub/sub: Redis's with `--redis`, none for a single node (the adapter then
/// only serves local sockets, as socketioxide's local adapter would).
#[derive(Clone)]
pub enum NodeDriver {
    Alone,
    Redis(RedisDriver),
}

impl Driver for NodeDriver {
    type Error = RedisError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        match self {
            NodeDriver::Alone => Ok(()),
            NodeDriver::Redis(d) => d.publish(chan, val).await,
        }
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        match self {
            NodeDriver::Alone => Ok(MessageStream::new_empty()),
            NodeDriver::Redis(d) => d.subscribe(chan, size).await,
        }
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        match self {
            NodeDriver::Alone => Ok(()),
            NodeDriver::Redis(d) => d.unsubscribe(chan).await,
        }
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        match self {
            NodeDriver::Alone => Ok(0),
            NodeDriver::Redis(d) => d.num_serv(chan).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_messages() {
        assert_eq!(
            redact("redis://:s3cret@db.example:6379/0"),
            "redis://…@db.example:6379/0"
        );
        assert_eq!(redact("redis://db.example:6379"), "redis://db.example:6379");
    }

    #[test]
    fn the_adapter_connection_asks_for_resp3() {
        assert_eq!(with_resp3("redis://h:1"), "redis://h:1?protocol=resp3");
        assert_eq!(
            with_resp3("redis://h:1/0?x=1"),
            "redis://h:1/0?x=1&protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h?protocol=resp2"),
            "redis://h?protocol=resp2"
        );
    }

    #[test]
    fn departures_are_read_in_triples() {
        let parts: Vec<String> = ["RoomA", "", "1", "RoomB", "", ""]
            .map(String::from)
            .to_vec();
        let got = departures(&parts);
        assert_eq!(got.len(), 2);
        assert!(got[0].answered && !got[1].answered);
        assert_eq!(got[1].departure.remaining, None);
    }
}
