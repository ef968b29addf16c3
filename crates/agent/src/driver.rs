//! The agent's driver: the only place where [`AgentFlow`] meets I/O. It turns trigger presses,
//! server events, task reports and the clock into [`Input`]s and carries out the [`Output`]s.
//! It decides nothing: besides the machine it keeps only handles (the connection, the peer,
//! the task building an answer, the photo being taken), each tagged with the call it belongs
//! to so that a late report from an earlier call is dropped.
//!
//! Timers use `tokio::time`, so tests/driver.rs runs it with paused time against fakes.

use crate::agent_flow::{AgentFlow, Reconnect};
use crate::call_flow::{Input, LiveView, Output, RecordedMessage, Timeouts};
use crate::entropy::{jitter, random_room};
use crate::events::AgentEvent;
use crate::ports::{AgentIo, Answered, Peer, SignalingLink};
use crate::trigger::Trigger;
use doorbell_notify::{ChannelOutcome, PendingSnapshot, dispatch_after_snapshot};
use doorbell_protocol::{CallStats, RoomId, ServerEvent};
use std::future::Future;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// The channel that hands each ring's photo to the server (`doorbell`'s snapshot upload).
pub const HISTORY_CHANNEL: &str = "history";
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Base of the owner's link, normally the server's public `https://HOST:PORT`.
    pub public_url: String,
    pub timeouts: Timeouts,
    pub reconnect: Reconnect,
    /// How long the notifiers wait for the visitor's photo before sending text only.
    pub snapshot_bound: Duration,
    /// Use loopback/link-local remote candidates (the agent itself is on such an address).
    pub accept_internal_candidates: bool,
    /// Whether paired owners may open the camera without a ring, and whether the LED says so.
    pub live_view: LiveView,
    /// The longest message a visitor nobody answered may leave (zero: none; also none without
    /// [`crate::ports::Messages`]).
    pub message_length: Duration,
}

/// What the tasks the driver starts report back.
enum Report {
    Connected(Result<Box<dyn SignalingLink>, String>),
    Answered(u64, Result<Answered, String>),
    /// What the call's peer says: its events, the answer to an ICE restart, its closing.
    ForCall(u64, Input),
    Notified(ChannelOutcome),
    /// The recorder's result.
    Recorded(Result<RecordedMessage, String>),
    /// A line of the event stream from a task (the message outbox).
    Event(AgentEvent),
    /// The server took a message: the owners hear of it.
    MessageUploaded(RecordedMessage),
}

/// Runs the agent until every trigger has ended (e.g. end of standard input) while no call is
/// going on, or until `shutdown` resolves (then any call is ended first, `bye` included).
pub async fn run(
    settings: AgentSettings,
    io: AgentIo,
    triggers: Vec<Box<dyn Trigger>>,
    shutdown: impl Future<Output = ()>,
) {
    let (press_tx, mut presses) = mpsc::channel(16);
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
    let mut flow = AgentFlow::new(
        settings.timeouts,
        settings.public_url.clone(),
        settings.reconnect,
        Box::new(jitter),
    )
    .accepting_internal_candidates(settings.accept_internal_candidates)
    .with_live_view(settings.live_view)
    .with_message_length(if io.messages.is_some() {
        settings.message_length
    } else {
        Duration::ZERO
    });
    let mut driver = Driver {
        settings,
        io,
        reports: reports_tx,
        link: None,
        call: 0,
        peer: None,
        answering: None,
        snapshot: None,
        stop_recording: None,
    };
    let mut triggers_open = true;
    let mut shutdown_seen = false;
    tokio::pin!(shutdown);

    let mut outputs = flow.start();
    if let Some(messages) = driver.io.messages.as_mut() {
        outputs.extend(
            std::mem::take(&mut messages.left_over)
                .into_iter()
                .map(Output::DeliverMessage),
        );
    }
    loop {
        driver.execute(outputs).await;
        if flow.has_exited() {
            break;
        }
        let deadline = flow.poll_timeout().map(Instant::from_std);
        let input = tokio::select! {
            () = &mut shutdown, if !shutdown_seen => {
                shutdown_seen = true;
                Input::Shutdown
            }
            press = presses.recv(), if triggers_open => match press {
                Some(_) => Input::Press { fresh_room: random_room() },
                None => {
                    triggers_open = false;
                    Input::TriggersEnded
                }
            },
            received = recv(&mut driver.link) => match received {
                Some(event) => Input::Server(event),
                None => {
                    tracing::warn!("signaling connection lost");
                    driver.link = None;
                    Input::SignalingLost
                }
            },
            () = sleep_until(deadline) => {
                outputs = flow.handle_timeout(Instant::now().into_std());
                continue;
            }
            Some(report) = reports.recv() => match driver.input_for(report) {
                Some(input) => input,
                None => {
                    outputs = Vec::new();
                    continue;
                }
            },
        };
        outputs = flow.handle_input(input, Instant::now().into_std());
    }
    if let Some(link) = driver.link.take() {
        link.close().await;
    }
}

