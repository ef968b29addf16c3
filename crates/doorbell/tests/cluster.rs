//! Several server nodes sharing rooms through a real `redis-server` (`--redis`): a doorbell
//! on one node and Chromium on another make a call; two owners racing to join on two nodes get
//! exactly one `joined`; a node killed while its doorbell rings ends the ring cleanly for the
//! owner (`bye`) and the doorbell rings again through the other node.

mod support;

use doorbell_protocol::{ClientEvent, ErrorCode, RoomId, ServerEvent};
use doorbell_signaling::{ServerTrust, SignalingConfig, SignalingConnection, connect};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{Agent, Proc, Server, answer_briefly_and_hang_up, free_port, wait_for_port};

const WAIT: Duration = Duration::from_secs(30);

/// A private `redis-server` on a free port, without persistence.
fn redis() -> (Proc, String) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is missing: apt-get install redis-server (.ci/run installs it)");
    wait_for_port(
        format!("127.0.0.1:{port}").parse().expect("addr"),
        Duration::from_secs(10),
    );
    (
        Proc {
            child,
            name: "redis".into(),
        },
        format!("redis://127.0.0.1:{port}"),
    )
}

/// Two nodes on one Redis, with the same certificate (as behind one load balancer name).
fn two_nodes(redis: &str) -> (Server, Server) {
    let first = Server::start_with(&["--redis", redis]);
    let cert = first.cert_path();
    let key = first.data_dir.path().join("key.pem");
    let second = Server::start_with(&[
        "--redis",
        redis,
        "--cert",
        cert.to_str().expect("utf-8"),
        "--key",
        key.to_str().expect("utf-8"),
    ]);
    (first, second)
}

/// A client of `node`; every node serves the certificate made by the first, `ca`.
fn client_config(node: &Server, ca: &Server, token: Option<&str>) -> SignalingConfig {
    let mut config = SignalingConfig::new(node.url());
    config.trust =
        ServerTrust::CaPem(std::fs::read_to_string(ca.cert_path()).expect("the nodes' cert"));
    config.token = token.map(str::to_owned);
    config
}

/// The next event other than `ice_servers`.
async fn next(conn: &mut SignalingConnection) -> ServerEvent {
    loop {
        match tokio::time::timeout(WAIT, conn.recv()).await {
            Ok(Some(ServerEvent::IceServers(_))) => {}
            Ok(Some(event)) => return event,
            Ok(None) => panic!("the connection closed"),
            Err(_) => panic!("no event within {WAIT:?}"),
        }
    }
}

#[test]
fn a_doorbell_on_one_node_and_chromium_on_another_make_a_call() {
    let (_redis, url) = redis();
    let (first, second) = two_nodes(&url);
    let mut agent = Agent::for_server(&first, &[]);
    agent.wait_for("connected", WAIT);
    let link = agent.ring(WAIT);
    // The same link, opened on the other node.
    let on_second = link.replace(
        &format!(":{}/", first.addr.port()),
        &format!(":{}/", second.addr.port()),
    );
    assert_ne!(link, on_second);
    answer_briefly_and_hang_up(&mut agent, &on_second, WAIT);
    agent.wait_for("ready", WAIT);
}

#[test]
fn two_owners_joining_at_once_on_two_nodes_one_answers_and_the_other_is_told_full() {
    let (_redis, url) = redis();
    let (first, second) = two_nodes(&url);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let token = first.token.clone();
        let mut door = connect(&client_config(&first, &first, Some(&token)))
            .await
            .expect("the doorbell connects to node 1");
        for round in 0..20 {
            let room = RoomId::parse(&format!("RaceRoom{round}")).expect("room");
            door.sender()
                .send(ClientEvent::Join(room.clone()))
                .expect("send");
            assert!(matches!(next(&mut door).await, ServerEvent::Created(_)));
            let (on_first, on_second) = (
                client_config(&first, &first, None),
                client_config(&second, &first, None),
            );
            let (mut a, mut b) = tokio::try_join!(connect(&on_first), connect(&on_second))
                .expect("two owners connect");
            a.sender()
                .send(ClientEvent::Join(room.clone()))
                .expect("send");
            b.sender()
                .send(ClientEvent::Join(room.clone()))
                .expect("send");
            let (ea, eb) = tokio::join!(next(&mut a), next(&mut b));
            let joined = [&ea, &eb]
                .iter()
                .filter(|e| matches!(e, ServerEvent::Joined(_)))
                .count();
            let full = [&ea, &eb]
                .iter()
                .filter(|e| matches!(e, ServerEvent::Full(_)))
                .count();
            assert_eq!((joined, full), (1, 1), "round {round}: {ea:?} / {eb:?}");
            assert!(matches!(next(&mut door).await, ServerEvent::NewPeer(_)));
            door.sender()
                .send(ClientEvent::Bye(Some(room)))
                .expect("send");
            // The owner who answered hears the doorbell's bye, from whichever node.
            let answered = if matches!(ea, ServerEvent::Joined(_)) {
                &mut a
            } else {
                &mut b
            };
            assert!(matches!(next(answered).await, ServerEvent::Bye));
            a.close().await;
            b.close().await;
        }
    });
}

