//! The signaling state of the whole server (rooms, connections, per-connection rate limits)
//! and the entry points the socket layer calls. Every entry point is synchronous and returns
//! the events to send, so the rules are tested without sockets and the socket layer can process
//! a connection's events strictly in arrival order.

use crate::config::Limits;
use crate::connections::Connections;
use crate::handlers;
use crate::ice::{IceSettings, Member, nonce};
use crate::metrics::ServerMetrics;
use crate::outgoing::Outgoing;
use crate::rate_limit::TokenBucket;
use crate::rooms::{CreateRight, Peek, Rooms};
use doorbell_protocol::Secret;
use doorbell_protocol::metrics_text::{Kind, MetricsText};
use doorbell_protocol::{ClientEvent, ErrorCode, EventName, ProtocolError, RoomId};
use serde_json::Value;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// What the ring history learns from signaling (`history.rs` records it and tells owners).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RingFact {
    /// A doorbell opened a room: it rings.
    Started(RoomId),
    /// Someone opened the call; `by` is the paired device's name (`None`: a plain link).
    Answered { room: RoomId, by: Option<String> },
    /// The room closed.
    Ended(RoomId),
}

pub(crate) struct Conn {
    pub ip: Option<IpAddr>,
    /// The paired device this connection belongs to, by name.
    pub owner: Option<String>,
    pub right: CreateRight,
    pub bucket: TokenBucket,
    /// When it connected, or last left a room: the start of its idle time.
    pub idle_since: Instant,
}

/// An event that passed [`Hub::check_event`], with what the sender may do.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub event: ClientEvent,
    pub right: CreateRight,
    /// The paired device's name, if the sender is one.
    pub owner: Option<String>,
}

pub(crate) struct HubState<M> {
    pub rooms: Rooms<M>,
    /// With shared rooms: the room of each local connection that is in one.
    pub shared_rooms: HashMap<M, RoomId>,
    pub conns: HashMap<M, Conn>,
    pub connections: Connections,
    pub closing: bool,
    /// Rooms opened for a live view (not rings: no history), and who waits for each to open.
    pub live: HashMap<RoomId, Option<oneshot::Sender<()>>>,
}

/// Why a live view cannot start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiveRefusal {
    /// No connection holds the doorbell token.
    NoDoorbell,
    /// The doorbell is in a ring or call, or a live view is starting.
    Busy,
    /// `--open-rooms`: nobody holds a token, so the doorbell cannot be told apart.
    OpenRooms,
}

impl LiveRefusal {
    pub fn message(self) -> &'static str {
        match self {
            LiveRefusal::NoDoorbell => {
                "the doorbell is not connected to the server; check that its agent runs"
            }
            LiveRefusal::Busy => {
                "the doorbell is busy with a ring or a call; try again when it ends"
            }
            LiveRefusal::OpenRooms => {
                "live view needs the doorbell token (this server runs with --open-rooms)"
            }
        }
    }
}

pub(crate) struct Hub<M> {
    token: Option<Secret>,
    open_rooms: bool,
    limits: Limits,
    ice: IceSettings,
    /// The wall clock, for TURN credentials' expiry; tests set their own.
    wall_clock: fn() -> SystemTime,
    /// Where ring facts go, when the server keeps a history.
    history: Option<mpsc::UnboundedSender<RingFact>>,
    metrics: Arc<ServerMetrics>,
    state: Mutex<HubState<M>>,
}

impl<M: Copy + Eq + Hash> Hub<M> {
    pub fn new(token: Option<Secret>, open_rooms: bool, limits: Limits) -> Self {
        Self {
            token,
            open_rooms,
            limits,
            ice: IceSettings::default(),
            wall_clock: SystemTime::now,
            history: None,
            metrics: Arc::default(),
            state: Mutex::new(HubState {
                rooms: Rooms::default(),
                shared_rooms: HashMap::new(),
                conns: HashMap::new(),
                connections: Connections::default(),
                closing: false,
                live: HashMap::new(),
            }),
        }
    }

    /// What each member gets as `ice_servers` right after `created`/`joined`.
    pub fn with_ice(mut self, ice: IceSettings) -> Self {
        self.ice = ice;
        self
    }

    /// Reports every ring's start, answer and end on `facts`.
    pub fn with_history(mut self, facts: mpsc::UnboundedSender<RingFact>) -> Self {
        self.history = Some(facts);
        self
    }

    /// The counters this hub keeps (the accept loop adds its own refusals).
    pub fn metrics(&self) -> &Arc<ServerMetrics> {
        &self.metrics
    }

