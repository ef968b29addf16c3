//! `doorbell owners pair|list|revoke`: the owners' devices, managed on the server host (the
//! same database the running server uses; it notices a revocation within a second).

use crate::config::ConfigFile;
use crate::server_cmd::ServerArgs;
use clap::{Args, Subcommand};
use doorbell_protocol::wall_clock::human_utc;
use doorbell_store::Store;
use std::path::PathBuf;
use std::time::SystemTime;

#[derive(Debug, Clone, Subcommand)]
pub enum OwnersCommand {
    /// Print a one-time link (and its QR code) that pairs a phone or computer as an owner
    /// device; it works once, for 10 minutes.
    Pair(PairArgs),
    /// List the paired devices.
    List(Where),
    /// End a device's access at once (its open pages are closed too).
    Revoke(RevokeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct Where {
    /// The server's data dir [default: the [server] data-dir, else ~/.local/share/doorbell].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PairArgs {
    /// The device's name, e.g. "Anna's phone" (shown as "Answered by …").
    #[arg(long)]
    pub name: String,
    /// The server's address as the phone reaches it, e.g. https://door.example.com:8443
    /// [default: from the [server] hostnames and listen port].
    #[arg(long)]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub place: Where,
}

#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    /// The device's name, as `doorbell owners list` shows it.
    pub name: String,
    #[command(flatten)]
    pub place: Where,
}

fn server_args(config: &ConfigFile) -> Result<ServerArgs, String> {
    // Only the file's [server] table (the owners command has flags of its own).
    let none = ServerArgs::augment_args(clap::Command::new("doorbell"))
        .try_get_matches_from(["doorbell"])
        .map_err(|e| e.to_string())?;
    config.section::<ServerArgs>("server", &none)
}

fn open(place: &Where, server: &ServerArgs) -> Result<Store, String> {
    let dir = place
        .data_dir
        .clone()
        .or_else(|| server.data_dir())
        .ok_or("no data dir: give --data-dir (the server's data-dir)")?;
    if !dir.join("doorbell.sqlite3").exists() {
        return Err(format!(
            "no doorbell database in {}: start the server once with this data dir, or give \
             --data-dir",
            dir.display()
        ));
    }
    Store::open(&dir).map_err(|e| e.to_string())
}

/// Runs one owners command (no async runtime needed).
pub fn run(command: &OwnersCommand, config: &ConfigFile) -> Result<(), String> {
    let server = server_args(config)?;
    match command {
        OwnersCommand::Pair(args) => {
            let store = open(&args.place, &server)?;
            let code = store
                .new_pairing(&args.name, SystemTime::now())
                .map_err(|e| e.to_string())?;
            let base = match &args.public_url {
                Some(url) => url.trim_end_matches('/').to_owned(),
                None => default_public_url(&server),
            };
            let link = format!("{base}/pair?code={}", code.code);
            println!(
                "Pairing link for {:?} (works once, until {}):",
                code.name,
                human_utc(code.expires_at)
            );
            println!("{link}");
            match qr(&link) {
                Some(art) => println!("{art}"),
                None => println!("(the link is too long for a QR code)"),
            }
            Ok(())
        }
        OwnersCommand::List(place) => {
            let store = open(place, &server)?;
            let devices = store.devices().map_err(|e| e.to_string())?;
            if devices.is_empty() {
                println!("no paired devices (pair one: doorbell owners pair --name NAME)");
            }
            for device in devices {
                match device.revoked_at {
                    None => println!("{}\tpaired {}", device.name, human_utc(device.paired_at)),
                    Some(at) => println!(
                        "{}\tpaired {}\trevoked {}",
                        device.name,
                        human_utc(device.paired_at),
                        human_utc(at)
                    ),
                }
            }
            Ok(())
        }
        OwnersCommand::Revoke(args) => {
            let store = open(&args.place, &server)?;
            if store
                .revoke(&args.name, SystemTime::now())
                .map_err(|e| e.to_string())?
            {
                println!(
                    "revoked {:?}; its open pages close within a second",
                    args.name
                );
                Ok(())
            } else {
                Err(format!(
                    "no paired device named {:?} (see `doorbell owners list`)",
                    args.name
                ))
            }
        }
    }
}

fn default_public_url(server: &ServerArgs) -> String {
    let host = server
        .hostnames
        .as_ref()
        .and_then(|h| h.first().cloned())
        .unwrap_or_else(|| "localhost".to_owned());
    let port = server.listen.map_or(8443, |addr| addr.port());
    format!("https://{host}:{port}")
}

/// The link as a QR code drawn with Unicode half blocks (two rows of modules per line).
fn qr(link: &str) -> Option<String> {
    let code = qrcode::QrCode::new(link.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build(),
    )
}