#[test]
fn a_page_on_another_node_asks_how_a_ring_stands_before_joining() {
    let (_redis, url) = redis();
    let (first, second) = two_nodes(&url);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let token = first.token.clone();
        let mut door = connect(&client_config(&first, &first, Some(&token)))
            .await
            .expect("the doorbell connects to node 1");
        let room = RoomId::parse("PrepareRoom").expect("room");
        let mut page = connect(&client_config(&second, &first, None))
            .await
            .expect("a page connects to node 2");
        let prepare = || ClientEvent::Prepare(room.clone());
        page.sender().send(prepare()).expect("send");
        assert!(
            matches!(next(&mut page).await, ServerEvent::Error(e) if e.code == ErrorCode::NoSuchRoom),
            "no ring yet"
        );
        door.sender()
            .send(ClientEvent::Join(room.clone()))
            .expect("send");
        assert!(matches!(next(&mut door).await, ServerEvent::Created(_)));
        page.sender().send(prepare()).expect("send");
        let servers = tokio::time::timeout(WAIT, page.recv()).await;
        assert!(
            matches!(servers, Ok(Some(ServerEvent::IceServers(_)))),
            "{servers:?}"
        );
        // Preparing joined nothing: the page then joins as the second member.
        page.sender()
            .send(ClientEvent::Join(room.clone()))
            .expect("send");
        assert!(matches!(next(&mut page).await, ServerEvent::Joined(_)));
        assert!(matches!(next(&mut door).await, ServerEvent::NewPeer(_)));
        let mut late = connect(&client_config(&second, &first, None))
            .await
            .expect("a second page connects to node 2");
        late.sender().send(prepare()).expect("send");
        assert!(matches!(next(&mut late).await, ServerEvent::Full(_)));
    });
}

/// A TCP forwarder standing in for the load balancer: each connection goes to the first node
/// that accepts it.
fn balancer(backends: Vec<SocketAddr>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Some(server) = backends.iter().find_map(|b| {
                std::net::TcpStream::connect_timeout(b, Duration::from_millis(300)).ok()
            }) else {
                continue;
            };
            let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            };
            if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
                pipe(client, s2);
                pipe(server, c2);
            }
        }
    });
    addr
}

#[test]
fn a_node_killed_while_ringing_ends_the_ring_with_bye_and_the_doorbell_rings_through_another_node()
{
    let (_redis, url) = redis();
    let (mut first, second) = two_nodes(&url);
    let front = balancer(vec![first.addr, second.addr]);
    let cert = first.cert_path();
    let mut agent = Agent::start(
        &[
            "--server",
            &format!("https://127.0.0.1:{}", front.port()),
            "--ca-cert",
            cert.to_str().expect("utf-8"),
            "--offer-timeout",
            "60s",
        ],
        &[("DOORBELL_TOKEN", &first.token)],
    );
    agent.wait_for("connected", WAIT);
    let link = agent.ring(WAIT);
    let room =
        RoomId::parse(link.rsplit("room=").next().expect("room in the link")).expect("room id");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut owner = runtime.block_on(async {
        let mut owner = connect(&client_config(&second, &first, None))
            .await
            .expect("the owner connects to node 2");
        owner
            .sender()
            .send(ClientEvent::Join(room.clone()))
            .expect("send");
        assert!(matches!(next(&mut owner).await, ServerEvent::Joined(_)));
        owner
    });
    agent.wait_for("new_peer", WAIT);

    // Node 1, which holds the doorbell's connection, dies without a word.
    first.proc.child.kill().expect("kill node 1");
    let _ = first.proc.child.wait();

    // The owner on node 2 hears the call end once node 1 is found dead, and hangs up as the
    // page does.
    runtime.block_on(async {
        assert!(matches!(next(&mut owner).await, ServerEvent::Bye));
        owner
            .sender()
            .send(ClientEvent::Bye(Some(room.clone())))
            .expect("send");
    });
    // The doorbell reports the end, reconnects through the balancer to node 2, and rings.
    let end = agent.wait_for("call_end", WAIT);
    assert_eq!(end["reason"], "signaling_lost", "{end}");
    agent.wait_for("connected", WAIT);
    let again = agent.ring(WAIT);
    assert_ne!(again, link);
    // The dead node's room is gone: its link says the call ended (the doorbell's reconnect and
    // second ring took longer than the owner's bye).
    runtime.block_on(async {
        let mut late = connect(&client_config(&second, &first, None))
            .await
            .expect("connect");
        late.sender().send(ClientEvent::Join(room)).expect("send");
        match next(&mut late).await {
            ServerEvent::Error(e) => assert_eq!(e.code.as_str(), "no_such_room"),
            other => panic!("{other:?}"),
        }
    });
}

