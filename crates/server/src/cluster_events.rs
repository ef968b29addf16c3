//! A connection's events with shared rooms (`--redis`): the hub checks each one (rate limit,
//! payload, closing) as on a single node, the room rules run in Redis (`cluster.rs`), and the
//! answers go to their connections wherever they are. Each connection has one queue and one
//! task, so its events are applied strictly in arrival order although each waits on Redis.
//! Also here: the watch on other nodes, whose members leave when a node dies.

use crate::adapter::{Io, SharedHub};
use crate::cluster::{Cluster, HEARTBEAT, SharedDeparture};
use crate::delivery::deliver_anywhere;
use crate::handlers;
use crate::hub::{Admitted, RingFact};
use crate::outgoing::Outgoing;
use crate::rooms::JoinOutcome;
use doorbell_protocol::{ClientEvent, EventName};
use socketioxide::socket::Sid;
use std::time::Instant;
use tokio::sync::mpsc;

enum Work {
    Event {
        name: String,
        data: Option<serde_json::Value>,
        at: Instant,
    },
    /// The connection closed: a `bye` from it.
    Left,
}

/// A connection's queue of work, in arrival order.
#[derive(Clone)]
pub(crate) struct Queue(mpsc::UnboundedSender<Work>);

impl Queue {
    pub fn event(&self, name: String, data: Option<serde_json::Value>, at: Instant) {
        let _ = self.0.send(Work::Event { name, data, at });
    }

    pub fn left(&self) {
        let _ = self.0.send(Work::Left);
    }
}

/// Starts connection `sid`'s task; it ends after the connection left.
pub(crate) fn start(sid: Sid, hub: SharedHub, cluster: Cluster, io: Io) -> Queue {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(work) = rx.recv().await {
            let out = match work {
                Work::Event { name, data, at } => {
                    match hub.check_event(sid, &name, data.as_ref(), at) {
                        Ok(admitted) => apply(&hub, &cluster, sid, admitted).await,
                        Err(out) => out,
                    }
                }
                Work::Left => {
                    depart(&hub, &cluster, sid, &io).await;
                    break;
                }
            };
            deliver_anywhere(&io, &out).await;
        }
    });
    Queue(tx)
}

async fn apply(
    hub: &SharedHub,
    cluster: &Cluster,
    sid: Sid,
    Admitted {
        event,
        right,
        owner,
    }: Admitted,
) -> Vec<Outgoing<Sid>> {
    let result = match event {
        ClientEvent::Join(room) => cluster.join(sid, &room, right).await.map(|outcome| {
            let metrics = hub.metrics();
            match &outcome {
                JoinOutcome::Created => {
                    metrics.calls().rings += 1;
                    hub.record_history(RingFact::Started(room.clone()));
                }
                JoinOutcome::Joined { .. } => {
                    metrics.calls().answered += 1;
                    hub.record_history(RingFact::Answered {
                        room: room.clone(),
                        by: owner,
                    });
                }
                JoinOutcome::Full => {}
            }
            if !matches!(outcome, JoinOutcome::Full) {
                hub.mirror_room(sid, Some(room.clone()));
            }
            let mut out = handlers::join::speak(sid, &room, outcome);
            hub.add_ice_servers(sid, &mut out);
            out
        }),
        ClientEvent::Prepare(room) => cluster
            .peek(sid, &room)
            .await
            .map(|(current, peek)| hub.prepare(sid, &room, current.as_ref(), peek)),
        ClientEvent::Bye(_) => {
            hub.mirror_room(sid, None);
            // As on one node, a `bye` from someone in no room is quietly ignored.
            cluster
                .leave(sid)
                .await
                .map(|gone| gone.map(|gone| departed(hub, gone)).unwrap_or_default())
        }
        relayed @ (ClientEvent::Invite(_) | ClientEvent::Ok(_) | ClientEvent::IceCandidate(_)) => {
            let offer = matches!(relayed, ClientEvent::Invite(_));
            cluster.peer(sid, offer).await.map(|peer| {
                if peer.first_offer {
                    hub.metrics().calls().started += 1;
                }
                tracing::debug!(room = %peer.room, event = relayed.name().as_str(), "relayed");
                match peer.other {
                    Some(other) => vec![Outgoing::new(other, relayed.name(), relayed.payload())],
                    None => Vec::new(),
                }
            })
        }
    };
    let out = result.unwrap_or_else(|error| vec![Outgoing::error(sid, &error)]);
    hub.count_errors(&out);
    out
}

/// What a departure tells: `bye` to the member left, or the ring's end when the room is gone.
fn departed(hub: &SharedHub, gone: SharedDeparture) -> Vec<Outgoing<Sid>> {
    if gone.departure.remaining.is_none() {
        if !gone.answered {
            hub.metrics().calls().missed += 1;
        }
        hub.record_history(RingFact::Ended(gone.departure.room.clone()));
    }
    handlers::bye::speak(gone.departure)
}

/// A closed connection leaves its room.
/// A closed connection that Redis could not be told about would hold its place in its room
/// until this node dies; it is tried again this often, this many times.
const DEPART_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
const DEPART_ATTEMPTS: u32 = 60;

