//! The agent's driver: the only place where the call flow meets I/O. It keeps the signaling
//! connection open between rings (reconnecting with backoff), turns trigger presses, server
//! events and peer reports into [`Input`]s, and carries out the flow's [`Output`]s.
//!
//! Timers use `tokio::time`, so tests run the whole driver with paused time.

use crate::backoff::Backoff;
use crate::call_flow::{CallCounters, CallFlow, CallState, Input, Output, PeerSignal, Timeouts};
use crate::event_sink::EventSink;
use crate::events::AgentEvent;
use crate::indicator::{GpioOutputLine, Indicator, OutputLine, OutputLineSpec};
use crate::media_settings::MediaSettings;
use crate::notify::{Notifier, RetryPolicy, Ring, dispatch_with};
use crate::peer::{CallPeer, CallStats, PeerConfig, PeerError, PeerEvent};
use crate::signaling::{self, SignalingConfig, SignalingConnection, SignalingSender};
use crate::snapshot::{FrameSource, PendingSnapshot, SnapshotError, Snapshotter};
use crate::trigger::{Press, Trigger};
use doorbell_protocol::{RoomId, ServerEvent, SessionDescription};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub signaling: SignalingConfig,
    /// Base of the owner's link, normally the server's public `https://HOST:PORT`.
    pub public_url: String,
    pub timeouts: Timeouts,
    pub peer: PeerConfig,
    pub media: MediaSettings,
    pub reconnect_initial: Duration,
    /// Capped low so a returning server is found within about this long.
    pub reconnect_max: Duration,
    /// How long the notifiers wait for the visitor's snapshot before sending text only.
    pub snapshot_bound: Duration,
    /// LED output line: blinks while ringing, on during a call, off when idle.
    pub led: Option<OutputLineSpec>,
    /// Chime output line and its pulse length, pulsed on every press.
    pub chime: Option<(OutputLineSpec, Duration)>,
}

/// Opens the LED and chime lines; a line that cannot be opened is reported and left out.
fn open_indicator(settings: &AgentSettings, events: &mut dyn EventSink) -> Indicator {
    let mut open = |spec: &OutputLineSpec, what: &str| -> Option<Box<dyn OutputLine>> {
        match GpioOutputLine::open(spec, "doorbell") {
            Ok(line) => Some(Box::new(line)),
            Err(e) => {
                events.emit(&AgentEvent::Error {
                    message: format!("{what} line unavailable, going on without it: {e}"),
                });
                None
            }
        }
    };
    let led = settings.led.as_ref().and_then(|spec| open(spec, "LED"));
    let chime = settings
        .chime
        .as_ref()
        .and_then(|(spec, pulse)| open(spec, "chime").map(|line| (line, *pulse)));
    if led.is_none() && chime.is_none() {
        Indicator::none()
    } else {
        Indicator::spawn(led, chime)
    }
}

/// Opens the configured video source at the press and captures one frame (the camera is
/// released again before the call opens it).
struct OpenAndCapture(MediaSettings);

impl FrameSource for OpenAndCapture {
    fn recent_frame(
        &self,
    ) -> futures_util::future::BoxFuture<'static, Result<doorbell_media::VideoFrame, SnapshotError>>
    {
        let media = self.0.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || match media.open_video() {
                Ok(Some(mut source)) => source.capture().map_err(SnapshotError::Capture),
                Ok(None) => Err(SnapshotError::SourceClosed),
                Err(problem) => Err(SnapshotError::Worker(problem)),
            })
            .await
            .map_err(|e| SnapshotError::Worker(e.to_string()))?
        })
    }
}

/// Messages from the tasks the driver starts, tagged with the call they belong to so a late
/// report from an earlier call is ignored.
enum TaskReport {
    Connected(Result<SignalingConnection, signaling::SignalingError>),
    Answered(u64, Box<Result<(CallPeer, SessionDescription), PeerError>>),
    Peer(u64, PeerEvent),
    Closed(u64, CallStats),
    Notify(AgentEvent),
}

