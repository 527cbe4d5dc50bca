//! Several instances behind HAProxy (config/examples/haproxy.cfg as it is) sharing a Redis,
//! driven by the official Python and TypeScript SDK clients on both transports. Needs
//! `make deps-cluster` (haproxy, redis-server), `make deps-python` and `make deps-ts`.

use http::StatusCode;
use mcpgw_tests::cluster::{
    ClientSession, ClientSteps, Cluster, Redis, TempDir, legacy_call_median, python_sessions, ts_sessions,
};
use mcpgw_tests::cluster_client::{
    CLOSED_STREAMS_CONFIG, RawLegacy, RawSession, assert_every_session_stayed_on_its_instance, counter,
    open_then_close_streams, takeovers,
};
use mcpgw_tests::{Http, Launch, eventually, initialize, notification, request, run};
use serde_json::json;

/// One runtime thread per instance: three of them share the machine with the clients.
const CONFIG: &str = "[server]\nworker_threads = 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_a_session_is_served_by_the_instance_that_minted_it() {
    let cluster = Cluster::start(3, CONFIG);
    let (python, ts) = tokio::join!(python_sessions(&cluster.base, 4, 5), ts_sessions(&cluster.base, 4, 5));
    let sessions: Vec<ClientSession> = python.into_iter().chain(ts).collect();
    assert_eq!(sessions.len(), 16);

    assert_every_session_stayed_on_its_instance(&cluster, &sessions, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_every_session_stays_on_its_instance_and_ends_with_it() {
    let mut cluster = Cluster::start_without_store(2, CONFIG);
    let (python, ts) = tokio::join!(python_sessions(&cluster.base, 2, 3), ts_sessions(&cluster.base, 2, 3));
    let sessions: Vec<ClientSession> = python.into_iter().chain(ts).collect();
    assert_eq!(sessions.len(), 8);
    assert_every_session_stayed_on_its_instance(&cluster, &sessions, 3).await;
    assert_eq!(cluster.redis.cli(&["DBSIZE"]), "0", "nothing in any store");

    // Nothing to take over from: the session ends with its instance, as on a single node,
    // and the client starts a new one on the instance left.
    let session = RawSession::open(&cluster).await;
    assert_eq!(session.echo(1).await, StatusCode::OK);
    let holder = session.id[..4].to_owned();
    cluster.kill(&holder);
    assert_eq!(session.echo(2).await, StatusCode::NOT_FOUND, "the session ended with {holder}");
    let again = RawSession::open(&cluster).await;
    assert_ne!(&again.id[..4], holder, "a new session on the instance left");
    assert_eq!(again.echo(3).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_call_after_the_holder_was_killed_carries_on_in_the_same_session() {
    let mut cluster = Cluster::start(3, CONFIG);
    let mut client = ClientSteps::python("cluster_takeover.py", &[&cluster.base]);
    let session = client.next().await["session"].as_str().expect("a session id").to_owned();
    let holder = session[..4].to_owned();
    let record = format!("mcpgw:s:{{{session}}}");
    let owner = cluster.redis.cli(&["HGET", &record, "owner"]);
    assert!(owner.starts_with(&format!("{holder}:")), "recorded by its creator: {owner:?}");
    assert_eq!(cluster.redis.cli(&["HGET", &record, "epoch"]), "0");
    cluster.kill(&holder);
    client.go().await;
    let report = client.next().await;

    assert_eq!(report["session"], session.as_str(), "the session id never changed");
    assert_eq!(report["sent_session_ids"], json!([session]), "no second session");
    assert_eq!(report["echoes"], json!(["before", "after"]));
    let statuses = report["statuses"].as_array().expect("statuses");
    assert!(statuses.iter().all(|s| s[1].as_u64() < Some(400)), "{statuses:?}");
    assert_eq!(takeovers(&cluster).await, 1, "taken over once");
    let owner = cluster.redis.cli(&["HGET", &record, "owner"]);
    assert!(!owner.is_empty() && !owner.starts_with(&holder), "a survivor holds it: {owner:?}");
    assert_eq!(cluster.redis.cli(&["HGET", &record, "epoch"]), "1");
    client.go().await;
}

/// The official TypeScript SDK 1.x client on `kind` (`streamable`, `sse`): a first echo, the
/// holder killed, a second echo in the same session on another instance. On legacy SSE the
/// SDK's EventSource reconnects by itself, with the `Last-Event-ID` the SDK would drop
/// supplied by the client script (docs/testing.md, "Known client bugs").
async fn typescript_client_carries_on_after_its_holder_was_killed(kind: &str) {
    let mut cluster = Cluster::start(3, CONFIG);
    let mut client = ClientSteps::ts("cluster-takeover.mjs", &[&cluster.base, kind]);
    let session = client.next().await["session"].as_str().expect("a session id").to_owned();
    let holder = session[..4].to_owned();
    cluster.kill(&holder);
    client.go().await;
    let report = client.next().await;

    assert_eq!(report["session"], session.as_str(), "the session id never changed");
    assert_eq!(report["echoes"], json!(["before", "after"]));
    let statuses = report["statuses"].as_array().expect("statuses");
    assert!(statuses.iter().all(|s| s[1].as_u64() < Some(400)), "{statuses:?}");
    // The event stream broke when its instance died (the standalone stream; on legacy SSE, the
    // session's stream, which the SDK's EventSource opened again by itself); nothing else
    // went wrong.
    let errors = report["errors"].as_array().expect("errors");
    let dropped = |e: &str| e.contains("SSE stream disconnected") || e.contains("SSE error: TypeError: terminated");
    assert!(errors.iter().all(|e| e.as_str().is_some_and(dropped)), "{errors:?}");
    assert_eq!(takeovers(&cluster).await, 1, "taken over once");
    let owner = cluster.redis.cli(&["HGET", &format!("mcpgw:s:{{{session}}}"), "owner"]);
    assert!(!owner.is_empty() && !owner.starts_with(&holder), "a survivor holds it: {owner:?}");
    client.go().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_clients_next_call_after_the_holder_was_killed_carries_on_in_the_same_session() {
    typescript_client_carries_on_after_its_holder_was_killed("streamable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_legacy_clients_eventsource_reconnect_carries_on_its_session_on_another_instance() {
    typescript_client_carries_on_after_its_holder_was_killed("sse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_takeover_only_the_sessions_credential_reaches_it_and_delete_ends_it() {
    let digest = |token: &str| mcpgw_transport::auth::digest_hex(token);
    let config = format!("{CONFIG}[auth]\ntoken_sha256 = [\"{}\", \"{}\"]\n", digest("alpha"), digest("beta"));
    let mut cluster = Cluster::start(3, &config);
    let url = format!("{}/mcp", cluster.base);
    let http = Http::new();
    let alpha = [("authorization", "Bearer alpha")];
    let reply = http.post(&url, &alpha, &initialize("2025-11-25")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let session = reply.header("mcp-session-id").expect("a session id").to_owned();
    let with = |token: &'static str| {
        [("authorization", token), ("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-11-25")]
    };
    let ack = http.post(&url, &with("Bearer alpha"), &notification("notifications/initialized")).await;
    assert_eq!(ack.status, StatusCode::ACCEPTED);
    let echo = |id: i64| request(id, "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}));
    assert_eq!(http.post(&url, &with("Bearer alpha"), &echo(1)).await.status, StatusCode::OK);

    cluster.kill(&session[..4]);
    let stranger = http.post(&url, &with("Bearer beta"), &echo(2)).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "another credential: {}", stranger.text());
    assert_eq!(takeovers(&cluster).await, 0, "a refused claim takes nothing over");
    let own = http.post(&url, &with("Bearer alpha"), &echo(3)).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());
    assert_eq!(own.messages()[0]["result"]["content"][0]["text"], "hi");
    assert_eq!(takeovers(&cluster).await, 1);
    let stranger = http.post(&url, &with("Bearer beta"), &echo(4)).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "nor on its new holder");

    let deleted = http.send(http::Method::DELETE, &url, &with("Bearer alpha"), "").await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(cluster.redis.cli(&["EXISTS", &format!("mcpgw:s:{{{session}}}")]), "0", "the record is gone");
    assert_eq!(http.post(&url, &with("Bearer alpha"), &echo(5)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_while_its_session_was_taken_over_lets_it_go_when_it_wakes() {
    let cluster = Cluster::start(3, CONFIG);
    let session = RawSession::open(&cluster).await;
    assert_eq!(session.echo(1).await, StatusCode::OK);
    let holder = session.id[..4].to_owned();
    let record = format!("mcpgw:s:{{{}}}", session.id);

    cluster.node(&holder).signal("STOP");
    cluster.wait_for_haproxy(&format!("mcpgw/{holder} is DOWN"));
    assert_eq!(session.echo(2).await, StatusCode::OK, "taken over while its holder is paused");
    let taker = cluster.redis.cli(&["HGET", &record, "owner"])[..4].to_owned();
    assert_ne!(taker, holder);
    assert_eq!(counter(&cluster.node(&taker).base, "mcpgw_session_takeovers_total", &["moved"]).await, 1);

    // Woken, the old holder finds the session taken (fencing) and ends its copy, without
    // touching the record.
    cluster.node(&holder).signal("CONT");
    cluster.node(&holder).wait_for_log("another instance holds this session now");
    let old = &cluster.node(&holder).base;
    assert_eq!(counter(old, "mcpgw_sessions_lost_total", &[]).await, 1);
    assert!(cluster.redis.cli(&["HGET", &record, "owner"]).starts_with(&taker), "the record is the taker's");
    assert_eq!(cluster.redis.cli(&["HGET", &record, "epoch"]), "1");

    // Back in the pool, it is the session's instance again (the id names it): it takes the
    // session back, and the other lets it go. One holder at a time, all along.
    cluster.wait_for_haproxy(&format!("mcpgw/{holder} is UP"));
    assert_eq!(session.echo(3).await, StatusCode::OK);
    assert!(cluster.redis.cli(&["HGET", &record, "owner"]).starts_with(&holder));
    assert_eq!(cluster.redis.cli(&["HGET", &record, "epoch"]), "2");
    cluster.node(&taker).wait_for_log("another instance holds this session now");
    assert_eq!(counter(&cluster.node(&taker).base, "mcpgw_sessions_lost_total", &[]).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_client_reconnecting_with_its_last_event_id_carries_on_on_another_instance() {
    let mut cluster = Cluster::start(3, CONFIG);
    let (legacy, mut stream) = RawLegacy::connect(&cluster.base).await;
    let last = legacy.endpoint_id.clone().expect("the endpoint event has an id");
    let session = legacy.id.clone();
    let post = |body: serde_json::Value| {
        let legacy = &legacy;
        async move { legacy.post(&body).await }
    };
    assert_eq!(post(initialize("2024-11-05")).await.status, StatusCode::ACCEPTED);
    assert_eq!(stream.next_message().await["id"], 0);
    assert_eq!(post(notification("notifications/initialized")).await.status, StatusCode::ACCEPTED);

    cluster.kill(&session[..4]);
    // What an EventSource does when its stream drops: the same URL, with the last event id
    // (here the client lost the answer to initialize: it saw only the endpoint event).
    let mut resumed = legacy.reconnect(&last).await;
    assert_eq!(resumed.status, StatusCode::OK);
    let endpoint = resumed.next().await.expect("the endpoint event again");
    assert_eq!(endpoint.event, "endpoint");
    assert!(endpoint.data.ends_with(&format!("sessionId={session}")), "the same session: {}", endpoint.data);
    let replayed = resumed.next_message().await;
    assert_eq!(replayed["id"], 0, "the answer it missed, from the store: {replayed}");
    let echo = request(1, "tools/call", json!({"name": "echo", "arguments": {"text": "again"}}));
    assert_eq!(post(echo).await.status, StatusCode::ACCEPTED);
    let reply = resumed.next_message().await;
    assert_eq!(reply["result"]["content"][0]["text"], "again", "once, then the next answer: {reply}");
    assert_eq!(takeovers(&cluster).await, 1);
}

/// What an instance's `/healthz` says of the store.
async fn store_state(base: &str) -> String {
    let health = Http::new().send(http::Method::GET, &format!("{base}/healthz"), &[], "").await.json();
    health["store"].as_str().unwrap_or("none").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_store_sessions_keep_working_where_they_are_and_a_takeover_is_refused_with_503() {
    let mut cluster = Cluster::start(3, CONFIG);
    let session = RawSession::open(&cluster).await;
    assert_eq!(session.echo(1).await, StatusCode::OK);
    let watcher = cluster.node("0001").base.clone();
    assert_eq!(store_state(&watcher).await, "up");
    assert_eq!(counter(&watcher, "mcpgw_store_up", &[]).await, 1);

    cluster.redis.stop();
    assert_eq!(session.echo(2).await, StatusCode::OK, "served by its holder, which needs no store for it");
    let fresh = RawSession::open(&cluster).await;
    assert_eq!(fresh.echo(1).await, StatusCode::OK, "a new session works on its instance");
    let creator = cluster.node(&fresh.id[..4]);
    creator.wait_for_log("could not record the session; no other instance can take it over");
    // The once-a-second check notices.
    eventually("the store reported down", || async { store_state(&watcher).await == "down" }).await;
    assert_eq!(counter(&watcher, "mcpgw_store_up", &[]).await, 0);

    cluster.kill(&session.id[..4]);
    let refused = session.echo_reply(3).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.text());
    assert!(refused.header("retry-after").is_some(), "the client is told to come back");
    let mut claim_errors = 0;
    for (_, gateway) in cluster.running() {
        claim_errors += counter(&gateway.base, "mcpgw_store_errors_total", &["operation=\"claim\""]).await;
    }
    assert_eq!(claim_errors, 1);

    // Back (empty: the records it held are gone), the instances use it again by themselves.
    cluster.redis.restart();
    let survivors: Vec<String> = cluster.running().map(|(_, g)| g.base.clone()).collect();
    for base in &survivors {
        eventually("the store reported up again", || async { store_state(base).await == "up" }).await;
    }
    let again = RawSession::open(&cluster).await;
    assert_eq!(again.echo(1).await, StatusCode::OK);
    assert_eq!(cluster.redis.cli(&["EXISTS", &format!("mcpgw:s:{{{}}}", again.id)]), "1", "recorded again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_outlives_a_restart_of_its_instance() {
    let mut cluster = Cluster::start(3, CONFIG);
    let session = RawSession::open(&cluster).await;
    assert_eq!(session.echo(1).await, StatusCode::OK);
    let holder = session.id[..4].to_owned();
    let record = format!("mcpgw:s:{{{}}}", session.id);

    // SIGTERM: the drain ends the session here but leaves its record for another instance.
    assert!(cluster.terminate(&holder).success());
    assert_eq!(session.echo(2).await, StatusCode::OK, "taken over while its instance is away");
    assert_eq!(cluster.redis.cli(&["HGET", &record, "epoch"]), "1");

    cluster.wait_for_haproxy(&format!("mcpgw/{holder} is DOWN"));
    cluster.restart(&holder);
    cluster.wait_for_haproxy(&format!("mcpgw/{holder} is UP"));
    assert_eq!(session.echo(3).await, StatusCode::OK, "back on its own instance");
    assert!(cluster.redis.cli(&["HGET", &record, "owner"]).starts_with(&holder));
    assert_eq!(cluster.redis.cli(&["HGET", &record, "epoch"]), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_refuses_to_start_with_a_node_tag_another_one_uses() {
    let cluster = Cluster::start(1, CONFIG);
    let dir = TempDir::new("duplicate-node");
    let path = dir.path().join("mcpgw.toml");
    let config = format!("{CONFIG}[cluster]\nnode = \"0001\"\nstore = \"{}\"\n", cluster.redis.url);
    std::fs::write(&path, config).expect("write the configuration");
    let path = path.display().to_string();
    let (code, out) =
        tokio::task::spawn_blocking(move || run(&["--config", &path, "--listen", "127.0.0.1:0"])).await.expect("ran");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("node tag 0001 is in use by another instance"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_instance_fails_no_call() {
    let mut cluster = Cluster::start(3, CONFIG);
    let mut sessions = Vec::new();
    for _ in 0..6 {
        sessions.push(std::sync::Arc::new(RawSession::open(&cluster).await));
    }
    let stop = stop_flag();
    let callers: Vec<_> = sessions
        .iter()
        .map(|session| {
            let (session, stop) = (session.clone(), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
                let mut id = 1;
                while !*stop.borrow() {
                    tick.tick().await;
                    statuses.push(session.echo(id).await);
                    id += 1;
                }
                statuses
            })
        })
        .collect();
    cluster.roll();
    stop.send_replace(true);
    for caller in callers {
        let statuses = caller.await.expect("caller");
        assert!(statuses.len() > 10, "calls went on throughout");
        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    }
}

/// A flag the test's callers watch to stop.
fn stop_flag() -> tokio::sync::watch::Sender<bool> {
    tokio::sync::watch::Sender::new(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_replies_pass_through_haproxy_as_they_are_sent() {
    let cluster = Cluster::start(3, CONFIG);
    // The same calls directly on an instance are the baseline. HAProxy used to hold each small
    // write of an event stream back for more (about 200 ms) until `option http-no-delay`.
    let direct = legacy_call_median(&cluster.node("0001").base, 20).await;
    let through = legacy_call_median(&cluster.base, 20).await;
    let slack = std::time::Duration::from_millis(100);
    assert!(through < direct + slack, "median {through:?} through HAProxy, {direct:?} directly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_its_client_closes_is_closed_on_the_instance_at_once() {
    // Without `option abortonclose` HAProxy held the instance's side open until the instance
    // next wrote, and under churn reached its connection limit with streams whose clients had
    // long gone (cluster_client::open_then_close_streams).
    let cluster = Cluster::start(3, CLOSED_STREAMS_CONFIG);
    open_then_close_streams(&cluster).await;
}

/// A draining instance keeps its listener open until client requests stop coming (the load
/// balancer has seen `/readyz` 503), but its health checks, which go on after that, do not
/// hold it: with a check on a new connection every 100 ms (HAProxy's come every second,
/// two load balancers' more often), it stops a second after its last client request, not at
/// its `drain_timeout_secs` (60 here; the harness gives it 20 s). Counting every accepted
/// connection kept it waiting the whole drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_instance_is_not_held_open_by_its_health_checks() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let redis = Redis::start();
    let config = format!("[server]\ndrain_timeout_secs = 60\n[cluster]\nnode = \"0001\"\nstore = {:?}\n", redis.url);
    let mut gateway = Launch::new(&config).start();
    let addr = gateway.base.trim_start_matches("http://").to_owned();
    let url = gateway.url("/mcp");
    let stopped = Arc::new(AtomicBool::new(false));
    // Checks answered 200 (ready) and 503 (draining).
    let (ready, draining) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let checker = {
        let (stopped, ready, draining) = (stopped.clone(), ready.clone(), draining.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_millis(100));
            // Bounded: 60 s of checks at most.
            for _ in 0..600 {
                every.tick().await;
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = tokio::net::TcpStream::connect(&addr).await else { continue };
                let check = b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n";
                let mut answer = Vec::new();
                if conn.write_all(check).await.is_err() || conn.read_to_end(&mut answer).await.is_err() {
                    continue;
                }
                if answer.starts_with(b"HTTP/1.1 200") {
                    ready.fetch_add(1, Ordering::SeqCst);
                } else if answer.starts_with(b"HTTP/1.1 503") {
                    draining.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    eventually("the checks reach the instance", || async { ready.load(Ordering::SeqCst) >= 2 }).await;
    // Client requests keep coming after the SIGTERM until a check has been answered 503: the
    // instance is draining, waiting for them to stop, with the checks coming meanwhile. Once
    // they stop it closes a second later; the checks alone must not hold it.
    let stopping = tokio::task::spawn_blocking(move || gateway.terminate());
    let http = Http::new();
    eventually("a check answered 503 while it drained", || async {
        let _ = http.try_open(http::Method::GET, &url, &[], "").await;
        draining.load(Ordering::SeqCst) >= 1
    })
    .await;
    let status = stopping.await.expect("the stop");
    stopped.store(true, Ordering::SeqCst);
    checker.await.expect("the checker");
    assert!(status.success(), "{status:?}");
}