async fn depart(hub: &SharedHub, cluster: &Cluster, sid: Sid, io: &Io) {
    for attempt in 1..=DEPART_ATTEMPTS {
        match cluster.leave(sid).await {
            Ok(Some(gone)) => return deliver_anywhere(io, &departed(hub, gone)).await,
            Ok(None) => return,
            Err(e) if attempt == 1 => {
                tracing::warn!(%sid, "could not remove a closed connection from its room ({e}); trying again");
            }
            Err(_) => {}
        }
        tokio::time::sleep(DEPART_RETRY).await;
    }
    tracing::error!(%sid, "gave up removing a closed connection from its room: Redis stayed unreachable");
}

/// Keeps this node alive in Redis and removes the members of nodes that died, telling whoever
/// they left behind `bye`.
pub(crate) async fn watch_nodes(hub: SharedHub, cluster: Cluster, io: Io) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    let mut healthy = true;
    loop {
        ticks.tick().await;
        let result = async {
            cluster.heartbeat().await?;
            cluster.reap_dead_nodes().await
        }
        .await;
        match result {
            Ok(gone) => {
                if !healthy {
                    tracing::info!("Redis is reachable again");
                    healthy = true;
                }
                for gone in gone {
                    let out = departed(&hub, gone);
                    deliver_anywhere(&io, &out).await;
                }
            }
            Err(e) if healthy => {
                tracing::error!("cannot reach Redis: {e}; rooms cannot be joined until it is back");
                healthy = false;
            }
            Err(_) => {}
        }
    }
}

/// Shutdown: this node's members leave their rooms now (their peers on other nodes hear
/// `bye`), and the node retires.
pub(crate) async fn leave_all(hub: &SharedHub, cluster: &Cluster, io: &Io) {
    for sid in hub.shared_members() {
        hub.mirror_room(sid, None);
        if let Ok(Some(gone)) = cluster.leave(sid).await {
            let room = serde_json::Value::String(gone.departure.room.as_str().to_owned());
            let mut out = departed(hub, gone);
            // The member here hears it too, as every member does when a single node stops.
            out.push(Outgoing::new(sid, EventName::Bye, room));
            deliver_anywhere(io, &out).await;
        }
    }
    cluster.retire().await;
}

/// A ring fact on the wire between nodes.
fn fact_json(fact: &RingFact) -> String {
    let value = match fact {
        RingFact::Started(room) => serde_json::json!({"fact": "started", "room": room.as_str()}),
        RingFact::Answered { room, by } => {
            serde_json::json!({"fact": "answered", "room": room.as_str(), "by": by})
        }
        RingFact::Ended(room) => serde_json::json!({"fact": "ended", "room": room.as_str()}),
    };
    value.to_string()
}

fn parse_fact(text: &str) -> Option<RingFact> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let room = doorbell_protocol::RoomId::parse(value["room"].as_str()?).ok()?;
    Some(match value["fact"].as_str()? {
        "started" => RingFact::Started(room),
        "answered" => RingFact::Answered {
            room,
            by: value["by"].as_str().map(str::to_owned),
        },
        "ended" => RingFact::Ended(room),
        _ => return None,
    })
}

/// Sends this node's ring facts to Redis, in order.
pub(crate) async fn publish_facts(cluster: Cluster, mut facts: mpsc::UnboundedReceiver<RingFact>) {
    while let Some(fact) = facts.recv().await {
        if let Err(e) = cluster.publish_fact(fact_json(&fact)).await {
            tracing::warn!("a ring fact could not reach the history node: {e}");
        }
    }
}

/// On the history node: every node's ring facts, into `to` (the history's recorder).
pub(crate) async fn subscribe_facts(
    cluster: &Cluster,
    to: mpsc::UnboundedSender<RingFact>,
) -> Result<(), crate::error::ServerError> {
    use futures_util::StreamExt;
    let stream = cluster.ring_facts().await.map_err(|e| {
        crate::error::ServerError::Redis(format!("cannot subscribe to ring facts: {e}"))
    })?;
    let mut stream = Box::pin(stream);
    tokio::spawn(async move {
        while let Some(text) = stream.next().await {
            match parse_fact(&text) {
                Some(fact) => {
                    if to.send(fact).is_err() {
                        break;
                    }
                }
                None => tracing::warn!("an unreadable ring fact from another node was ignored"),
            }
        }
        tracing::error!("the ring facts subscription ended; the history misses rings from now on");
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorbell_protocol::RoomId;

    #[test]
    fn ring_facts_cross_nodes_unchanged() {
        let room = RoomId::parse("FactRoom").unwrap();
        for fact in [
            RingFact::Started(room.clone()),
            RingFact::Answered {
                room: room.clone(),
                by: Some("Anna's phone".into()),
            },
            RingFact::Answered {
                room: room.clone(),
                by: None,
            },
            RingFact::Ended(room),
        ] {
            assert_eq!(parse_fact(&fact_json(&fact)), Some(fact));
        }
        assert_eq!(parse_fact("{\"fact\":\"x\",\"room\":\"r\"}"), None);
        assert_eq!(parse_fact("not json"), None);
    }
}
