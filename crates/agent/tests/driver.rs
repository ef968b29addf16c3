//! The real driver with tokio's paused clock, against a fake signaling server, a fake peer and a
//! recording notifier: reconnect timing, a press during backoff, a connect that hangs, a stop
//! during a call, and a server that accepts and then drops the connection.

use doorbell_agent::agent_flow::Reconnect;
use doorbell_agent::call_flow::Timeouts;
use doorbell_agent::driver::{AgentSettings, run};
use doorbell_agent::event_sink::ChannelEvents;
use doorbell_agent::events::{AgentEvent, EndReason};
use doorbell_agent::indicator::Indicator;
use doorbell_agent::ports::{AgentIo, Answered, Answerer, Connector, Peer, SignalingLink};
use doorbell_agent::trigger::{ManualTrigger, Press};
use doorbell_notify::{Notifier, NotifyError, Ring};
use doorbell_protocol::{
    CallStats, ClientEvent, IceCandidate, PeerEvent, SdpType, ServerEvent, SessionDescription,
};
use futures_util::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

/// What the fake server does with one connect attempt.
enum Attempt {
    Refuse,
    /// Never answers.
    Hang,
    /// Accepts; the test gets the server's side of the connection.
    Accept,
}

/// The server's side of one accepted connection.
struct ServerSide {
    from_agent: mpsc::UnboundedReceiver<ClientEvent>,
    to_agent: mpsc::UnboundedSender<ServerEvent>,
}

struct FakeServer {
    script: Mutex<VecDeque<Attempt>>,
    attempts: Mutex<Vec<Instant>>,
    accepted: mpsc::UnboundedSender<ServerSide>,
    closed: Arc<Mutex<u32>>,
}

struct FakeLink {
    to_server: mpsc::UnboundedSender<ClientEvent>,
    from_server: mpsc::UnboundedReceiver<ServerEvent>,
    closed: Arc<Mutex<u32>>,
}

impl Connector for FakeServer {
    fn connect(&self) -> BoxFuture<'static, Result<Box<dyn SignalingLink>, String>> {
        self.attempts.lock().unwrap().push(Instant::now());
        let attempt = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Attempt::Refuse);
        match attempt {
            Attempt::Refuse => Box::pin(async { Err("connection refused".to_owned()) }),
            Attempt::Hang => Box::pin(std::future::pending()),
            Attempt::Accept => {
                let (to_server, from_agent) = mpsc::unbounded_channel();
                let (to_agent, from_server) = mpsc::unbounded_channel();
                let _ = self.accepted.send(ServerSide {
                    from_agent,
                    to_agent,
                });
                let link = FakeLink {
                    to_server,
                    from_server,
                    closed: self.closed.clone(),
                };
                Box::pin(async move { Ok(Box::new(link) as Box<dyn SignalingLink>) })
            }
        }
    }
}

impl SignalingLink for FakeLink {
    fn send(&self, event: ClientEvent) -> Result<(), String> {
        self.to_server.send(event).map_err(|e| e.to_string())
    }
    fn recv(&mut self) -> BoxFuture<'_, Option<ServerEvent>> {
        Box::pin(self.from_server.recv())
    }
    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        *self.closed.lock().unwrap() += 1;
        Box::pin(async {})
    }
}

struct FakePeer {
    closed: Arc<Mutex<bool>>,
}

impl Peer for FakePeer {
    fn add_remote_candidate(&self, _: Option<IceCandidate>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn restart_ice(
        &self,
        offer: SessionDescription,
    ) -> BoxFuture<'_, Result<SessionDescription, String>> {
        // Answers with the offer's text turned round, so a test sees which offer it answered.
        Box::pin(async move {
            Ok(SessionDescription {
                kind: SdpType::Answer,
                sdp: format!("answer to {}", offer.sdp),
            })
        })
    }
    fn close(self: Box<Self>) -> BoxFuture<'static, CallStats> {
        *self.closed.lock().unwrap() = true;
        Box::pin(async {
            CallStats {
                video_frames_sent: 7,
                ..CallStats::default()
            }
        })
    }
}

struct FakeAnswerer {
    peer_closed: Arc<Mutex<bool>>,
}

impl Answerer for FakeAnswerer {
    fn answer(
        &self,
        _offer: SessionDescription,
        _ice: Option<doorbell_protocol::IceServers>,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> BoxFuture<'static, Result<Answered, String>> {
        let closed = self.peer_closed.clone();
        // Media connects a little after the answer is sent, as ICE does.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let _ = events.send(PeerEvent::MediaConnected { ice: None });
        });
        Box::pin(async move {
            let peer = Box::new(FakePeer { closed }) as Box<dyn Peer>;
            Ok((
                peer,
                SessionDescription {
                    kind: SdpType::Answer,
                    sdp: "v=0".into(),
                },
            ))
        })
    }
}