struct Driver {
    settings: AgentSettings,
    io: AgentIo,
    reports: mpsc::UnboundedSender<Report>,
    link: Option<Box<dyn SignalingLink>>,
    /// Numbers the calls, so reports of an earlier call's peer are told apart.
    call: u64,
    peer: Option<Box<dyn Peer>>,
    answering: Option<JoinHandle<()>>,
    /// The photo started at the press, for the notification that follows.
    snapshot: Option<PendingSnapshot>,
    /// Ends the recording under way.
    stop_recording: Option<oneshot::Sender<()>>,
}

impl Driver {
    /// The input a task's report stands for, if it still concerns anyone.
    fn input_for(&mut self, report: Report) -> Option<Input> {
        match report {
            Report::Connected(Ok(link)) => {
                self.link = Some(link);
                Some(Input::SignalingConnected)
            }
            Report::Connected(Err(why)) => Some(Input::SignalingConnectFailed(why)),
            // The answer task of the current call is still held: its peer is wanted.
            Report::Answered(call, Ok((peer, answer)))
                if call == self.call && self.answering.take().is_some() =>
            {
                self.peer = Some(peer);
                Some(Input::AnswerReady(answer))
            }
            Report::Answered(_, Ok((peer, _))) => {
                // Its call ended while the answer was built. Closing waits for the media
                // threads, so it must not hold up the driver.
                tokio::spawn(peer.close());
                None
            }
            Report::Answered(call, Err(why)) if call == self.call => {
                self.answering = None;
                Some(Input::AnswerFailed(why))
            }
            Report::ForCall(call, input) if call == self.call => Some(input),
            Report::Notified(outcome) => {
                self.io.events.emit(&outcome.into());
                None
            }
            Report::Recorded(recorded) => {
                self.stop_recording = None;
                Some(Input::MessageRecorded(recorded))
            }
            Report::Event(event) => {
                self.io.events.emit(&event);
                None
            }
            Report::MessageUploaded(message) => {
                self.notify_message(message);
                None
            }
            Report::Answered(..) | Report::ForCall(..) => None,
        }
    }