enum SignalingRecv {
    Event(ServerEvent),
    Lost,
}

async fn recv_signaling(conn: &mut Option<SignalingConnection>) -> SignalingRecv {
    match conn {
        Some(c) => match c.recv().await {
            Some(e) => SignalingRecv::Event(e),
            None => SignalingRecv::Lost,
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn random_room() -> RoomId {
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut bytes) {
        // The OS generator failing is not something to ring on with a guessable id.
        tracing::error!("OS random generator failed: {e}; using time-derived room id");
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    RoomId::from_random_bytes(bytes)
}

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / 65536.0,
        Err(_) => 0.5,
    }
}

fn counters(stats: CallStats) -> CallCounters {
    CallCounters {
        audio_frames_received: stats.audio_frames_received,
        audio_frames_nonsilent: stats.audio_frames_nonsilent,
        video_frames_sent: stats.video_frames_sent,
    }
}

struct Driver {
    settings: AgentSettings,
    flow: CallFlow,
    events: Box<dyn EventSink>,
    notifiers: Vec<Arc<dyn Notifier>>,
    reports: mpsc::UnboundedSender<TaskReport>,
    sender: Option<SignalingSender>,
    call: u64,
    peer: Option<CallPeer>,
    answering: Option<JoinHandle<()>>,
    snapshotter: Option<Snapshotter>,
    /// The snapshot started at the press, for the notification that follows.
    pending_snapshot: Option<PendingSnapshot>,
    indicator: Indicator,
}

/// Runs the agent until every trigger has ended (e.g. end of standard input) while no call is
/// going on, or until `shutdown` resolves (then any call is ended first, `bye` included).
pub async fn run(
    settings: AgentSettings,
    triggers: Vec<Box<dyn Trigger>>,
    notifiers: Vec<Arc<dyn Notifier>>,
    events: Box<dyn EventSink>,
    shutdown: impl Future<Output = ()>,
) {
    let (press_tx, mut presses) = mpsc::channel::<Press>(16);
    for trigger in triggers {
        let name = trigger.name();
        let tx = press_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = trigger.run(tx).await {
                tracing::error!(trigger = %name, "trigger stopped: {e}");
            }
        });
    }
    drop(press_tx);

    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let mut events = events;
    let indicator = open_indicator(&settings, events.as_mut());
    let mut driver = Driver {
        flow: CallFlow::new(settings.timeouts, settings.public_url.clone()),
        settings,
        events,
        notifiers,
        reports: reports_tx,
        sender: None,
        call: 0,
        peer: None,
        answering: None,
        snapshotter: None,
        pending_snapshot: None,
        indicator,
    };
    if driver.settings.media.video != crate::media_settings::VideoInput::None {
        driver.snapshotter = Some(
            Snapshotter::new(Arc::new(OpenAndCapture(driver.settings.media.clone())))
                .with_bound(driver.settings.snapshot_bound),
        );
    }
    let mut backoff = Backoff::new(
        driver.settings.reconnect_initial,
        driver.settings.reconnect_max,
    );
    let mut conn: Option<SignalingConnection> = None;
    let mut reconnect_at: Option<Instant> = Some(Instant::now());
    let mut triggers_open = true;
    let mut stopping = false;
    let mut connect_failures = 0u32;
    // A press while a connection attempt is under way waits for its outcome (the first one at
    // start, or a reconnect after a server restart) instead of failing at once.
    let mut connecting = true; // the first attempt starts at once
    let mut deferred_press = false;
    tokio::pin!(shutdown);

    driver.emit(&AgentEvent::Ready);
    loop {
        if (stopping || !triggers_open) && driver.flow.is_idle() {
            break;
        }
        let flow_deadline = driver.flow.poll_timeout().map(Instant::from_std);
        tokio::select! {
            () = &mut shutdown, if !stopping => {
                stopping = true;
                reconnect_at = None;
                driver.input(Input::Shutdown).await;
            }
            press = presses.recv(), if triggers_open => match press {
                Some(Press) if conn.is_none() && connecting && driver.flow.is_idle() => {
                    deferred_press = true;
                }
                Some(Press) => driver.press().await,
                None => triggers_open = false,
            },
            received = recv_signaling(&mut conn) => match received {
                SignalingRecv::Event(event) => driver.input(Input::Server(event)).await,
                SignalingRecv::Lost => {
                    tracing::warn!("signaling connection lost; reconnecting");
                    conn = None;
                    driver.sender = None;
                    driver.input(Input::SignalingLost).await;
                    if !stopping {
                        reconnect_at = Some(Instant::now() + backoff.next_delay(jitter()));
                    }
                }
            },
            () = sleep_until_opt(reconnect_at) => {
                reconnect_at = None;
                connecting = true;
                let config = driver.settings.signaling.clone();
                let reports = driver.reports.clone();
                tokio::spawn(async move {
                    let _ = reports.send(TaskReport::Connected(signaling::connect(&config).await));
                });
            }
            () = sleep_until_opt(flow_deadline) => {
                let outputs = driver.flow.handle_timeout(Instant::now().into_std());
                driver.execute(outputs).await;
            }
            Some(report) = reports.recv() => match report {
                TaskReport::Connected(Ok(c)) => {
                    connecting = false;
                    if stopping {
                        c.close().await;
                        continue;
                    }
                    backoff.reset();
                    connect_failures = 0;
                    driver.sender = Some(c.sender());
                    conn = Some(c);
                    driver.input(Input::SignalingConnected).await;
                    if std::mem::take(&mut deferred_press) {
                        driver.press().await;
                    }
                }
                TaskReport::Connected(Err(e)) => {
                    connecting = false;
                    connect_failures += 1;
                    // Say it once per outage in the event stream; keep the log for the rest.
                    if connect_failures == 1 {
                        driver.emit(&AgentEvent::Error {
                            message: format!("cannot reach the signaling server: {e}"),
                        });
                    }
                    tracing::warn!(attempt = connect_failures, "signaling connect failed: {e}");
                    if !stopping {
                        reconnect_at = Some(Instant::now() + backoff.next_delay(jitter()));
                    }
                    if std::mem::take(&mut deferred_press) {
                        driver.press().await;
                    }
                }
                TaskReport::Answered(call, result) => driver.on_answered(call, *result).await,
                TaskReport::Peer(call, event) if call == driver.call => {
                    let signal = match event {
                        PeerEvent::LocalCandidate(c) => PeerSignal::LocalCandidate(c),
                        PeerEvent::MediaConnected => PeerSignal::MediaConnected,
                        PeerEvent::IceLost | PeerEvent::Closed => PeerSignal::IceLost,
                        PeerEvent::MediaError(m) => PeerSignal::MediaError(m),
                    };
                    driver.input(Input::Peer(signal)).await;
                }
                TaskReport::Peer(..) => {}
                TaskReport::Closed(call, stats) => {
                    if call == driver.call {
                        driver.input(Input::PeerClosed(counters(stats))).await;
                    }
                }
                TaskReport::Notify(event) => driver.emit(&event),
            },
        }
    }
    if let Some(c) = conn {
        c.close().await;
    }
}