/// Every ring with the time it arrived.
type Rings = Arc<Mutex<Vec<(Instant, Arc<Ring>)>>>;

struct Recorder(Rings);

impl Notifier for Recorder {
    fn channel(&self) -> String {
        "recorder".into()
    }
    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        self.0.lock().unwrap().push((Instant::now(), ring));
        Box::pin(async { Ok(()) })
    }
}

struct Agent {
    server: Arc<FakeServer>,
    accepted: mpsc::UnboundedReceiver<ServerSide>,
    events: mpsc::UnboundedReceiver<AgentEvent>,
    press: mpsc::Sender<Press>,
    stop: Option<oneshot::Sender<()>>,
    rings: Rings,
    peer_closed: Arc<Mutex<bool>>,
    done: tokio::task::JoinHandle<()>,
}

fn start(script: Vec<Attempt>, reconnect: Reconnect) -> Agent {
    let (accepted_tx, accepted) = mpsc::unbounded_channel();
    let server = Arc::new(FakeServer {
        script: Mutex::new(script.into()),
        attempts: Mutex::new(Vec::new()),
        accepted: accepted_tx,
        closed: Arc::new(Mutex::new(0)),
    });
    let (events_tx, events) = mpsc::unbounded_channel();
    let (trigger, press) = ManualTrigger::new();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let rings = Arc::new(Mutex::new(Vec::new()));
    let peer_closed = Arc::new(Mutex::new(false));
    let io = AgentIo {
        connector: server.clone(),
        answerer: Arc::new(FakeAnswerer {
            peer_closed: peer_closed.clone(),
        }),
        camera: None,
        notifiers: vec![Arc::new(Recorder(rings.clone()))],
        events: Box::new(ChannelEvents {
            tx: events_tx,
            also: None,
        }),
        indicator: Indicator::none(),
        messages: None,
        replies: None,
    };
    let settings = AgentSettings {
        public_url: "https://door.test".into(),
        timeouts: Timeouts::default(),
        reconnect,
        snapshot_bound: Duration::from_millis(150),
        accept_internal_candidates: false,
        live_view: Default::default(),
        message_length: Duration::ZERO,
    };
    let done = tokio::spawn(run(settings, io, vec![Box::new(trigger)], async move {
        let _ = stop_rx.await;
    }));
    Agent {
        server,
        accepted,
        events,
        press,
        stop: Some(stop_tx),
        rings,
        peer_closed,
        done,
    }
}

impl Agent {
    /// The next event, skipping none.
    async fn next_event(&mut self) -> AgentEvent {
        self.events.recv().await.expect("the agent is running")
    }

    /// Skips events until one matches.
    async fn until(&mut self, wanted: impl Fn(&AgentEvent) -> bool) -> AgentEvent {
        loop {
            let event = self.next_event().await;
            if wanted(&event) {
                return event;
            }
        }
    }

    fn attempts(&self) -> Vec<Instant> {
        self.server.attempts.lock().unwrap().clone()
    }
}

