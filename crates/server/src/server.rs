//! Binding (so the address and fingerprint are known before serving) and serving.

use crate::adapter::SharedHub;
use crate::config::ServerConfig;
use crate::error::{MIN_TOKEN_CHARS, ServerError};
use crate::hub::Hub;
use crate::push::Push;
use crate::socket::{admit, close_idle_connections, on_connect};
use crate::tcp_limit::TcpLimitAcceptor;
use crate::{api, history, metrics, request_head, shutdown, tls, web};
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use doorbell_protocol::limits::MAX_PAYLOAD_BYTES;
use doorbell_protocol::metrics_text::MetricsText;
use socketioxide::SocketIo;
use socketioxide::handler::ConnectHandler;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// How long a client may take over its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers, counted from when the server
/// starts waiting for them.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages from other nodes the adapter holds before dropping (see `serve`).
const ADAPTER_BUFFER: usize = 65_536;

/// A server with its port bound and its certificate loaded, not yet serving.
pub struct BoundServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    cert_pem: String,
    fingerprint: String,
    rustls: Arc<rustls::ServerConfig>,
    acme: Option<Arc<crate::acme::Acme>>,
    /// With `--redis`: the rooms every node shares.
    cluster: Option<crate::cluster::Cluster>,
    driver: crate::cluster::NodeDriver,
    hub: SharedHub,
    config: ServerConfig,
    /// Ring facts from the hub, for the history (when the owner app is on).
    facts: Option<tokio::sync::mpsc::UnboundedReceiver<crate::hub::RingFact>>,
    /// The metrics port, bound, and what else each scrape shows (e.g. the embedded TURN
    /// server's allocations).
    metrics: Option<(tokio::net::TcpListener, Vec<MetricsSource>)>,
}

/// Adds some part's metrics to each scrape.
pub type MetricsSource = Arc<dyn Fn(&mut MetricsText) + Send + Sync>;

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("local_addr", &self.local_addr)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Checks the config, loads or makes the certificate and binds the port.
pub async fn bind(config: ServerConfig) -> Result<BoundServer, ServerError> {
    match &config.doorbell_token {
        Some(token) if token.is_empty() => return Err(ServerError::EmptyToken),
        Some(token) if token.len() < MIN_TOKEN_CHARS => {
            return Err(ServerError::WeakToken(token.len()));
        }
        None if !config.open_rooms => return Err(ServerError::NoTokenNoOpenRooms),
        _ => {}
    }
    let tls_config = config.tls.clone();
    // Generating a key and writing files is blocking work.
    let loaded = tokio::task::spawn_blocking(move || tls::load(&tls_config))
        .await
        .map_err(|e| ServerError::Tls(format!("certificate task failed: {e}")))??;
    let listener = TcpListener::bind(config.listen).map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let (cluster, driver) = match &config.redis {
        Some(url) => {
            let (cluster, driver) = crate::cluster::Cluster::connect(url.expose()).await?;
            (Some(cluster), driver)
        }
        None => (None, crate::cluster::NodeDriver::Alone),
    };
    let mut hub = Hub::new(
        config.doorbell_token.clone(),
        config.open_rooms,
        config.limits,
    )
    .with_ice(config.ice.clone());
    let mut facts = None;
    // With shared rooms every node's facts go to Redis, for the history node (the one with
    // the owner app) to record.
    if config.owners.is_some() || cluster.is_some() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        hub = hub.with_history(tx);
        facts = Some(rx);
    }
    let hub = Arc::new(hub);
    let metrics = match config.metrics_listen {
        Some(addr) => Some((
            metrics::bind(addr)
                .await
                .map_err(|source| ServerError::MetricsBind { addr, source })?,
            Vec::new(),
        )),
        None => None,
    };
    Ok(BoundServer {
        listener,
        local_addr,
        cert_pem: loaded.cert_pem,
        fingerprint: loaded.fingerprint,
        rustls: loaded.server_config,
        acme: loaded.acme,
        cluster,
        driver,
        hub,
        config,
        facts,
        metrics,
    })
}

