//! `doorbell`: one binary for the signaling server, the Pi's agent, and the one-command demo.

mod agent_cmd;
mod agent_io;
mod audio_args;
mod audio_check_cmd;
mod config;
#[cfg(test)]
mod config_tests;
mod credentials;
mod demo_cmd;
mod devices_cmd;
mod duration;
mod fd_limit;
mod message_outbox;
mod owners_cmd;
mod reply_player;
mod server_cmd;
mod snapshot_upload;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use config::ConfigFile;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "doorbell", version, about = "A self-hosted video doorbell")]
struct Cli {
    /// TOML config file; flags and DOORBELL_* environment variables override its keys.
    #[arg(long, global = true, env = "DOORBELL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The HTTPS signaling server: the web page and Socket.IO rooms for doorbell and browser.
    Server(Box<server_cmd::ServerArgs>),
    /// The doorbell (Raspberry Pi) side: ring → room → notify → answer the browser.
    Agent(Box<agent_cmd::AgentArgs>),
    /// Server and agent in one process with a test pattern and a tone: press Enter to ring.
    Demo(demo_cmd::DemoArgs),
    /// List cameras, ALSA capture/playback devices and GPIO lines, as the config names them.
    Devices(devices_cmd::DevicesArgs),
    /// Run the microphone processing (echo cancellation, noise suppression, gain) over WAV files
    /// and print the echo return loss enhancement: for checking a doorbell's audio offline.
    AudioCheck(Box<audio_check_cmd::AudioCheckArgs>),
    /// The owners' paired devices (the owner app): pair, list, revoke.
    #[command(subcommand)]
    Owners(owners_cmd::OwnersCommand),
    /// Notification helpers.
    #[command(subcommand)]
    Notify(NotifyCommand),
}

