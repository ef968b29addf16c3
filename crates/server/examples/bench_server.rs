//! A server for the benchmarks in tests/server/bench.js (not a test): open rooms, limits
//! raised for one client address holding 10,000 connections, certificate written to a file.
//!
//! ```sh
//! ulimit -n 65536
//! cargo run --release -p doorbell-server --example bench_server -- /tmp/bench-ca.pem
//! ```
//! Prints `PORT <port>` and `PID <pid>` on stdout; stops on Ctrl-C. For a node of several,
//! `BENCH_REDIS=redis://127.0.0.1:6379` shares rooms through that Redis and
//! `BENCH_DATA_DIR` gives each node its own directory.

use doorbell_server::{Limits, ServerConfig, TlsConfig, bind};
use std::io::Write;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ca_out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/doorbell-bench-ca.pem".to_owned());
    let data_dir = std::env::var_os("BENCH_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("doorbell-bench"));
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse()?,
        TlsConfig::SelfSigned {
            data_dir,
            hostnames: vec![],
        },
    );
    config.open_rooms = true;
    config.redis = std::env::var("BENCH_REDIS")
        .ok()
        .map(doorbell_server::Secret::new);
    config.limits = Limits {
        events_per_sec: 1000,
        event_burst: 1000,
        max_connections: 100_000,
        max_connections_per_ip: 100_000,
        ..Limits::default()
    };
    let server = bind(config).await?;
    std::fs::write(&ca_out, server.cert_pem())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "PORT {}", server.local_addr().port())?;
    writeln!(out, "PID {}", std::process::id())?;
    out.flush()?;
    drop(out);
    // Live tokio tasks, for telling per-connection state apart (BENCH_TASKS=1).
    if std::env::var_os("BENCH_TASKS").is_some() {
        tokio::spawn(async {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                let tasks = tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks();
                eprintln!("TASKS {tasks}");
            }
        });
    }
    server
        .serve(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