    /// Appends the hub's counters and gauges to a scrape.
    pub fn render_metrics(&self, m: &mut MetricsText) {
        let (rooms, by_kind) = {
            let state = self.lock();
            let mut by_kind = [("doorbell", 0u64), ("owner_device", 0), ("page", 0)];
            for conn in state.conns.values() {
                let kind = if self.holds_token(conn.right) {
                    0
                } else if conn.owner.is_some() {
                    1
                } else {
                    2
                };
                by_kind[kind].1 += 1;
            }
            let shared: std::collections::HashSet<&RoomId> = state.shared_rooms.values().collect();
            (state.rooms.room_count() + shared.len(), by_kind)
        };
        let labels = by_kind.map(|(kind, _)| [("kind", kind)]);
        m.family(
            "doorbell_connections",
            Kind::Gauge,
            "Socket.IO connections held, by kind (doorbell: with the token; owner_device: a paired device; page: any other).",
            labels.iter().zip(by_kind).map(|(l, (_, n))| (&l[..], n as f64)),
        );
        m.single(
            "doorbell_rooms",
            Kind::Gauge,
            "Rooms open (ringing or in a call).",
            rooms as f64,
        );
        self.metrics.render(m);
    }

    /// With shared rooms: a fact for the history only (the room store counts the outcomes,
    /// since a ring may start on one node and be answered on another).
    pub(crate) fn record_history(&self, fact: RingFact) {
        if let Some(history) = &self.history {
            let _ = history.send(fact);
        }
    }

    /// With shared rooms: the local connections in a room.
    pub fn shared_members(&self) -> Vec<M> {
        self.lock().shared_rooms.keys().copied().collect()
    }

    pub(crate) fn record(&self, fact: RingFact) {
        match &fact {
            RingFact::Started(room) => self.metrics.calls().created(room),
            RingFact::Answered { room, .. } => self.metrics.calls().joined(room),
            RingFact::Ended(room) => self.metrics.calls().ended(room),
        }
        if let Some(history) = &self.history {
            let _ = history.send(fact);
        }
    }

    /// Marks connection `id` as the paired device `name`.
    pub fn set_owner(&self, id: M, name: String) {
        if let Some(conn) = self.lock().conns.get_mut(&id) {
            conn.owner = Some(name);
        }
    }

    /// The facts a join's answers tell: the room was created, or someone answered. A live
    /// view's room is no ring: its opening only wakes whoever asked for it.
    fn join_facts(
        &self,
        live: &mut HashMap<RoomId, Option<oneshot::Sender<()>>>,
        id: M,
        room: &RoomId,
        owner: Option<String>,
        out: &[Outgoing<M>],
    ) {
        if let Some(waiter) = live.get_mut(room) {
            if out
                .iter()
                .any(|o| o.to == id && o.event == EventName::Created)
                && let Some(waiter) = waiter.take()
            {
                let _ = waiter.send(());
            }
            return;
        }
        for o in out.iter().filter(|o| o.to == id) {
            match o.event {
                EventName::Created => self.record(RingFact::Started(room.clone())),
                EventName::Joined => self.record(RingFact::Answered {
                    room: room.clone(),
                    by: owner.clone(),
                }),
                _ => {}
            }
        }
    }

    /// Follows a member's `created` or `joined` with its `ice_servers`. Sent even when none are
    /// configured (an empty list), so the page need not wait to learn there are none.
    pub(crate) fn add_ice_servers(&self, id: M, out: &mut Vec<Outgoing<M>>) {
        let member = out.iter().find_map(|o| match o.event {
            EventName::Created if o.to == id => Some(Member::Door),
            EventName::Joined if o.to == id => Some(Member::Owner),
            _ => None,
        });
        if let Some(member) = member {
            out.push(self.ice_servers(id, member));
        }
    }

    fn ice_servers(&self, id: M, member: Member) -> Outgoing<M> {
        let servers = self.ice.for_member(member, (self.wall_clock)(), &nonce());
        Outgoing::new(id, EventName::IceServers, servers.to_json())
    }