impl BoundServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// SHA-256 of the certificate, `AA:BB:…`, for the owner to compare with the browser's.
    pub fn cert_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// With automatic HTTPS: its certificate and renewals (tests drive renewals through it).
    pub fn acme(&self) -> Option<Arc<crate::acme::Acme>> {
        self.acme.clone()
    }

    /// Where metrics are served, with `--metrics-listen`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// Shows `source`'s metrics in every scrape too (no-op without a metrics port).
    pub fn add_metrics(&mut self, source: MetricsSource) {
        if let Some((_, sources)) = &mut self.metrics {
            sources.push(source);
        }
    }

    /// The served certificate (leaf first), e.g. for a client to trust it as its CA.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Serves until `shutdown` resolves, then says `bye` to every room member and stops.
    pub async fn serve(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        // The Redis driver drops what arrives while its buffer is full (a warning, "redis
        // pubsub channel full"): a lost `new_peer` leaves a call waiting forever. 1,024 (the
        // default) overflowed while 1,000 rooms were set up across nodes; the channel grows
        // in blocks as it fills, so a large bound costs nothing until used.
        let adapter = socketioxide_redis::RedisAdapterCtr::new_with_driver(
            self.driver.clone(),
            socketioxide_redis::RedisAdapterConfig::default().with_stream_buffer(ADAPTER_BUFFER),
        );
        let (socket_layer, io) = SocketIo::builder()
            .with_adapter::<crate::adapter::Adapter>(adapter)
            .with_state(self.hub.clone())
            .with_state(crate::socket::Shared(self.cluster.clone()))
            .with_state(crate::socket::Owners(self.config.owners.clone()))
            // A frame larger than the largest valid event is refused by the transport, which
            // closes only that connection.
            .max_payload(MAX_PAYLOAD_BYTES as u64)
            .ws_max_message_size(MAX_PAYLOAD_BYTES)
            .ws_max_frame_size(MAX_PAYLOAD_BYTES)
            .connect_timeout(Duration::from_secs(10))
            // Signaling messages are small; a smaller read buffer saves ~3 KiB per idle
            // websocket (measured, BENCHMARKS.md). The send queue keeps its default of 128
            // packets so a burst of trickled candidates is never dropped.
            .ws_read_buffer_size(1024)
            .build_layer();
        // With Redis this subscribes to the adapter's channels; alone it is immediate.
        io.ns("/", on_connect.with(admit))
            .await
            .map_err(|e| ServerError::Redis(format!("the socket.io adapter: {e}")))?;
        let push = self
            .config
            .owners
            .as_ref()
            .and_then(|app| match Push::start(app) {
                Ok(push) => Some(Arc::new(push.counting(self.hub.metrics().clone()))),
                Err(why) => {
                    tracing::warn!(%why, "Web Push is off");
                    None
                }
            });
        // Outermost first: the request head is copied before socketioxide keeps it.
        let app = web::with_security_headers(
            web::routes()
                .merge(api::routes(
                    self.config.owners.clone(),
                    self.config.doorbell_token.clone(),
                    io.clone(),
                    self.hub.clone(),
                    push.clone(),
                ))
                .layer(socket_layer)
                .layer(axum::middleware::map_request(request_head::detach)),
            // A certificate browsers trust: pin HTTPS (not for the self-signed one, which an
            // owner may replace).
            matches!(
                self.config.tls,
                tls::TlsConfig::Files { .. } | tls::TlsConfig::Acme(_)
            ),
        );
        let handle: Handle<SocketAddr> = Handle::new();
        // Connections are counted (and TCP_NODELAY set) as they are accepted, before TLS.
        // A handshake that stalls is dropped after HANDSHAKE_TIMEOUT; a request whose headers
        // trickle in (slowloris) after HEADER_READ_TIMEOUT. Without the latter axum-server
        // keeps such a connection forever. That clock also runs while a keep-alive connection
        // idles between requests, which closes idle browser connections; Engine.IO polling
        // always has a request in flight or about to be.
        let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(self.rustls.clone()))
            .handshake_timeout(HANDSHAKE_TIMEOUT)
            .acceptor(
                TcpLimitAcceptor::new(self.config.limits.tcp_caps())
                    .counting_refusals(self.hub.metrics().clone()),
            );
        let mut server = axum_server::from_tcp(self.listener)?
            .acceptor(acceptor)
            .handle(handle.clone());
        server
            .http_builder()
            .http1()
            .header_read_timeout(Some(HEADER_READ_TIMEOUT))
            // hyper's read buffer (grown to 16 KiB by a request) stays allocated for the life
            // of an upgraded websocket; at hyper's minimum of 8 KiB an idle connection costs
            // ~4 KiB less (heaptrack, BENCHMARKS.md "Server"). Request heads over 8 KiB are
            // refused (431); ours are well under 1 KiB.
            .max_buf_size(8192);
        tracing::info!(
            addr = %self.local_addr,
            fingerprint = %self.fingerprint,
            open_rooms = self.config.open_rooms,
            "serving HTTPS and Socket.IO"
        );
        let mut serving =
            tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
        let metrics_task = self.metrics.take().map(|(listener, sources)| {
            let hub = self.hub.clone();
            let render: metrics::Render = Arc::new(move || {
                let mut m = MetricsText::new();
                hub.render_metrics(&mut m);
                for source in &sources {
                    source(&mut m);
                }
                metrics::render_process(&mut m);
                m.finish()
            });
            tracing::info!(addr = ?listener.local_addr().ok(), "serving metrics (GET /metrics)");
            tokio::spawn(async move {
                if let Err(e) = metrics::serve(listener, render).await {
                    tracing::error!("the metrics listener stopped: {e}");
                }
            })
        });
        // Started once serving: the CA's validation connects to this very port.
        let acme_task = self.acme.clone().map(|acme| tokio::spawn(acme.maintain()));
        let watching = self.cluster.clone().map(|cluster| {
            tokio::spawn(crate::cluster_events::watch_nodes(
                self.hub.clone(),
                cluster,
                io.clone(),
            ))
        });
        let sweeping = tokio::spawn(close_idle_connections(
            self.hub.clone(),
            io.clone(),
            self.config.limits.idle_timeout,
        ));
        let mut owner_tasks = Vec::new();
        let mut facts = self.facts.take();
        if let Some(cluster) = &self.cluster
            && let Some(local) = facts.take()
        {
            owner_tasks.push(tokio::spawn(crate::cluster_events::publish_facts(
                cluster.clone(),
                local,
            )));
            if self.config.owners.is_some() {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                crate::cluster_events::subscribe_facts(cluster, tx).await?;
                facts = Some(rx);
            }
        }
        if let (Some(app), Some(facts)) = (self.config.owners.clone(), facts) {
            owner_tasks.push(tokio::spawn(history::record(
                facts,
                app.clone(),
                io.clone(),
                push,
            )));
            owner_tasks.push(tokio::spawn(history::sweep(app, io.clone())));
        }
        tokio::select! {
            result = &mut serving => {
                return match result {
                    Ok(r) => r.map_err(ServerError::Io),
                    Err(e) => Err(ServerError::Io(std::io::Error::other(e))),
                };
            }
            () = shutdown => {}
        }
        sweeping.abort();
        if let Some(task) = &watching {
            task.abort();
        }
        if let Some(task) = &acme_task {
            task.abort();
        }
        if let Some(task) = &metrics_task {
            task.abort();
        }
        for task in &owner_tasks {
            task.abort();
        }
        if let Some(cluster) = &self.cluster {
            crate::cluster_events::leave_all(&self.hub, cluster, &io).await;
        }
        shutdown::run(&self.hub, &io, &handle).await;
        match serving.await {
            Ok(r) => r.map_err(ServerError::Io),
            Err(e) => Err(ServerError::Io(std::io::Error::other(e))),
        }
    }
}