impl Driver {
    fn emit(&mut self, event: &AgentEvent) {
        self.events.emit(event);
    }

    /// A press: the snapshot starts now (in parallel with joining the room), so it is ready
    /// when the notification goes out.
    async fn press(&mut self) {
        self.indicator.chime();
        if self.flow.is_idle() {
            self.pending_snapshot = self.snapshotter.as_ref().map(Snapshotter::start);
        }
        self.input(Input::Press {
            fresh_room: random_room(),
        })
        .await;
    }

    async fn input(&mut self, input: Input) {
        let outputs = self.flow.handle_input(input, Instant::now().into_std());
        self.execute(outputs).await;
    }

    async fn execute(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Event(e) => self.emit(&e),
                Output::Send(event) => match &self.sender {
                    Some(s) => {
                        if let Err(e) = s.send(event) {
                            tracing::warn!("could not send on signaling: {e}");
                        }
                    }
                    None => tracing::debug!("signaling down; not sent: {}", event.name().as_str()),
                },
                Output::Notify { url, .. } => self.notify(Some(url)),
                Output::NotifyUnreachable => self.notify(None),
                Output::StartAnswer(offer) => self.start_answer(offer),
                Output::AddRemoteCandidate(c) => {
                    if let Some(peer) = &self.peer {
                        // Applying a candidate is quick; a bad one is logged, not fatal.
                        if let Err(e) = peer.add_remote_candidate(c).await {
                            tracing::warn!("remote candidate refused: {e}");
                        }
                    }
                }
                Output::ClosePeer => self.close_peer(),
            }
        }
        self.indicator.show_call_state(self.flow.state());
    }

    fn notify(&mut self, link: Option<String>) {
        let pending = self.pending_snapshot.take();
        let notifiers = self.notifiers.clone();
        // Channels keep trying until nobody could answer any more.
        let deadline = self.settings.timeouts.ring;
        let reports = self.reports.clone();
        let at = SystemTime::now();
        tokio::spawn(async move {
            // Bounded: past the snapshot bound the channels go text-only.
            let snapshot_jpeg = match pending {
                Some(p) => p.wait().await,
                None => None,
            };
            let ring = Arc::new(Ring {
                at,
                link,
                snapshot_jpeg,
            });
            dispatch_with(
                &notifiers,
                ring,
                deadline,
                RetryPolicy::default(),
                move |e| {
                    let _ = reports.send(TaskReport::Notify(e));
                },
            );
        });
    }

    fn start_answer(&mut self, offer: SessionDescription) {
        self.call += 1;
        let call = self.call;
        let (media, problems) = self.settings.media.open();
        for message in problems {
            self.emit(&AgentEvent::Error { message });
        }
        let (peer_tx, mut peer_rx) = mpsc::unbounded_channel();
        let reports = self.reports.clone();
        tokio::spawn(async move {
            while let Some(event) = peer_rx.recv().await {
                if reports.send(TaskReport::Peer(call, event)).is_err() {
                    break;
                }
            }
        });
        let config = self.settings.peer.clone();
        let reports = self.reports.clone();
        self.answering = Some(tokio::spawn(async move {
            let result = CallPeer::answer(&config, &offer, media, peer_tx).await;
            let _ = reports.send(TaskReport::Answered(call, Box::new(result)));
        }));
    }

    async fn on_answered(
        &mut self,
        call: u64,
        result: Result<(CallPeer, SessionDescription), PeerError>,
    ) {
        self.answering = None;
        match result {
            // Only a flow still waiting for this answer takes the peer; any other would leak it.
            Ok((peer, answer))
                if call == self.call
                    && matches!(self.flow.state(), CallState::Answering { .. }) =>
            {
                self.peer = Some(peer);
                self.input(Input::AnswerReady(answer)).await;
            }
            Ok((peer, _)) => {
                // The call ended while the answer was being built. Closing waits for the media
                // threads, so it must not hold up the driver.
                tokio::spawn(peer.close());
            }
            Err(e) if call == self.call => self.input(Input::AnswerFailed(e.to_string())).await,
            Err(_) => {}
        }
    }

    fn close_peer(&mut self) {
        let call = self.call;
        let reports = self.reports.clone();
        if let Some(task) = self.answering.take() {
            // Abandon the half-built peer: dropping it releases the camera and encoders.
            task.abort();
        }
        match self.peer.take() {
            Some(peer) => {
                tokio::spawn(async move {
                    let stats = peer.close().await;
                    let _ = reports.send(TaskReport::Closed(call, stats));
                });
            }
            None => {
                let _ = reports.send(TaskReport::Closed(call, CallStats::default()));
            }
        }
    }
}