/// Answers `join` with `created` like our server, and returns the joined room's events.
async fn expect_join(side: &mut ServerSide) -> doorbell_protocol::RoomId {
    match side.from_agent.recv().await {
        Some(ClientEvent::Join(room)) => {
            side.to_agent
                .send(ServerEvent::Created(room.clone()))
                .unwrap();
            room
        }
        other => panic!("expected join, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn reconnect_attempts_follow_the_capped_jittered_backoff() {
    let agent = start(
        vec![
            Attempt::Refuse,
            Attempt::Refuse,
            Attempt::Refuse,
            Attempt::Refuse,
            Attempt::Refuse,
            Attempt::Accept,
        ],
        Reconnect::default(),
    );
    let mut agent = agent;
    agent.until(|e| *e == AgentEvent::Connected).await;
    let attempts = agent.attempts();
    assert_eq!(attempts.len(), 6);
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, full) in gaps.iter().zip([250, 500, 1000, 1500, 1500]) {
        let full = full * MS;
        // Jitter takes at most a fifth off; the timer fires exactly at the deadline.
        assert!(
            *gap <= full && *gap >= full.mul_f64(0.8),
            "gap {gap:?}, expected {full:?} less at most 20 %: {gaps:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_press_during_backoff_connects_at_once_and_rings_with_a_link() {
    // The server has just restarted: the first attempt is refused, and the next retry is far
    // away; a visitor presses in between.
    let slow = Reconnect {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(10),
    };
    let mut agent = start(vec![Attempt::Refuse, Attempt::Accept], slow);
    agent.until(|e| matches!(e, AgentEvent::Error { .. })).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pressed = Instant::now();
    agent.press.send(Press).await.unwrap();
    let mut side = agent.accepted.recv().await.expect("a second attempt");
    assert_eq!(
        agent.attempts()[1],
        pressed,
        "the attempt starts at the press"
    );
    expect_join(&mut side).await;
    let notified = agent
        .until(|e| matches!(e, AgentEvent::Notified { .. } | AgentEvent::Error { .. }))
        .await;
    assert!(
        matches!(notified, AgentEvent::Notified { .. }),
        "rang with a link, not 'unreachable': {notified:?}"
    );
    agent
        .until(|e| matches!(e, AgentEvent::NotifySent { .. }))
        .await;
    let rings = agent.rings.lock().unwrap();
    assert_eq!(rings.len(), 1);
    assert!(rings[0].1.link.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_press_while_the_connect_hangs_rings_without_a_link_after_the_join_timeout() {
    let mut agent = start(vec![Attempt::Hang], Reconnect::default());
    agent.until(|e| *e == AgentEvent::Ready).await;
    let pressed = Instant::now();
    agent.press.send(Press).await.unwrap();
    agent
        .until(|e| matches!(e, AgentEvent::NotifySent { .. }))
        .await;
    let rings = agent.rings.lock().unwrap();
    assert_eq!(rings.len(), 1);
    assert!(rings[0].1.link.is_none(), "no call to offer");
    assert_eq!(rings[0].0 - pressed, Timeouts::default().join);
}

fn offer(sdp: &str) -> ServerEvent {
    ServerEvent::Invite(SessionDescription {
        kind: SdpType::Offer,
        sdp: sdp.into(),
    })
}

/// Rings, lets the page join and offer, and waits until media is connected.
async fn call_up(agent: &mut Agent) -> (ServerSide, doorbell_protocol::RoomId) {
    let mut side = agent.accepted.recv().await.unwrap();
    agent.until(|e| *e == AgentEvent::Connected).await;
    agent.press.send(Press).await.unwrap();
    let room = expect_join(&mut side).await;
    side.to_agent
        .send(ServerEvent::NewPeer(room.clone()))
        .unwrap();
    side.to_agent.send(offer("v=0")).unwrap();
    agent
        .until(|e| matches!(e, AgentEvent::MediaConnected { .. }))
        .await;
    (side, room)
}

#[tokio::test(start_paused = true)]
async fn a_new_offer_during_the_call_is_answered_by_the_same_peer() {
    let mut agent = start(vec![Attempt::Accept], Reconnect::default());
    let (mut side, _room) = call_up(&mut agent).await;
    while side.from_agent.try_recv().is_ok() {}
    side.to_agent.send(offer("restart")).unwrap();
    agent
        .until(|e| *e == AgentEvent::IceRestart { answered: true })
        .await;
    let answer = side.from_agent.recv().await;
    assert_eq!(
        answer,
        Some(ClientEvent::Ok(SessionDescription {
            kind: SdpType::Answer,
            sdp: "answer to restart".into(),
        }))
    );
    assert!(
        !*agent.peer_closed.lock().unwrap(),
        "the call's peer stays open"
    );
}

#[tokio::test(start_paused = true)]
async fn stopping_during_a_call_sends_bye_closes_the_peer_and_returns() {
    let mut agent = start(vec![Attempt::Accept], Reconnect::default());
    let (mut side, room) = call_up(&mut agent).await;

    agent.stop.take().unwrap().send(()).unwrap();
    let end = agent
        .until(|e| matches!(e, AgentEvent::CallEnd { .. }))
        .await;
    assert!(matches!(
        end,
        AgentEvent::CallEnd {
            reason: EndReason::Shutdown,
            video_frames_sent: 7,
            ..
        }
    ));
    let mut sent = Vec::new();
    while let Ok(event) = side.from_agent.try_recv() {
        sent.push(event);
    }
    assert!(sent.contains(&ClientEvent::Bye(Some(room))), "{sent:?}");
    tokio::time::timeout(Duration::from_secs(1), agent.done)
        .await
        .expect("run() returns after the call ended")
        .unwrap();
    assert!(*agent.peer_closed.lock().unwrap());
    assert_eq!(*agent.server.closed.lock().unwrap(), 1, "signaling closed");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_accepts_then_drops_is_reconnected_after_the_first_delay() {
    let mut agent = start(vec![Attempt::Accept, Attempt::Accept], Reconnect::default());
    let side = agent.accepted.recv().await.unwrap();
    agent.until(|e| *e == AgentEvent::Connected).await;
    let dropped = Instant::now();
    drop(side);
    agent.until(|e| *e == AgentEvent::Disconnected).await;
    let _second = agent.accepted.recv().await.unwrap();
    agent.until(|e| *e == AgentEvent::Connected).await;
    let gap = agent.attempts()[1] - dropped;
    assert!(gap <= 250 * MS && gap >= 200 * MS, "{gap:?}");
}