fn server_error(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = support::doorbell_command()
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--open-rooms",
            "--data-dir",
        ])
        .arg(dir.path())
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "{args:?} started");
    let text: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect();
    text.join("\n")
}

#[test]
fn an_unreachable_or_malformed_redis_is_a_clear_start_error_without_the_password() {
    let closed = free_port();
    let err = server_error(&["--redis", &format!("redis://:hunter2@127.0.0.1:{closed}")]);
    assert!(err.contains("cannot reach Redis"), "{err}");
    assert!(err.contains("--redis"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let err = server_error(&["--redis", "http://127.0.0.1:6379"]);
    assert!(err.contains("redis://HOST:6379"), "{err}");
}

#[test]
fn the_history_node_keeps_the_rings_every_node_handles_and_the_handling_node_counts_them() {
    let (_redis, url) = redis();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let (first, second) = {
        let first =
            Server::start_with(&["--redis", &url, "--metrics-listen", &metrics.to_string()]);
        let cert = first.cert_path();
        let key = first.data_dir.path().join("key.pem");
        let second = Server::start_with(&[
            "--redis",
            &url,
            "--history-node",
            "--cert",
            cert.to_str().expect("utf-8"),
            "--key",
            key.to_str().expect("utf-8"),
        ]);
        (first, second)
    };
    let answered = RoomId::parse("HistoryAnswered1").expect("room");
    let missed = RoomId::parse("HistoryMissed1").expect("room");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        // Everything happens on node 1, which keeps no history itself.
        let token = first.token.clone();
        let mut door = connect(&client_config(&first, &first, Some(&token)))
            .await
            .expect("connect");
        let mut owner = connect(&client_config(&first, &first, None))
            .await
            .expect("connect");
        door.sender()
            .send(ClientEvent::Join(answered.clone()))
            .expect("send");
        assert!(matches!(next(&mut door).await, ServerEvent::Created(_)));
        owner
            .sender()
            .send(ClientEvent::Join(answered.clone()))
            .expect("send");
        assert!(matches!(next(&mut owner).await, ServerEvent::Joined(_)));
        owner
            .sender()
            .send(ClientEvent::Bye(Some(answered.clone())))
            .expect("send");
        assert!(matches!(next(&mut door).await, ServerEvent::NewPeer(_)));
        assert!(matches!(next(&mut door).await, ServerEvent::Bye));
        door.sender()
            .send(ClientEvent::Bye(Some(answered.clone())))
            .expect("send");
        door.sender()
            .send(ClientEvent::Join(missed.clone()))
            .expect("send");
        assert!(matches!(next(&mut door).await, ServerEvent::Created(_)));
        door.sender()
            .send(ClientEvent::Bye(Some(missed.clone())))
            .expect("send");
    });
    let store =
        doorbell_store::Store::open(second.data_dir.path()).expect("the history node's store");
    // Ended: missed, or answered with the call's length known.
    let ended = |room: &RoomId| {
        store.ring(room.as_str()).expect("read").filter(|entry| {
            entry.outcome == doorbell_store::Outcome::Missed || entry.duration.is_some()
        })
    };
    let deadline = std::time::Instant::now() + WAIT;
    while (ended(&answered).is_none() || ended(&missed).is_none())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let entry = ended(&answered).expect("the answered ring is in the history node's store");
    assert_eq!(entry.outcome, doorbell_store::Outcome::Answered);
    let entry = ended(&missed).expect("the missed ring is in the history node's store");
    assert_eq!(entry.outcome, doorbell_store::Outcome::Missed);
    assert!(
        !first.data_dir.path().join("doorbell.sqlite3").exists(),
        "the other node keeps no history of its own"
    );
    // The node that handled both rings counted them.
    let (_, text) = support::scrape_metrics(metrics);
    for line in [
        "doorbell_rings_total 2",
        "doorbell_calls_answered_total 1",
        "doorbell_calls_missed_total 1",
        "doorbell_rooms 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

/// SIGTERM to a node, as systemd's stop does.
fn terminate(server: &mut Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.proc.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let _ = server.proc.child.wait();
}

#[test]
fn a_node_stopped_normally_tells_its_members_peers_on_other_nodes_bye_without_waiting_for_liveness()
{
    let (_redis, url) = redis();
    let (mut first, second) = two_nodes(&url);
    let room = RoomId::parse("StoppedNodeRoom").expect("room");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let token = first.token.clone();
        let mut door = connect(&client_config(&first, &first, Some(&token)))
            .await
            .expect("connect");
        door.sender()
            .send(ClientEvent::Join(room.clone()))
            .expect("send");
        assert!(matches!(next(&mut door).await, ServerEvent::Created(_)));
        let mut owner = connect(&client_config(&second, &first, None))
            .await
            .expect("connect");
        owner
            .sender()
            .send(ClientEvent::Join(room.clone()))
            .expect("send");
        assert!(matches!(next(&mut owner).await, ServerEvent::Joined(_)));
        assert!(matches!(next(&mut door).await, ServerEvent::NewPeer(_)));
        let stopped = std::time::Instant::now();
        terminate(&mut first);
        assert!(matches!(next(&mut owner).await, ServerEvent::Bye));
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "told by the stopping node, not found dead after its liveness lapsed"
        );
        assert!(matches!(next(&mut door).await, ServerEvent::Bye));
    });
}