    /// `prepare`: the room's state for a page that has not joined it; a ringing room's page
    /// gets its ICE servers (fresh TURN credentials, as an owner), to ready its offer.
    pub(crate) fn prepare(
        &self,
        id: M,
        room: &RoomId,
        current: Option<&RoomId>,
        peek: Peek,
    ) -> Vec<Outgoing<M>> {
        match handlers::prepare::handle(id, room, current, peek) {
            Ok(Some(told)) => vec![told],
            Ok(None) => vec![self.ice_servers(id, Member::Owner)],
            Err(error) => vec![Outgoing::error(id, &error)],
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState<M>> {
        // The state stays consistent between statements, so a panic elsewhere must not take
        // signaling down with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What a client presenting `token` (if any) may do.
    pub fn create_right(&self, presented: Option<&str>) -> CreateRight {
        if self.open_rooms {
            return CreateRight::Allowed;
        }
        match (presented, &self.token) {
            (None, _) | (Some(""), _) => CreateRight::NoToken,
            (Some(p), Some(token)) if token.matches(p) => CreateRight::Allowed,
            (Some(_), _) => CreateRight::WrongToken,
        }
    }

    /// Whether a connection with `right` presented the doorbell token (with `--open-rooms`
    /// everyone may create rooms, but nobody holds a token).
    fn holds_token(&self, right: CreateRight) -> bool {
        right == CreateRight::Allowed && !self.open_rooms
    }

    /// A new connection. `Err` means: send the error and close it.
    pub fn connect(
        &self,
        id: M,
        ip: Option<IpAddr>,
        right: CreateRight,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let mut state = self.lock();
        if state.closing {
            self.metrics.rejected(ErrorCode::ShuttingDown.as_str());
            return Err(ProtocolError::new(
                ErrorCode::ShuttingDown,
                "the server is shutting down; reconnect in a moment",
            ));
        }
        let trusted = self.holds_token(right);
        let mut caps = self.limits.socket_io_caps();
        if self.open_rooms {
            // Nobody holds a token to keep slots for.
            caps.reserved = 0;
        }
        if let Err(error) = state.connections.admit(ip, trusted, caps) {
            self.metrics.rejected(error.code.as_str());
            return Err(error);
        }
        let bucket = TokenBucket::new(self.limits.events_per_sec, self.limits.event_burst, now);
        state.conns.insert(
            id,
            Conn {
                ip,
                owner: None,
                right,
                bucket,
                idle_since: now,
            },
        );
        Ok(())
    }

    /// Connections without the doorbell token that have been in no room for the idle timeout
    /// (measured from connecting or from leaving the last room): the server closes them.
    pub fn idle_connections(&self, now: Instant) -> Vec<M> {
        let mut state = self.lock();
        let HubState {
            rooms,
            shared_rooms,
            conns,
            ..
        } = &mut *state;
        let mut idle = Vec::new();
        for (id, conn) in conns.iter_mut() {
            if rooms.room_of(*id).is_some() || shared_rooms.contains_key(id) {
                // In a room: its idle time starts when it leaves.
                conn.idle_since = now;
            } else if !self.holds_token(conn.right)
                // A paired device's open history waits for rings: that is its job.
                && conn.owner.is_none()
                && now.duration_since(conn.idle_since) >= self.limits.idle_timeout
            {
                idle.push(*id);
            }
        }
        idle
    }

    /// One event from a connection: validated, rate limited, applied.
    pub fn event(
        &self,
        id: M,
        name: &str,
        payload: Option<&Value>,
        now: Instant,
    ) -> Vec<Outgoing<M>> {
        let out = self.apply_event(id, name, payload, now);
        self.count_errors(&out);
        out
    }

    /// What a connection sent, checked (rate limit, payload, closing) before any room
    /// changes: the event, or the answer refusing it.
    fn admit_event(
        &self,
        state: &mut HubState<M>,
        id: M,
        name: &str,
        payload: Option<&Value>,
        now: Instant,
    ) -> Result<Admitted, Vec<Outgoing<M>>> {
        let Some(conn) = state.conns.get_mut(&id) else {
            return Err(Vec::new());
        };
        if !conn.bucket.try_take(now) {
            let wait = conn.bucket.wait_hint();
            let error = ProtocolError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many events; wait {} ms before sending more",
                    wait.as_millis().max(1)
                ),
            );
            return Err(vec![Outgoing::error(id, &error)]);
        }
        let right = conn.right;
        let owner = conn.owner.clone();
        let Some(payload) = payload else {
            let error = ProtocolError::new(
                ErrorCode::BadPayload,
                "the event must carry exactly one JSON argument",
            );
            return Err(vec![Outgoing::error(id, &error)]);
        };
        let event = match ClientEvent::parse(name, payload) {
            Ok(event) => event,
            Err(error) => {
                self.metrics.message("invalid");
                return Err(vec![Outgoing::error(id, &error)]);
            }
        };
        self.metrics.message(event.name().as_str());
        if let ClientEvent::Join(room) = &event
            && state.closing
        {
            let error = ProtocolError::new(
                ErrorCode::ShuttingDown,
                format!("cannot join {room}: the server is shutting down"),
            );
            return Err(vec![Outgoing::error(id, &error)]);
        }
        Ok(Admitted {
            event,
            right,
            owner,
        })
    }

    /// With shared rooms (several nodes): checks an event; the room store applies it.
    pub fn check_event(
        &self,
        id: M,
        name: &str,
        payload: Option<&Value>,
        now: Instant,
    ) -> Result<Admitted, Vec<Outgoing<M>>> {
        let mut state = self.lock();
        self.admit_event(&mut state, id, name, payload, now)
            .inspect_err(|out| self.count_errors(out))
    }

    pub(crate) fn count_errors(&self, out: &[Outgoing<M>]) {
        for o in out.iter().filter(|o| o.event == EventName::Error) {
            self.metrics
                .error_sent(o.payload["code"].as_str().unwrap_or("unknown"));
        }
    }

    /// With shared rooms: which room a local connection is in now (for the idle sweep and
    /// the rooms gauge).
    pub fn mirror_room(&self, id: M, room: Option<RoomId>) {
        let mut state = self.lock();
        match room {
            Some(room) => state.shared_rooms.insert(id, room),
            None => state.shared_rooms.remove(&id),
        };
    }

    fn apply_event(
        &self,
        id: M,
        name: &str,
        payload: Option<&Value>,
        now: Instant,
    ) -> Vec<Outgoing<M>> {
        let mut state = self.lock();
        let Admitted {
            event,
            right,
            owner,
        } = match self.admit_event(&mut state, id, name, payload, now) {
            Ok(admitted) => admitted,
            Err(out) => return out,
        };
        let result = match event {
            ClientEvent::Join(room) => {
                let HubState { rooms, live, .. } = &mut *state;
                handlers::join::handle(rooms, id, room.clone(), right).map(|mut out| {
                    self.join_facts(live, id, &room, owner, &out);
                    self.add_ice_servers(id, &mut out);
                    out
                })
            }
            ClientEvent::Prepare(room) => {
                let rooms = &state.rooms;
                Ok(self.prepare(id, &room, rooms.room_of(id), rooms.peek(&room)))
            }
            ClientEvent::Bye(_) => {
                let room = state.rooms.room_of(id).cloned();
                let out = handlers::bye::handle(&mut state.rooms, id);
                self.record_end(&mut state, room);
                out
            }
            relayed @ (ClientEvent::Invite(_)
            | ClientEvent::Ok(_)
            | ClientEvent::IceCandidate(_)) => {
                let out = handlers::relay::handle(&state.rooms, id, &relayed);
                if let (ClientEvent::Invite(_), Ok(sent)) = (&relayed, &out)
                    && !sent.is_empty()
                    && let Some(room) = state.rooms.room_of(id)
                {
                    self.metrics.calls().offered(room);
                }
                out
            }
        };
        result.unwrap_or_else(|error| vec![Outgoing::error(id, &error)])
    }

    /// A closed connection: a `bye` from it.
    pub fn disconnect(&self, id: M) -> Vec<Outgoing<M>> {
        let mut state = self.lock();
        if let Some(conn) = state.conns.remove(&id) {
            let trusted = self.holds_token(conn.right);
            state.connections.release(conn.ip, trusted);
        }
        state.shared_rooms.remove(&id);
        let room = state.rooms.room_of(id).cloned();
        let out = handlers::disconnect::handle(&mut state.rooms, id);
        self.record_end(&mut state, room);
        out
    }

    /// `room` (the one a member just left) ended if it is gone now.
    fn record_end(&self, state: &mut HubState<M>, room: Option<RoomId>) {
        if let Some(room) = room.filter(|r| !state.rooms.contains_room(r))
            && state.live.remove(&room).is_none()
        {
            self.record(RingFact::Ended(room));
        }
    }

    /// A paired owner asks to see the door: the `live` event for the doorbell (it opens `room`
    /// as for a ring, but rings nothing), and what resolves once the room is open.
    pub fn request_live(
        &self,
        room: RoomId,
    ) -> Result<(Outgoing<M>, oneshot::Receiver<()>), LiveRefusal> {
        if self.open_rooms {
            return Err(LiveRefusal::OpenRooms);
        }
        let mut state = self.lock();
        // One call at a time, as for rings: a live view waits for nothing else to end.
        if !state.live.is_empty() || state.closing {
            return Err(LiveRefusal::Busy);
        }
        let doorbells: Vec<M> = self.doorbell_ids(&state).collect();
        let Some(&doorbell) = doorbells.first() else {
            return Err(LiveRefusal::NoDoorbell);
        };
        if doorbells
            .iter()
            .any(|id| state.rooms.room_of(*id).is_some())
        {
            return Err(LiveRefusal::Busy);
        }
        let (opened, wait) = oneshot::channel();
        state.live.insert(room.clone(), Some(opened));
        Ok((
            Outgoing::new(
                doorbell,
                EventName::Live,
                Value::String(room.as_str().to_owned()),
            ),
            wait,
        ))
    }

    /// Connections holding the doorbell token (the doorbells).
    pub fn doorbells(&self) -> Vec<M> {
        self.doorbell_ids(&self.lock()).collect()
    }

    /// The doorbell whose room is `room`, if it is there.
    pub fn doorbell_in(&self, room: &RoomId) -> Option<M> {
        let state = self.lock();
        self.doorbell_ids(&state)
            .find(|id| state.rooms.room_of(*id) == Some(room))
    }

    fn doorbell_ids<'a>(&'a self, state: &'a HubState<M>) -> impl Iterator<Item = M> + 'a {
        state
            .conns
            .iter()
            .filter(|(_, conn)| self.holds_token(conn.right))
            .map(|(id, _)| *id)
    }

    /// The doorbell did not open the live view's room in time: forget it, so the next request
    /// is not refused as busy.
    pub fn abandon_live(&self, room: &RoomId) {
        let mut state = self.lock();
        if !state.rooms.contains_room(room) {
            state.live.remove(room);
        }
    }

    /// Refuses new connections and joins from now on; `bye` to every member of every room.
    pub fn begin_shutdown(&self) -> Vec<Outgoing<M>> {
        let mut state = self.lock();
        state.closing = true;
        state
            .rooms
            .drain()
            .into_iter()
            .flat_map(|(room, members)| {
                tracing::info!(%room, "room closed: server shutting down");
                if state.live.remove(&room).is_none() {
                    self.record(RingFact::Ended(room.clone()));
                }
                members.into_iter().map(move |m| {
                    Outgoing::new(m, EventName::Bye, Value::String(room.as_str().to_owned()))
                })
            })
            .collect()
    }

    /// Rooms with a member here (with shared rooms: those a local connection is in).
    pub fn room_count(&self) -> usize {
        let state = self.lock();
        let shared: std::collections::HashSet<&RoomId> = state.shared_rooms.values().collect();
        state.rooms.room_count() + shared.len()
    }

    pub fn connection_count(&self) -> usize {
        self.lock().connections.total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    const TOKEN: &str = "the-token";

    fn hub() -> Hub<u32> {
        Hub::new(Some(Secret::new(TOKEN)), false, Limits::default())
    }

    fn codes(out: &[Outgoing<u32>]) -> Vec<String> {
        out.iter()
            .map(|o| match o.event {
                EventName::Error => {
                    format!("{}:error:{}", o.to, o.payload["code"].as_str().unwrap())
                }
                e => format!("{}:{}", o.to, e.as_str()),
            })
            .collect()
    }

    fn send(hub: &Hub<u32>, id: u32, name: &str, payload: Value) -> Vec<String> {
        codes(&hub.event(id, name, Some(&payload), Instant::now()))
    }

    #[test]
    fn a_connection_without_the_token_in_no_room_is_idle_after_the_timeout() {
        let hub = hub();
        let t0 = Instant::now();
        let idle = Limits::default().idle_timeout;
        hub.connect(1, None, CreateRight::NoToken, t0).unwrap();
        hub.connect(2, None, CreateRight::Allowed, t0).unwrap();
        hub.connect(3, None, CreateRight::NoToken, t0).unwrap();
        // 2 (the doorbell) opens a room and 3 joins it.
        let room = json!("IdleRoom1");
        assert_eq!(
            codes(&hub.event(2, "join", Some(&room), t0)),
            ["2:created", "2:ice_servers"]
        );
        hub.event(3, "join", Some(&room), t0);
        assert!(
            hub.idle_connections(t0 + idle - Duration::from_secs(1))
                .is_empty()
        );
        assert_eq!(
            hub.idle_connections(t0 + idle),
            [1],
            "not the doorbell, not a member"
        );
        // A member's idle time starts when it leaves its room.
        let left = t0 + idle;
        hub.event(3, "bye", Some(&room), left);
        hub.idle_connections(left);
        assert_eq!(
            hub.idle_connections(left + idle - Duration::from_secs(1)),
            [1]
        );
        let mut both = hub.idle_connections(left + idle);
        both.sort();
        assert_eq!(both, [1, 3]);
    }

    #[test]
    fn connections_without_the_token_cannot_take_the_doorbells_reserve() {
        let limits = Limits {
            max_connections: 20,
            ..Limits::default()
        };
        let hub: Hub<u32> = Hub::new(Some(Secret::new(TOKEN)), false, limits);
        let now = Instant::now();
        let flood: IpAddr = "198.51.100.7".parse().unwrap();
        let admitted = (0..20)
            .filter(|&i| {
                hub.connect(i, Some(flood), CreateRight::NoToken, now)
                    .is_ok()
            })
            .count();
        assert_eq!(admitted, 18, "two of twenty are kept for doorbells");
        hub.connect(100, Some(flood), CreateRight::Allowed, now)
            .expect("a doorbell still gets in");
    }

    #[test]
    fn tokens_decide_who_may_create() {
        let h = hub();
        assert_eq!(h.create_right(Some(TOKEN)), CreateRight::Allowed);
        assert_eq!(h.create_right(None), CreateRight::NoToken);
        assert_eq!(h.create_right(Some("")), CreateRight::NoToken);
        assert_eq!(h.create_right(Some("guess")), CreateRight::WrongToken);
        let open = Hub::<u32>::new(None, true, Limits::default());
        assert_eq!(open.create_right(None), CreateRight::Allowed);
    }

    #[test]
    fn each_member_gets_its_own_turn_credentials_right_after_entering() {
        use doorbell_protocol::turn_rest::rest_credential as turn_rest_credential;
        let mut h = hub().with_ice(IceSettings {
            turn_urls: vec!["turn:t.example:3478".into()],
            turn_secret: Some(Secret::new("S")),
            turn_ttl: std::time::Duration::from_secs(600),
            ..IceSettings::default()
        });
        h.wall_clock = || SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let now = Instant::now();
        h.connect(1, None, h.create_right(Some(TOKEN)), now)
            .unwrap();
        h.connect(2, None, h.create_right(None), now).unwrap();
        let door = h.event(1, "join", Some(&json!("r")), now);
        let owner = h.event(2, "join", Some(&json!("r")), now);
        let user = |out: &[Outgoing<u32>]| {
            let ice = out.last().unwrap();
            assert_eq!(ice.event, EventName::IceServers);
            let server = &ice.payload["iceServers"][0];
            let name = server["username"].as_str().unwrap().to_owned();
            assert_eq!(
                server["credential"].as_str().unwrap(),
                turn_rest_credential(b"S", &name)
            );
            name
        };
        let (door, owner) = (user(&door), user(&owner));
        assert!(door.starts_with("1700000600:door-"), "{door}");
        assert!(owner.starts_with("1700000600:owner-"), "{owner}");
    }

    #[test]
    fn a_ringing_rooms_page_gets_owner_servers_before_joining_and_the_doorbell_hears_nothing() {
        let mut h = hub().with_ice(IceSettings {
            turn_urls: vec!["turn:t.example:3478".into()],
            turn_secret: Some(Secret::new("S")),
            ..IceSettings::default()
        });
        h.wall_clock = || SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let now = Instant::now();
        h.connect(1, None, h.create_right(Some(TOKEN)), now)
            .unwrap();
        for page in [2, 3] {
            h.connect(page, None, h.create_right(None), now).unwrap();
        }
        assert_eq!(send(&h, 2, "prepare", json!("r")), ["2:error:no_such_room"]);
        send(&h, 1, "join", json!("r"));
        let out = h.event(2, "prepare", Some(&json!("r")), now);
        assert_eq!(codes(&out), ["2:ice_servers"], "nobody else is told");
        let name = out[0].payload["iceServers"][0]["username"]
            .as_str()
            .unwrap();
        assert!(name.starts_with("1700003600:owner-"), "{name}");
        assert_eq!(h.room_count(), 1);
        // Preparing joined nothing: the page still joins as the second member.
        assert_eq!(
            send(&h, 2, "join", json!("r")),
            ["2:joined", "1:new_peer", "2:ice_servers"]
        );
        assert_eq!(send(&h, 3, "prepare", json!("r")), ["3:full"]);
        assert_eq!(
            send(&h, 2, "prepare", json!("r")),
            ["2:error:already_in_room"]
        );
    }

    #[test]
    fn call_flow_with_relay_and_bye() {
        let h = hub();
        let now = Instant::now();
        h.connect(1, None, h.create_right(Some(TOKEN)), now)
            .unwrap();
        h.connect(2, None, h.create_right(None), now).unwrap();
        h.connect(3, None, h.create_right(None), now).unwrap();
        assert_eq!(
            send(&h, 1, "create", json!("r")),
            ["1:created", "1:ice_servers"]
        );
        assert_eq!(
            send(&h, 2, "join", json!("r")),
            ["2:joined", "1:new_peer", "2:ice_servers"]
        );
        assert_eq!(send(&h, 3, "join", json!("r")), ["3:full"]);
        assert_eq!(
            send(&h, 3, "invite", json!({"type":"offer","sdp":"x"})),
            ["3:error:not_in_room"]
        );
        assert_eq!(
            send(&h, 2, "invite", json!({"type":"offer","sdp":"x"})),
            ["1:invite"]
        );
        assert_eq!(
            send(&h, 1, "ok", json!({"type":"answer","sdp":"y"})),
            ["2:ok"]
        );
        assert_eq!(
            send(&h, 1, "ice_candidate", Value::Null),
            ["2:ice_candidate"]
        );
        assert_eq!(send(&h, 2, "bye", json!("r")), ["1:bye"]);
        // The sender left before the relay: 1's answering bye goes nowhere (no ping-pong).
        assert_eq!(send(&h, 1, "bye", json!("r")), Vec::<String>::new());
        assert_eq!(h.room_count(), 0);
        assert_eq!(send(&h, 2, "join", json!("r")), ["2:error:no_such_room"]);
    }

    #[test]
    fn disconnect_is_a_bye_and_frees_the_connection_slot() {
        let h = hub();
        let now = Instant::now();
        h.connect(1, None, CreateRight::Allowed, now).unwrap();
        h.connect(2, None, CreateRight::NoToken, now).unwrap();
        send(&h, 1, "join", json!("r"));
        send(&h, 2, "join", json!("r"));
        assert_eq!(codes(&h.disconnect(1)), ["2:bye"]);
        assert_eq!(h.connection_count(), 1);
        assert_eq!(codes(&h.disconnect(2)), Vec::<String>::new());
        assert_eq!(h.room_count(), 0);
    }

    #[test]
    fn invalid_events_get_errors_and_change_nothing() {
        let h = hub();
        h.connect(1, None, CreateRight::Allowed, Instant::now())
            .unwrap();
        let cases = [
            ("shout", json!("r"), "unknown_event"),
            ("join", json!(1), "bad_payload"),
            ("join", json!("a b"), "bad_room_name"),
            (
                "invite",
                json!({"type":"offer","sdp":"x".repeat(70_000)}),
                "payload_too_large",
            ),
            ("bye", json!({}), "bad_payload"),
        ];
        for (name, payload, code) in cases {
            assert_eq!(
                send(&h, 1, name, payload),
                [format!("1:error:{code}")],
                "{name}"
            );
        }
        assert_eq!(
            codes(&h.event(1, "join", None, Instant::now())),
            ["1:error:bad_payload"]
        );
        assert_eq!(h.room_count(), 0);
    }

    #[test]
    fn rate_limit_refuses_then_recovers() {
        let limits = Limits {
            events_per_sec: 1,
            event_burst: 2,
            ..Limits::default()
        };
        let h = Hub::new(None, true, limits);
        let t0 = Instant::now();
        h.connect(1, None, CreateRight::Allowed, t0).unwrap();
        let bye = |t| codes(&h.event(1, "invite", Some(&json!({"type":"offer","sdp":"x"})), t));
        assert_eq!(bye(t0), ["1:error:not_in_room"]);
        assert_eq!(bye(t0), ["1:error:not_in_room"]);
        assert_eq!(bye(t0), ["1:error:rate_limited"]);
        assert_eq!(
            bye(t0 + std::time::Duration::from_secs(1)),
            ["1:error:not_in_room"]
        );
    }

    #[test]
    fn with_shared_rooms_events_are_checked_here_and_idle_follows_the_mirrored_room() {
        let h = hub();
        let t0 = Instant::now();
        h.connect(1, None, CreateRight::NoToken, t0).unwrap();
        let admitted = h
            .check_event(1, "join", Some(&json!("SharedRoom")), t0)
            .expect("a valid join passes");
        assert!(matches!(admitted.event, ClientEvent::Join(_)));
        assert_eq!(admitted.right, CreateRight::NoToken);
        let refused = h
            .check_event(1, "join", Some(&json!("a b")), t0)
            .unwrap_err();
        assert_eq!(codes(&refused), ["1:error:bad_room_name"]);
        assert_eq!(h.room_count(), 0, "checking changes no room");
        // In a room kept elsewhere: not idle, and counted as a room here.
        h.mirror_room(1, Some(RoomId::parse("SharedRoom").unwrap()));
        let idle = Limits::default().idle_timeout;
        assert!(h.idle_connections(t0 + idle * 2).is_empty());
        assert_eq!(h.room_count(), 1);
        assert_eq!(h.shared_members(), [1]);
        h.mirror_room(1, None);
        let left = t0 + idle * 2;
        assert_eq!(h.idle_connections(left + idle), [1]);
        h.begin_shutdown();
        let closing = h
            .check_event(1, "join", Some(&json!("Late")), left)
            .unwrap_err();
        assert_eq!(codes(&closing), ["1:error:shutting_down"]);
    }

    #[test]
    fn shutdown_says_bye_to_everyone_and_refuses_newcomers() {
        let h = hub();
        let now = Instant::now();
        for id in 1..=3 {
            h.connect(id, None, CreateRight::Allowed, now).unwrap();
        }
        send(&h, 1, "join", json!("a"));
        send(&h, 2, "join", json!("a"));
        send(&h, 3, "join", json!("b"));
        let mut byes = codes(&h.begin_shutdown());
        byes.sort();
        assert_eq!(byes, ["1:bye", "2:bye", "3:bye"]);
        assert_eq!(
            h.connect(4, None, CreateRight::Allowed, now)
                .unwrap_err()
                .code,
            ErrorCode::ShuttingDown
        );
        assert_eq!(send(&h, 1, "join", json!("c")), ["1:error:shutting_down"]);
    }

    #[test]
    fn a_ring_is_reported_started_answered_by_the_paired_owner_and_ended() {
        let (facts, mut heard) = mpsc::unbounded_channel();
        let h = hub().with_history(facts);
        let now = Instant::now();
        h.connect(1, None, CreateRight::Allowed, now).unwrap();
        h.connect(2, None, CreateRight::NoToken, now).unwrap();
        h.set_owner(2, "Anna's phone".into());
        let room = json!("HistoryRoom1");
        h.event(1, "join", Some(&room), now);
        h.event(2, "join", Some(&room), now);
        h.event(2, "bye", Some(&room), now);
        h.disconnect(1);
        let id = RoomId::parse("HistoryRoom1").unwrap();
        let mut got = Vec::new();
        while let Ok(fact) = heard.try_recv() {
            got.push(fact);
        }
        assert_eq!(
            got,
            [
                RingFact::Started(id.clone()),
                RingFact::Answered {
                    room: id.clone(),
                    by: Some("Anna's phone".into())
                },
                RingFact::Ended(id),
            ]
        );
    }

    #[test]
    fn a_paired_devices_connection_is_never_idle() {
        let h = hub();
        let t0 = Instant::now();
        h.connect(1, None, CreateRight::NoToken, t0).unwrap();
        h.connect(2, None, CreateRight::NoToken, t0).unwrap();
        h.set_owner(2, "Anna".into());
        let idle = Limits::default().idle_timeout;
        assert_eq!(h.idle_connections(t0 + idle * 10), [1]);
    }

    #[test]
    fn a_live_view_asks_the_idle_doorbell_and_is_no_ring() {
        let (facts, mut recorded) = mpsc::unbounded_channel();
        let h = hub().with_history(facts);
        let now = Instant::now();
        let live = RoomId::parse("LiveRoom1").unwrap();
        assert_eq!(
            h.request_live(live.clone()).err(),
            Some(LiveRefusal::NoDoorbell)
        );
        h.connect(1, None, CreateRight::NoToken, now).unwrap();
        h.connect(2, None, CreateRight::Allowed, now).unwrap();
        let (ask, mut opened) = h.request_live(live.clone()).unwrap();
        assert_eq!((ask.to, ask.event), (2, EventName::Live));
        assert_eq!(ask.payload, json!("LiveRoom1"));
        assert_eq!(
            h.request_live(RoomId::parse("Other").unwrap()).err(),
            Some(LiveRefusal::Busy),
            "one live view at a time"
        );
        assert!(
            opened.try_recv().is_err(),
            "not open before the doorbell joins"
        );
        send(&h, 2, "join", json!("LiveRoom1"));
        assert_eq!(opened.try_recv(), Ok(()));
        assert_eq!(
            send(&h, 1, "join", json!("LiveRoom1")),
            ["1:joined", "2:new_peer", "1:ice_servers"]
        );
        send(&h, 1, "bye", json!("LiveRoom1"));
        send(&h, 2, "bye", json!("LiveRoom1"));
        assert!(
            recorded.try_recv().is_err(),
            "a live view leaves no trace in the ring history"
        );
        // Over: the next one may start, and a ring is a ring again.
        assert!(h.request_live(RoomId::parse("LiveRoom2").unwrap()).is_ok());
    }

    #[test]
    fn a_live_view_is_refused_during_a_ring_and_freed_when_the_doorbell_never_opens_it() {
        let h = hub();
        let now = Instant::now();
        h.connect(2, None, CreateRight::Allowed, now).unwrap();
        send(&h, 2, "join", json!("RingRoom1"));
        assert_eq!(
            h.request_live(RoomId::parse("LiveRoom1").unwrap()).err(),
            Some(LiveRefusal::Busy)
        );
        send(&h, 2, "bye", json!("RingRoom1"));
        let live = RoomId::parse("LiveRoom1").unwrap();
        let (_, _opened) = h.request_live(live.clone()).unwrap();
        // The doorbell turned live view off: it never joins, and the request times out.
        h.abandon_live(&live);
        assert!(h.request_live(RoomId::parse("LiveRoom2").unwrap()).is_ok());

        let open: Hub<u32> = Hub::new(None, true, Limits::default());
        open.connect(2, None, CreateRight::Allowed, now).unwrap();
        assert_eq!(open.request_live(live).err(), Some(LiveRefusal::OpenRooms));
    }
}