#[derive(Debug, Subcommand)]
enum NotifyCommand {
    /// Print a new random ntfy topic (128 bits). A topic without access control is a secret:
    /// whoever knows it reads every ring's link and photo and can answer the door.
    NewTopic,
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed now, not at the first poll, so a
/// signal that arrives right after start-up output is not fatal.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,webrtc=warn,rtc=warn,rtc_ice=warn"));
    // These trace whole requests and packets, which carry the doorbell token (the Engine.IO 3
    // query string, the Engine.IO 4 auth packet): never more than info, whatever RUST_LOG says.
    for directive in [
        "tungstenite=info",
        "tokio_tungstenite=info",
        "socketioxide=info",
        "engineioxide=info",
    ] {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    // The WebRTC and codec crates log through `log`; bridge it so their warnings show.
    let _ = tracing_log::LogTracer::init();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Commands that need no async runtime (no threads): `devices` and `agent --check-config`.
/// `None` when the command is not one of them.
fn run_without_runtime(cli: &Cli, given: &ArgMatches) -> Option<Result<(), String>> {
    match &cli.command {
        Command::Devices(args) => Some(devices_cmd::run(args.clone())),
        Command::Owners(command) => Some(
            ConfigFile::read(cli.config.as_deref())
                .and_then(|config| owners_cmd::run(command, &config)),
        ),
        Command::AudioCheck(args) => Some(
            ConfigFile::read(cli.config.as_deref())
                .and_then(|config| audio_check(&config, args, given)),
        ),
        Command::Notify(NotifyCommand::NewTopic) => {
            Some(doorbell_notify::new_topic().map(|topic| {
                println!("{topic}");
            }))
        }
        Command::Agent(args) if args.check_config && !args.test_notify => Some((|| {
            let config = ConfigFile::read(cli.config.as_deref())?;
            let args: agent_cmd::AgentArgs = config.section("agent", given)?;
            args.resolve().map_err(|e| e.to_string())?;
            let notifiers = agent_cmd::notifiers(&config.table_array("notify"))
                .map_err(|problems| format!("config problems:\n{problems}"))?;
            let channels: Vec<String> = notifiers.iter().map(|n| n.channel()).collect();
            println!("config OK; notification channels: {}", channels.join(", "));
            Ok(())
        })()),
        _ => None,
    }
}

/// `given` holds the subcommand's flags and environment variables as clap found them; each
/// section is read from it laid over the config file (the parsed `Command` alone cannot tell
/// a flag that was given from one that was not).
async fn run(cli: Cli, given: &ArgMatches) -> Result<(), String> {
    let config = ConfigFile::read(cli.config.as_deref())?;
    match cli.command {
        Command::Server(_) => {
            let args: server_cmd::ServerArgs = config.section("server", given)?;
            let mut resolved = args.resolve().map_err(|e| e.to_string())?;
            resolved.owners = args.owner_app().map_err(|e| e.to_string())?;
            let turn = args
                .turn(resolved.ice.turn_secret.as_ref())
                .map_err(|e| e.to_string())?;
            server_cmd::run(resolved, turn, shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        }
        Command::Agent(_) => {
            let args: agent_cmd::AgentArgs = config.section("agent", given)?;
            let notify_tables = config.table_array("notify");
            let resolved = args.resolve().map_err(|e| e.to_string())?;
            if args.test_notify {
                return agent_cmd::test_notify(&resolved, &notify_tables).await;
            }
            let notifiers = agent_cmd::notifiers(&notify_tables)
                .map_err(|problems| format!("config problems:\n{problems}"))?;
            agent_cmd::run(resolved, notifiers, Vec::new(), shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        }
        Command::Demo(args) => demo_cmd::run(args).await.map_err(|e| e.to_string()),
        Command::Devices(args) => devices_cmd::run(args),
        Command::Owners(command) => owners_cmd::run(&command, &config),
        Command::AudioCheck(args) => audio_check(&config, &args, given),
        Command::Notify(NotifyCommand::NewTopic) => {
            doorbell_notify::new_topic().map(|topic| println!("{topic}"))
        }
    }
}

/// `audio-check` with the config file's `[agent.audio]` under its flags: the call's processing.
fn audio_check(
    config: &ConfigFile,
    args: &audio_check_cmd::AudioCheckArgs,
    given: &ArgMatches,
) -> Result<(), String> {
    let audio = config.section_in("agent", "audio", given)?;
    audio_check_cmd::run(args, &audio)
}

fn exit_code(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("doorbell: {message}");
            ExitCode::from(2)
        }
    }
}

/// glibc gives every thread that allocates its own malloc arena (up to 8 per core) and keeps
/// their memory. Each call starts fresh media threads, so the agent's RSS climbed from 28 to
/// ~90 MB over its first calls before levelling off (soak test). Two arenas are plenty for the
/// server; the agent takes one: its threads allocate a few hundred blocks a second (frames,
/// packets), too few to contend, and the second arena held ~2 MB in a call (issue 19).
fn limit_malloc_arenas(arenas: i32) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; it is called before any other thread
    // exists, and a failure (return 0) just leaves the default.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let agent = matches!(cli.command, Command::Agent(_));
    // Still before any thread: parsing the command line starts none.
    limit_malloc_arenas(if agent { 1 } else { 2 });
    // The subcommand is required, so clap has always matched one.
    let given = matches
        .subcommand()
        .map(|(_, given)| given.clone())
        .unwrap_or_default();
    init_logging();
    // Checks run without starting threads: quicker, and they work under qemu-user, which
    // hangs at thread creation in these binaries (how CI checks the aarch64 build).
    if let Some(result) = run_without_runtime(&cli, &given) {
        return exit_code(result);
    }
    // The agent's async side is light (signaling, the WebRTC core's timers, moving ~80 packets
    // a second); capture, encoding and audio run on their own threads. One worker instead of
    // one per core (four on a Pi) saves their stacks and cross-thread wake-ups (issue 19).
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if agent {
        builder.worker_threads(1);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("doorbell: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    exit_code(runtime.block_on(run(cli, &given)))
}
