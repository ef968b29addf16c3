//! `doorbell demo`: the server and an agent in one process, with the test pattern and a tone,
//! on loopback. No Pi, no config, no accounts: ring with Enter, open the printed link.

use crate::agent_cmd::{self, AgentArgs};
use clap::Args;
use doorbell_agent::trigger::{ManualTrigger, Press, Trigger};
use doorbell_server::{Secret, ServerConfig, TlsConfig};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the demo's web page and signaling listen.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Ring once at start (as if Enter was pressed).
    #[arg(long)]
    pub ring: bool,
    /// Where the self-signed certificate is kept between runs.
    #[arg(long, env = "DOORBELL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `json`: the agent's event stream on stdout.
    #[arg(long)]
    pub events: Option<String>,
    #[arg(long)]
    pub video_size: Option<String>,
    #[arg(long)]
    pub fps: Option<u32>,
    /// `null` or `wav:PATH` for the owner's voice.
    #[arg(long)]
    pub audio_out: Option<String>,
    /// How long the bell rings (e.g. 60s).
    #[arg(long)]
    pub ring_timeout: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Server(#[from] doorbell_server::ServerError),
    #[error("{0}")]
    Agent(#[from] agent_cmd::AgentConfigError),
    #[error("the OS random generator failed: {0}")]
    Random(String),
}

fn random_token() -> Result<String, DemoError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| DemoError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("doorbell-demo"));
    let token = random_token()?;
    let mut config = ServerConfig::new(
        args.listen,
        TlsConfig::SelfSigned {
            data_dir,
            hostnames: Vec::new(),
        },
    );
    config.doorbell_token = Some(Secret::new(token.clone()));
    let server = doorbell_server::bind(config).await?;
    let addr = server.local_addr();
    let host = if addr.ip().is_loopback() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let url = format!("https://{host}:{}", addr.port());
    let fingerprint = server.cert_fingerprint().to_owned();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server_task = tokio::spawn(server.serve(async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    }));

    let agent_args = AgentArgs {
        server: Some(url.clone()),
        token: Some(token),
        server_fingerprint: Some(fingerprint.clone()),
        triggers: Some(vec!["stdin".into()]),
        events: args.events.clone(),
        video_size: args.video_size.clone(),
        fps: args.fps,
        audio_out: args.audio_out.clone(),
        ring_timeout: args.ring_timeout.clone(),
        ice_hosts: Some(vec![addr.ip()]),
        // The demo's server keeps no history, so there is nowhere to leave a message.
        message_length: Some("0s".into()),
        ..AgentArgs::default()
    };
    let resolved = agent_args.resolve()?;

    let (manual, presses) = ManualTrigger::new();
    let extra: Vec<Box<dyn Trigger>> = vec![Box::new(manual)];
    eprintln!(
        "\nDoorbell demo\n  web page:    {url}/  (self-signed certificate, SHA-256 {fingerprint})\n  \
         press Enter to ring; the link to open appears below. Ctrl-C stops.\n"
    );
    if args.ring {
        let _ = presses.send(Press).await;
    }
    let mut agent_stop = stop_rx.clone();
    let notifiers = agent_cmd::notifiers(&[])
        .map_err(|why| agent_cmd::AgentConfigError::Bad { key: "notify", why })?;
    let agent = agent_cmd::run(resolved, notifiers, extra, async move {
        let _ = agent_stop.wait_for(|stop| *stop).await;
    });
    tokio::pin!(agent);
    tokio::select! {
        result = &mut agent => {
            // The agent stops by itself only if its triggers end; the demo keeps the manual
            // trigger alive, so this is an error path.
            result?;
        }
        () = crate::shutdown_signal() => {
            eprintln!("stopping…");
            let _ = stop_tx.send(true);
            agent.await?;
        }
    }
    let _ = stop_tx.send(true);
    drop(presses);
    match server_task.await {
        Ok(result) => result?,
        Err(e) => tracing::error!("server task failed: {e}"),
    }
    Ok(())
}