#[test]
fn while_redis_is_down_joins_are_refused_as_unavailable_and_work_again_when_it_returns() {
    let (mut redis_proc, url) = redis();
    let port = url.rsplit(':').next().expect("port").to_owned();
    let (first, _second) = two_nodes(&url);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let token = first.token.clone();
    let mut door = runtime.block_on(async {
        connect(&client_config(&first, &first, Some(&token)))
            .await
            .expect("connect")
    });
    redis_proc.child.kill().expect("kill redis");
    let _ = redis_proc.child.wait();
    runtime.block_on(async {
        door.sender()
            .send(ClientEvent::Join(RoomId::parse("WhileDown").expect("room")))
            .expect("send");
        match next(&mut door).await {
            ServerEvent::Error(e) => assert_eq!(e.code.as_str(), "unavailable", "{e:?}"),
            other => panic!("{other:?}"),
        }
    });
    let back = Command::new("redis-server")
        .args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("restart redis-server");
    let _back = Proc {
        child: back,
        name: "redis".into(),
    };
    wait_for_port(
        format!("127.0.0.1:{port}").parse().expect("addr"),
        Duration::from_secs(10),
    );
    runtime.block_on(async {
        // The node reconnects by itself; the first join after Redis is back succeeds.
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            door.sender()
                .send(ClientEvent::Join(
                    RoomId::parse("AfterReturn").expect("room"),
                ))
                .expect("send");
            match next(&mut door).await {
                ServerEvent::Created(_) => break,
                ServerEvent::Error(e) if e.code.as_str() == "unavailable" => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "Redis never came back"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => panic!("{other:?}"),
            }
        }
    });
}

/// A `redis-server` on `port` keeping its data in `dir` (every write on disk before it answers).
fn durable_redis(port: &str, dir: &std::path::Path) -> Proc {
    let child = Command::new("redis-server")
        .args(["--port", port, "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    wait_for_port(
        format!("127.0.0.1:{port}").parse().expect("addr"),
        Duration::from_secs(10),
    );
    Proc {
        child,
        name: "redis".into(),
    }
}

#[test]
fn a_connection_that_closes_while_redis_is_down_leaves_its_room_once_redis_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().to_string();
    let mut redis_proc = durable_redis(&port, dir.path());
    let url = format!("redis://127.0.0.1:{port}");
    let (first, second) = two_nodes(&url);
    let room = RoomId::parse("LeftWhileDown").expect("room");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let token = first.token.clone();
        let mut door = connect(&client_config(&first, &first, Some(&token)))
            .await
            .expect("connect");
        door.sender()
            .send(ClientEvent::Join(room.clone()))
            .expect("send");
        assert!(matches!(next(&mut door).await, ServerEvent::Created(_)));
        redis_proc.child.kill().expect("kill redis");
        let _ = redis_proc.child.wait();
        // The doorbell goes away while node 1 cannot tell Redis.
        door.close().await;
    });
    let _back = durable_redis(&port, dir.path());
    runtime.block_on(async {
        let mut visitor = connect(&client_config(&second, &first, None))
            .await
            .expect("connect");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            visitor
                .sender()
                .send(ClientEvent::Join(room.clone()))
                .expect("send");
            match next(&mut visitor).await {
                ServerEvent::Error(e) if e.code.as_str() == "no_such_room" => break,
                ServerEvent::Error(e) if e.code.as_str() == "unavailable" => {}
                ServerEvent::Joined(_) => {
                    // The room still held the doorbell: leave and look again.
                    visitor
                        .sender()
                        .send(ClientEvent::Bye(Some(room.clone())))
                        .expect("send");
                }
                // The doorbell's departure arrived while the visitor was in the room.
                ServerEvent::Bye => {}
                other => panic!("{other:?}"),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the closed connection never left its room"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