    async fn execute(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Event(e) => self.io.events.emit(&e),
                Output::Send(event) => match &self.link {
                    Some(link) => {
                        if let Err(e) = link.send(event) {
                            tracing::warn!("could not send on signaling: {e}");
                        }
                    }
                    None => tracing::debug!("signaling down; not sent: {}", event.name().as_str()),
                },
                Output::Connect => {
                    let connecting = self.io.connector.connect();
                    let reports = self.reports.clone();
                    tokio::spawn(async move {
                        let _ = reports.send(Report::Connected(connecting.await));
                    });
                }
                Output::CloseSignaling => {
                    if let Some(link) = self.link.take() {
                        link.close().await;
                    }
                }
                Output::TakeSnapshot => {
                    self.snapshot = self.io.camera.as_ref().map(|camera| {
                        PendingSnapshot::start(camera.snapshot_jpeg(), self.settings.snapshot_bound)
                    });
                }
                Output::Chime => self.io.indicator.chime(),
                Output::Led(mode) => self.io.indicator.show(mode),
                Output::Notify { room, url } => self.notify(Some((room, url))),
                Output::NotifyUnreachable => self.notify(None),
                Output::StartAnswer { offer, ice } => {
                    self.call += 1;
                    let call = self.call;
                    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
                    let reports = self.reports.clone();
                    tokio::spawn(async move {
                        while let Some(event) = events_rx.recv().await {
                            if reports
                                .send(Report::ForCall(call, Input::Peer(event)))
                                .is_err()
                            {
                                break;
                            }
                        }
                    });
                    let answering = self.io.answerer.answer(offer, ice, events_tx);
                    let reports = self.reports.clone();
                    self.answering = Some(tokio::spawn(async move {
                        let _ = reports.send(Report::Answered(call, answering.await));
                    }));
                }
                Output::RestartIce(offer) => {
                    let input = match &self.peer {
                        Some(peer) => match peer.restart_ice(offer).await {
                            Ok(answer) => Input::AnswerReady(answer),
                            Err(why) => Input::AnswerFailed(why),
                        },
                        None => Input::AnswerFailed("no peer to restart".to_owned()),
                    };
                    let _ = self.reports.send(Report::ForCall(self.call, input));
                }
                Output::AddRemoteCandidate(c) => {
                    if let Some(peer) = &self.peer
                        && let Err(e) = peer.add_remote_candidate(c).await
                    {
                        // A bad candidate is logged, not fatal: others may work.
                        tracing::warn!("remote candidate refused: {e}");
                    }
                }
                Output::ClosePeer => self.close_peer(),
                Output::RecordMessage { room, max } => {
                    let reports = self.reports.clone();
                    match &self.io.messages {
                        Some(messages) => {
                            let (stop, stopped) = oneshot::channel();
                            self.stop_recording = Some(stop);
                            let recording = messages.recorder.record(room, max, stopped);
                            tokio::spawn(async move {
                                let _ = reports.send(Report::Recorded(recording.await));
                            });
                        }
                        None => {
                            let _ = reports.send(Report::Recorded(Err(
                                "this doorbell records no messages".into(),
                            )));
                        }
                    }
                }
                Output::PlayReply(id) => {
                    let reports = self.reports.clone();
                    let Some(replies) = self.io.replies.clone() else {
                        let _ = reports.send(Report::Event(AgentEvent::Error {
                            message: format!("reply {id}: this doorbell plays no replies"),
                        }));
                        continue;
                    };
                    tokio::spawn(async move {
                        let event = match replies.play(id).await {
                            Ok(after) => AgentEvent::ReplyPlaying {
                                id,
                                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                            },
                            Err(why) => AgentEvent::Error {
                                message: format!("reply {id} could not be played: {why}"),
                            },
                        };
                        let _ = reports.send(Report::Event(event));
                    });
                }
                Output::RefreshReplies => {
                    if let Some(replies) = self.io.replies.clone() {
                        tokio::spawn(async move {
                            match replies.refresh().await {
                                Ok(kept) => tracing::debug!(kept, "quick replies up to date"),
                                Err(why) => tracing::warn!("quick replies not refreshed: {why}"),
                            }
                        });
                    }
                }
                Output::StopRecording => {
                    if let Some(stop) = self.stop_recording.take() {
                        let _ = stop.send(());
                    }
                }
                Output::DeliverMessage(message) => {
                    if let Some(messages) = &self.io.messages {
                        let (events, mut events_rx) = mpsc::unbounded_channel();
                        let (uploaded, mut uploaded_rx) = mpsc::unbounded_channel();
                        let reports = self.reports.clone();
                        tokio::spawn(async move {
                            loop {
                                let report = tokio::select! {
                                    Some(event) = events_rx.recv() => Report::Event(event),
                                    Some(message) = uploaded_rx.recv() => Report::MessageUploaded(message),
                                    else => break,
                                };
                                if reports.send(report).is_err() {
                                    break;
                                }
                            }
                        });
                        messages.outbox.deliver(message, events, uploaded);
                    }
                }
                Output::Exit => {}
            }
        }
    }

    fn notify(&mut self, link: Option<(RoomId, String)>) {
        let reports = self.reports.clone();
        // Channels keep trying until nobody could answer any more.
        dispatch_after_snapshot(
            self.io.notifiers.clone(),
            SystemTime::now(),
            link,
            self.snapshot.take(),
            self.settings.timeouts.ring,
            move |outcome| {
                let _ = reports.send(Report::Notified(outcome));
            },
        );
    }

    /// "New video message (12 s)" on the channels that carry text: not on the history upload
    /// (the server has the message) nor on smart-home devices (a message is no ring).
    fn notify_message(&mut self, message: RecordedMessage) {
        let channels: Vec<_> = self
            .io
            .notifiers
            .iter()
            .filter(|n| n.device().is_none() && n.channel() != HISTORY_CHANNEL)
            .cloned()
            .collect();
        let reports = self.reports.clone();
        let link = format!("{}/", self.settings.public_url.trim_end_matches('/'));
        let ring = std::sync::Arc::new(doorbell_notify::Ring {
            at: SystemTime::now(),
            link: Some(link),
            room: Some(message.room),
            snapshot_jpeg: None,
            message: Some(message.duration),
        });
        doorbell_notify::dispatch_with(
            &channels,
            ring,
            self.settings.timeouts.ring,
            doorbell_notify::RetryPolicy::default(),
            move |outcome| {
                let _ = reports.send(Report::Notified(outcome));
            },
        );
    }

    fn close_peer(&mut self) {
        if let Some(task) = self.answering.take() {
            // Abandon the half-built peer: dropping it releases the camera and encoders.
            task.abort();
        }
        let call = self.call;
        let reports = self.reports.clone();
        let peer = self.peer.take();
        tokio::spawn(async move {
            let stats = match peer {
                Some(peer) => peer.close().await,
                None => CallStats::default(),
            };
            let _ = reports.send(Report::ForCall(call, Input::PeerClosed(stats)));
        });
    }
}

async fn recv(link: &mut Option<Box<dyn SignalingLink>>) -> Option<ServerEvent> {
    match link {
        Some(link) => link.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
