//! Several instances behind HAProxy (config/examples/haproxy.cfg as it is) sharing a Redis,
//! driven by the official Python and TypeScript SDK clients on both transports. Needs
//! `make deps-cluster` (haproxy, redis-server), `make deps-python` and `make deps-ts`.

use std::collections::{BTreeMap, BTreeSet};

use http::StatusCode;
use mcpgw_tests::cluster::{ClientSession, ClientSteps, Cluster, TempDir, python_sessions, ts_sessions};
use mcpgw_tests::{Http, POST_HEADERS, SseReader, eventually, initialize, notification, request, run};
use serde_json::json;

/// One runtime thread per instance: three of them share the machine with the clients.
const CONFIG: &str = "[server]\nworker_threads = 1\n";

/// A counter of an instance's `/metrics`, summed over the series whose labels contain all
/// of `labels`.
async fn counter(base: &str, name: &str, labels: &[&str]) -> u64 {
    let text = Http::new().send(http::Method::GET, &format!("{base}/metrics"), &[], "").await.text();
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_a_session_is_served_by_the_instance_that_minted_it() {
    let cluster = Cluster::start(3, CONFIG);
    let (python, ts) = tokio::join!(python_sessions(&cluster.base, 4, 5), ts_sessions(&cluster.base, 4, 5));
    let sessions: Vec<ClientSession> = python.into_iter().chain(ts).collect();
    assert_eq!(sessions.len(), 16);

    let tags: BTreeSet<&str> = cluster.nodes.iter().map(|n| n.tag.as_str()).collect();
    let mut minted: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &sessions {
        let what = format!("{} {} {}", s.client, s.transport, s.session);
        assert_eq!(s.session.len(), 32, "{what}");
        let tag = &s.session[..4];
        assert!(tags.contains(tag), "{what}: minted by an instance of the cluster");
        *minted.entry(tag).or_default() += 1;
        assert!(s.statuses.iter().all(|&code| code < 400), "{what}: {:?}", s.statuses);
        let expected: Vec<String> = (0..5).map(|n| format!("{}-{n}", s.transport)).collect();
        assert_eq!(s.echoes, expected, "{what}");
    }
    // initialize and GET /sse carry no id: round robin spreads the sessions.
    assert_eq!(minted.len(), 3, "new sessions on every instance: {minted:?}");

    // A request for a session an instance does not hold is answered 404 there (or taken
    // over, later): none was, on any instance, so every request reached its session's
    // instance.
    for node in &cluster.nodes {
        let base = &node.gateway.as_ref().expect("running").base;
        assert_eq!(counter(base, "mcpgw_http_requests_total", &["status=\"404\""]).await, 0, "node {}", node.tag);
        let created = counter(base, "mcpgw_sessions_created_total", &[]).await as usize;
        assert_eq!(created, minted[node.tag.as_str()], "node {} created the sessions it minted", node.tag);
        assert_eq!(counter(base, "mcpgw_session_takeovers_total", &[]).await, 0, "node {}", node.tag);
    }
}

/// Takeovers counted by the instances still running.
async fn takeovers(cluster: &Cluster) -> u64 {
    let mut total = 0;
    for (_, gateway) in cluster.running() {
        total += counter(&gateway.base, "mcpgw_session_takeovers_total", &[]).await;
    }
    total
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_clients_next_call_after_the_holder_was_killed_carries_on_in_the_same_session() {
    let mut cluster = Cluster::start(3, CONFIG);
    let mut client = ClientSteps::ts("cluster-takeover.mjs", &[&cluster.base]);
    let session = client.next().await["session"].as_str().expect("a session id").to_owned();
    let holder = session[..4].to_owned();
    cluster.kill(&holder);
    client.go().await;
    let report = client.next().await;

    assert_eq!(report["session"], session.as_str(), "the session id never changed");
    assert_eq!(report["echoes"], json!(["before", "after"]));
    let statuses = report["statuses"].as_array().expect("statuses");
    assert!(statuses.iter().all(|s| s[1].as_u64() < Some(400)), "{statuses:?}");
    // The standalone stream broke when its instance died; nothing else went wrong.
    let errors = report["errors"].as_array().expect("errors");
    assert!(errors.iter().all(|e| e.as_str().is_some_and(|e| e.contains("SSE stream disconnected"))), "{errors:?}");
    assert_eq!(takeovers(&cluster).await, 1, "taken over once");
    let owner = cluster.redis.cli(&["HGET", &format!("mcpgw:s:{{{session}}}"), "owner"]);
    assert!(!owner.is_empty() && !owner.starts_with(&holder), "a survivor holds it: {owner:?}");
    client.go().await;
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

/// A Streamable session opened through the load balancer with raw requests: its id, and
/// an echo call in it.
struct RawSession {
    http: Http,
    url: String,
    id: String,
}

impl RawSession {
    async fn open(cluster: &Cluster) -> Self {
        let (http, url) = (Http::new(), format!("{}/mcp", cluster.base));
        let reply = http.post(&url, &[], &initialize("2025-11-25")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let id = reply.header("mcp-session-id").expect("a session id").to_owned();
        let session = Self { http, url, id };
        let ack = session.post(&notification("notifications/initialized")).await;
        assert_eq!(ack.status, StatusCode::ACCEPTED);
        session
    }

    async fn post(&self, body: &serde_json::Value) -> mcpgw_tests::Reply {
        let headers = [("mcp-session-id", self.id.as_str()), ("mcp-protocol-version", "2025-11-25")];
        self.http.post(&self.url, &headers, body).await
    }

    /// An echo call; its reply's status.
    async fn echo(&self, id: i64) -> StatusCode {
        self.echo_reply(id).await.status
    }

    /// An echo call; its reply.
    async fn echo_reply(&self, id: i64) -> mcpgw_tests::Reply {
        let reply = self.post(&request(id, "tools/call", json!({"name": "echo", "arguments": {"text": "x"}}))).await;
        if reply.status == StatusCode::OK {
            assert_eq!(reply.messages()[0]["result"]["content"][0]["text"], "x", "{}", reply.text());
        }
        reply
    }
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
    let http = Http::new();
    let sse = format!("{}/sse", cluster.base);
    let accept = ("accept", "text/event-stream");
    let mut stream = SseReader::new(http.open(http::Method::GET, &sse, &[accept], "").await);
    let endpoint = stream.next().await.expect("the endpoint event");
    let last = endpoint.id.clone().expect("the endpoint event has an id");
    let post_url = format!("{}{}", cluster.base, endpoint.data);
    let session = post_url.split("sessionId=").nth(1).expect("a sessionId").to_owned();
    let post = |body: serde_json::Value| {
        let (http, url) = (&http, post_url.clone());
        async move { http.send(http::Method::POST, &url, &[("content-type", "application/json")], body.to_string()).await }
    };
    assert_eq!(post(initialize("2024-11-05")).await.status, StatusCode::ACCEPTED);
    assert_eq!(stream.next_message().await["id"], 0);
    assert_eq!(post(notification("notifications/initialized")).await.status, StatusCode::ACCEPTED);

    cluster.kill(&session[..4]);
    // What an EventSource does when its stream drops: the same URL, with the last event id
    // (here the client lost the answer to initialize: it saw only the endpoint event).
    let mut resumed = SseReader::new(http.open(http::Method::GET, &sse, &[accept, ("last-event-id", &last)], "").await);
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
    let tags: Vec<String> = cluster.nodes.iter().map(|n| n.tag.clone()).collect();
    for tag in &tags {
        assert!(cluster.terminate(tag).success());
        cluster.wait_for_haproxy_count(&format!("mcpgw/{tag} is DOWN"), 1);
        cluster.restart(tag);
        cluster.wait_for_haproxy_count(&format!("mcpgw/{tag} is UP"), 1);
    }
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

/// The events of an SSE stream, read until `count` of them carried a message.
async fn read_messages(stream: &mut SseReader, count: usize) -> Vec<(String, serde_json::Value)> {
    let mut got = Vec::new();
    while got.len() < count {
        let event = stream.next().await.expect("the stream goes on");
        if event.data.is_empty() {
            continue; // a priming event
        }
        let id = event.id.clone().expect("every message has an event id");
        got.push((id, serde_json::from_str(&event.data).expect("JSON")));
    }
    got
}

/// The number of an event id (`<prefix>-<stream>-<seq>`) and its stream.
fn seq_of(id: &str) -> (u32, u64) {
    let mut parts = id.rsplitn(3, '-');
    let seq = parts.next().and_then(|s| s.parse().ok()).expect("a seq");
    let stream = parts.next().and_then(|s| s.parse().ok()).expect("a stream");
    (stream, seq)
}

/// Event ids strictly increasing, on one stream.
fn assert_increasing(ids: &[&str]) {
    let seqs: Vec<(u32, u64)> = ids.iter().map(|id| seq_of(id)).collect();
    assert!(seqs.windows(2).all(|w| w[0].0 == w[1].0 && w[0].1 < w[1].1), "strictly increasing on one stream: {ids:?}");
}

/// A `sleep` call with a progress token.
fn sleep_call(id: i64, ms: u64, steps: u32) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"ms": ms, "steps": steps}, "_meta": {"progressToken": "p"}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_stream_resumed_on_another_instance_gets_the_events_it_missed_once_in_order() {
    let mut cluster = Cluster::start(3, CONFIG);
    let session = RawSession::open(&cluster).await;
    let get_headers = |last: Option<&str>| -> Vec<(String, String)> {
        let mut h = vec![
            ("accept".to_owned(), "text/event-stream".to_owned()),
            ("mcp-session-id".to_owned(), session.id.clone()),
            ("mcp-protocol-version".to_owned(), "2025-11-25".to_owned()),
        ];
        if let Some(last) = last {
            h.push(("last-event-id".to_owned(), last.to_owned()));
        }
        h
    };
    let open = |headers: Vec<(String, String)>| {
        let (http, url) = (&session.http, &session.url);
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            SseReader::new(http.open(http::Method::GET, url, &headers, "").await)
        }
    };
    let mut stream = open(get_headers(None)).await;
    assert_eq!(stream.status, StatusCode::OK);
    // A client that takes only JSON gets a call's progress on its standalone stream.
    let json_only = [
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("mcp-session-id", session.id.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let reply =
        session.http.send(http::Method::POST, &session.url, &json_only, sleep_call(1, 100, 5).to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["result"]["content"][0]["text"], "slept 100 ms");

    // The client reads two of the five, then its instance dies.
    let seen = read_messages(&mut stream, 2).await;
    for (n, (_, message)) in seen.iter().enumerate() {
        assert_eq!(message["method"], "notifications/progress");
        assert_eq!(message["params"]["progress"].as_f64(), Some(n as f64 + 1.0));
    }
    let journal = format!("mcpgw:s:{{{}}}:j", session.id);
    assert_eq!(cluster.redis.cli(&["XLEN", &journal]), "5", "every progress is in the store");
    drop(stream);
    cluster.kill(&session.id[..4]);

    // What an SDK does: GET again with the last id it saw, through the load balancer.
    let last = seen[1].0.clone();
    let mut resumed = open(get_headers(Some(&last))).await;
    assert_eq!(resumed.status, StatusCode::OK);
    let missed = read_messages(&mut resumed, 3).await;
    let progress: Vec<Option<f64>> = missed.iter().map(|(_, m)| m["params"]["progress"].as_f64()).collect();
    assert_eq!(progress, [Some(3.0), Some(4.0), Some(5.0)], "each missed event once, in order");
    assert_eq!(takeovers(&cluster).await, 1);

    // Carrying on: the next call's progress comes after them on the same stream.
    let reply = session.http.send(http::Method::POST, &session.url, &json_only, sleep_call(2, 10, 1).to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "the same session: {}", reply.text());
    let next = read_messages(&mut resumed, 1).await;
    assert_eq!(next[0].1["params"]["progress"].as_f64(), Some(1.0));
    let ids: Vec<&str> = seen.iter().chain(&missed).chain(&next).map(|(id, _)| id.as_str()).collect();
    assert_increasing(&ids);
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no event twice: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_running_on_a_killed_holder_ends_with_the_progress_it_missed_then_a_definite_error() {
    let mut cluster = Cluster::start(3, CONFIG);
    let session = RawSession::open(&cluster).await;
    let mut headers = POST_HEADERS.to_vec();
    headers.extend([("mcp-session-id", session.id.as_str()), ("mcp-protocol-version", "2025-11-25")]);
    // Sixteen steps of half a second: the holder dies long before the call would end.
    let body = sleep_call(7, 8000, 16).to_string();
    let mut call = SseReader::new(session.http.open(http::Method::POST, &session.url, &headers, body).await);
    let seen = read_messages(&mut call, 2).await;
    let stream = seq_of(&seen[0].0).0;
    let (journal, pending) = (format!("mcpgw:s:{{{}}}:j", session.id), format!("mcpgw:s:{{{}}}:p", session.id));
    assert_eq!(cluster.redis.cli(&["HGET", &pending, "7"]), stream.to_string(), "the call is pending in the store");
    // A third progress is in the store, and on its way to a client that no longer reads.
    eventually("a third progress journaled", || async { cluster.redis.cli(&["XLEN", &journal]) == "3" }).await;
    drop(call);
    cluster.kill(&session.id[..4]);

    // The client resumes the call's stream from the last event it saw (SEP-1699).
    let last = seen[1].0.as_str();
    let get = [
        ("accept", "text/event-stream"),
        ("mcp-session-id", session.id.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
        ("last-event-id", last),
    ];
    let mut resumed = SseReader::new(session.http.open(http::Method::GET, &session.url, &get, "").await);
    assert_eq!(resumed.status, StatusCode::OK);
    let mut after = Vec::new();
    while let Some(event) = resumed.next().await {
        after.push((
            event.id.clone().expect("an id"),
            serde_json::from_str::<serde_json::Value>(&event.data).expect("JSON"),
        ));
    }
    let (answer, progress) = after.split_last().expect("the call's answer");
    let steps: Vec<Option<f64>> = progress.iter().map(|(_, m)| m["params"]["progress"].as_f64()).collect();
    assert!(!steps.is_empty(), "the progress it missed: {after:?}");
    let expected: Vec<Option<f64>> = (3..3 + steps.len()).map(|n| Some(n as f64)).collect();
    assert_eq!(steps, expected, "each missed progress once, in order");
    assert_eq!(answer.1["id"], 7, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], -32603, "a definite error: {}", answer.1);
    assert!(answer.1["error"]["message"].as_str().is_some_and(|m| m.contains("may or may not have run")));
    let ids: Vec<&str> = seen.iter().chain(&after).map(|(id, _)| id.as_str()).collect();
    assert_increasing(&ids);
    assert_eq!(cluster.redis.cli(&["HLEN", &pending]), "0", "answered: no longer pending");

    // The session carries on, and the call was not run again.
    assert_eq!(session.echo(8).await, StatusCode::OK);
    assert_eq!(takeovers(&cluster).await, 1);
    let mut echoed = 0;
    for (tag, gateway) in cluster.running() {
        let slept = counter(&gateway.base, "mcpgw_tool_calls_total", &["tool=\"sleep\""]).await;
        assert_eq!(slept, 0, "node {tag} ran no sleep");
        echoed += counter(&gateway.base, "mcpgw_tool_calls_total", &["tool=\"echo\""]).await;
    }
    assert_eq!(echoed, 1, "tool calls are counted by name");
}

/// The invariants on all a client received, from its tapped exchanges (see
/// `tests/python/clients/cluster_lost_call.py`): per stream, event ids strictly increasing
/// with no duplicates, across reconnections too; and every request it sent answered exactly
/// once, by a result or an error.
fn assert_client_invariants(exchanges: &[serde_json::Value]) {
    let mut streams: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let (mut sent, mut answered) = (Vec::new(), Vec::new());
    for exchange in exchanges {
        sent.extend(exchange["sent"].as_array().expect("sent").iter().map(|id| id.to_string()));
        let mut messages: Vec<&serde_json::Value> = Vec::new();
        for event in exchange["events"].as_array().expect("events") {
            if let Some(id) = event["id"].as_str() {
                let (stream, seq) = seq_of(id);
                streams.entry(stream).or_default().push(seq);
            }
            messages.push(&event["message"]);
        }
        match &exchange["json"] {
            serde_json::Value::Array(batch) => messages.extend(batch),
            serde_json::Value::Null => {}
            single => messages.push(single),
        }
        for m in messages {
            if m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some()) {
                answered.push(m["id"].to_string());
            }
        }
    }
    for (stream, seqs) in &streams {
        // A priming event repeats no message: it may share its number with the last one
        // before it, so only messages' numbers must strictly increase.
        let mut sorted = seqs.clone();
        sorted.dedup();
        assert!(sorted.windows(2).all(|w| w[0] < w[1]), "stream {stream}: ids strictly increasing: {seqs:?}");
    }
    sent.sort();
    answered.sort();
    assert_eq!(sent, answered, "every request answered exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_clients_call_on_a_killed_holder_ends_with_a_definite_error_and_the_next_call_works() {
    let mut cluster = Cluster::start(3, CONFIG);
    let mut client = ClientSteps::python("cluster_lost_call.py", &[&cluster.base]);
    let session = client.next().await["session"].as_str().expect("a session id").to_owned();
    let journal = format!("mcpgw:s:{{{session}}}:j");
    eventually("a third progress journaled", || async {
        cluster.redis.cli(&["XLEN", &journal]).parse::<u32>().is_ok_and(|n| n >= 3)
    })
    .await;
    cluster.kill(&session[..4]);
    client.go().await;
    let report = client.next().await;

    assert_eq!(report["session"], session.as_str(), "the session id never changed");
    assert_eq!(report["sent_session_ids"], json!([session]), "no second session");
    assert_eq!(report["echoes"], json!(["before", "after"]));
    let outcome = &report["outcome"];
    assert_eq!(outcome["error"]["code"], -32603, "a definite error for the lost call: {outcome}");
    let progress: Vec<f64> =
        report["progress"].as_array().expect("progress").iter().filter_map(|p| p.as_f64()).collect();
    let expected: Vec<f64> = (1..=progress.len()).map(|n| n as f64).collect();
    assert!(progress.len() >= 3, "the progress journaled before the holder died: {progress:?}");
    assert_eq!(progress, expected, "each progress once, in order");
    let exchanges = report["exchanges"].as_array().expect("exchanges");
    assert!(
        exchanges.iter().any(|e| e["method"] == "GET" && e["last_event_id"].is_string() && e["status"] == 200),
        "the client resumed with Last-Event-ID: {exchanges:?}"
    );
    assert_client_invariants(exchanges);
    assert_eq!(takeovers(&cluster).await, 1, "taken over once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_call_running_on_a_killed_holder_ends_with_a_definite_error_on_the_reconnected_stream() {
    let mut cluster = Cluster::start(3, CONFIG);
    let http = Http::new();
    let sse = format!("{}/sse", cluster.base);
    let accept = ("accept", "text/event-stream");
    let mut stream = SseReader::new(http.open(http::Method::GET, &sse, &[accept], "").await);
    let endpoint = stream.next().await.expect("the endpoint event");
    let post_url = format!("{}{}", cluster.base, endpoint.data);
    let session = post_url.split("sessionId=").nth(1).expect("a sessionId").to_owned();
    let post = |body: serde_json::Value| {
        let (http, url) = (&http, post_url.clone());
        async move { http.send(http::Method::POST, &url, &[("content-type", "application/json")], body.to_string()).await }
    };
    assert_eq!(post(initialize("2024-11-05")).await.status, StatusCode::ACCEPTED);
    assert_eq!(stream.next_message().await["id"], 0);
    assert_eq!(post(notification("notifications/initialized")).await.status, StatusCode::ACCEPTED);
    // Acknowledged once the call is pending in the store.
    assert_eq!(post(sleep_call(5, 8000, 16)).await.status, StatusCode::ACCEPTED);
    let pending = format!("mcpgw:s:{{{session}}}:p");
    assert_eq!(cluster.redis.cli(&["HGET", &pending, "5"]), "0", "pending, its answer due on the event stream");
    let seen = read_messages(&mut stream, 2).await;
    let journal = format!("mcpgw:s:{{{session}}}:j");
    // The answer to initialize and three progress notifications.
    eventually("a third progress journaled", || async { cluster.redis.cli(&["XLEN", &journal]) == "4" }).await;
    drop(stream);
    cluster.kill(&session[..4]);

    let last = seen[1].0.as_str();
    let mut resumed = SseReader::new(http.open(http::Method::GET, &sse, &[accept, ("last-event-id", last)], "").await);
    assert_eq!(resumed.status, StatusCode::OK);
    assert_eq!(resumed.next().await.expect("the endpoint event again").event, "endpoint");
    let mut after = Vec::new();
    loop {
        let (id, message) = read_messages(&mut resumed, 1).await.remove(0);
        let done = message.get("id").is_some();
        after.push((id, message));
        if done {
            break;
        }
    }
    let (answer, progress) = after.split_last().expect("the call's answer");
    let steps: Vec<Option<f64>> = progress.iter().map(|(_, m)| m["params"]["progress"].as_f64()).collect();
    let expected: Vec<Option<f64>> = (3..3 + steps.len()).map(|n| Some(n as f64)).collect();
    assert!(!steps.is_empty() && steps == expected, "each missed progress once, in order: {after:?}");
    assert_eq!((answer.1["id"].as_i64(), answer.1["error"]["code"].as_i64()), (Some(5), Some(-32603)), "{}", answer.1);
    let ids: Vec<&str> = seen.iter().chain(&after).map(|(id, _)| id.as_str()).collect();
    assert_increasing(&ids);

    let echo = request(6, "tools/call", json!({"name": "echo", "arguments": {"text": "next"}}));
    assert_eq!(post(echo).await.status, StatusCode::ACCEPTED);
    let reply = resumed.next_message().await;
    assert_eq!(reply["result"]["content"][0]["text"], "next", "the next call works: {reply}");
    assert_eq!(cluster.redis.cli(&["HLEN", &pending]), "0", "nothing left pending");
    assert_eq!(takeovers(&cluster).await, 1);
}

impl RawSession {
    /// Its standalone stream, resumed after `last` if given.
    async fn standalone(&self, last: Option<&str>) -> SseReader {
        let mut headers = vec![
            ("accept", "text/event-stream"),
            ("mcp-session-id", self.id.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        headers.extend(last.map(|last| ("last-event-id", last)));
        let stream = SseReader::new(self.http.open(http::Method::GET, &self.url, &headers, "").await);
        assert_eq!(stream.status, StatusCode::OK);
        stream
    }

    /// A `sleep` call with `steps` progress notifications from a client that takes only
    /// JSON: they go to the standalone stream.
    async fn sleep_json_only(&self, id: i64, steps: u32) {
        let headers = [
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("mcp-session-id", self.id.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        let body = sleep_call(id, u64::from(steps) * 10, steps).to_string();
        let reply = self.http.send(http::Method::POST, &self.url, &headers, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert!(reply.json()["result"].is_object(), "{}", reply.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_append_only_store_nothing_acknowledged_is_lost_when_it_restarts() {
    let mut cluster = Cluster::start_on(mcpgw_tests::cluster::Redis::start_durable(), 3, CONFIG);
    let session = RawSession::open(&cluster).await;
    let mut stream = session.standalone(None).await;
    session.sleep_json_only(1, 3).await;
    let seen = read_messages(&mut stream, 1).await;
    let journal = format!("mcpgw:s:{{{}}}:j", session.id);
    assert_eq!(cluster.redis.cli(&["XLEN", &journal]), "3");

    // The store dies (SIGKILL) and comes back with what its append-only file holds.
    cluster.redis.stop();
    cluster.redis.restart();
    assert_eq!(cluster.redis.cli(&["XLEN", &journal]), "3", "the journal survived");
    let echo = session.echo_reply(2).await;
    assert_eq!(echo.status, StatusCode::OK, "{} {:?}", echo.text(), echo.headers);
    // Events after the restart go to the store again.
    session.sleep_json_only(3, 2).await;
    eventually("the events after the restart journaled", || async { cluster.redis.cli(&["XLEN", &journal]) == "5" })
        .await;
    drop(stream);

    // The record survived too: a survivor takes the session over and replays the rest.
    cluster.kill(&session.id[..4]);
    let mut resumed = session.standalone(Some(&seen[0].0)).await;
    let missed = read_messages(&mut resumed, 4).await;
    let progress: Vec<Option<f64>> = missed.iter().map(|(_, m)| m["params"]["progress"].as_f64()).collect();
    assert_eq!(progress, [Some(2.0), Some(3.0), Some(1.0), Some(2.0)], "each event once, in order");
    let ids: Vec<&str> = seen.iter().chain(&missed).map(|(id, _)| id.as_str()).collect();
    assert_increasing(&ids);
    assert_eq!(session.echo(4).await, StatusCode::OK);
    assert_eq!(takeovers(&cluster).await, 1);
}

/// `MEMORY USAGE` of a key, in bytes.
fn memory_usage(redis: &mcpgw_tests::cluster::Redis, key: &str) -> u64 {
    redis.cli(&["MEMORY", "USAGE", key, "SAMPLES", "0"]).parse().unwrap_or_else(|_| panic!("no key {key}"))
}

/// What the store holds per session and per event (the figures in docs/deployment.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_holds_a_few_hundred_bytes_per_session_and_per_event() {
    let cluster = Cluster::start(1, CONFIG);
    let session = RawSession::open(&cluster).await;
    let record = format!("mcpgw:s:{{{}}}", session.id);
    let per_session = memory_usage(&cluster.redis, &record);
    let _stream = session.standalone(None).await;
    session.sleep_json_only(1, 10).await;
    let journal = format!("{record}:j");
    eventually("ten events journaled", || async { cluster.redis.cli(&["XLEN", &journal]) == "10" }).await;
    let ten = memory_usage(&cluster.redis, &journal);
    session.sleep_json_only(2, 100).await;
    eventually("110 events journaled", || async { cluster.redis.cli(&["XLEN", &journal]) == "110" }).await;
    let per_event = (memory_usage(&cluster.redis, &journal) - ten) / 100;
    // A call answered on an event stream is pending while it runs.
    let mut headers = POST_HEADERS.to_vec();
    headers.extend([("mcp-session-id", session.id.as_str()), ("mcp-protocol-version", "2025-11-25")]);
    let body = sleep_call(3, 2000, 2).to_string();
    let mut call = SseReader::new(session.http.open(http::Method::POST, &session.url, &headers, body).await);
    read_messages(&mut call, 1).await;
    let pending = memory_usage(&cluster.redis, &format!("{record}:p"));
    eprintln!(
        "store: {per_session} bytes per session record, {ten} bytes for a journal of 10 events, {per_event} bytes \
         per further event (a progress notification of about 125 bytes), {pending} bytes for one call pending"
    );
    assert!(pending < 512, "{pending}");
    assert!(per_session < 4096, "a record is small: {per_session}");
    assert!(per_event < 512, "an event costs its message and a little: {per_event}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_be_answered_as_json_on_a_killed_holder_fails_at_once() {
    let mut cluster = Cluster::start(3, CONFIG);
    let session = std::sync::Arc::new(RawSession::open(&cluster).await);
    let holder = session.id[..4].to_owned();
    let base = cluster.node(&holder).base.clone();
    // No progress token: nothing comes before the answer, so it would be plain JSON.
    let call = {
        let session = session.clone();
        tokio::spawn(async move {
            let mut headers = POST_HEADERS.to_vec();
            headers.extend([("mcp-session-id", session.id.as_str()), ("mcp-protocol-version", "2025-11-25")]);
            let body = request(1, "tools/call", json!({"name": "sleep", "arguments": {"ms": 8000}})).to_string();
            session.http.try_open(http::Method::POST, &session.url, &headers, body).await.map(|r| r.status())
        })
    };
    eventually("the call reached its instance", || async {
        counter(&base, "mcpgw_messages_total", &["method=\"tools/call\""]).await == 1
    })
    .await;
    cluster.kill(&holder);
    // HAProxy answers 502, or closes the client's connection without an answer (as the
    // instance's end reached it: a reset, or a close): either way the client's HTTP stack
    // fails the call at once, never a hang (nor a second run: it is not pending anywhere).
    let outcome = call.await.expect("the call's task");
    assert!(matches!(outcome, Err(_) | Ok(StatusCode::BAD_GATEWAY)), "no answer: {outcome:?}");
    assert_eq!(cluster.redis.cli(&["EXISTS", &format!("mcpgw:s:{{{}}}:p", session.id)]), "0", "nothing pending");
    assert_eq!(session.echo(2).await, StatusCode::OK, "the session carries on");
}

/// The event numbers (`sq`) in a session's journal, as `redis-cli XRANGE` prints them.
fn journaled_seqs(redis: &mcpgw_tests::cluster::Redis, session: &str) -> BTreeSet<u64> {
    let out = redis.cli(&["XRANGE", &format!("mcpgw:s:{{{session}}}:j"), "-", "+"]);
    let lines: Vec<&str> = out.lines().collect();
    lines.windows(2).filter(|w| w[0] == "sq").filter_map(|w| w[1].parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_woken_after_its_session_was_taken_over_writes_no_event_the_store_does_not_have() {
    let cluster = Cluster::start(3, CONFIG);
    let session = RawSession::open(&cluster).await;
    let holder = session.id[..4].to_owned();
    let mut headers = POST_HEADERS.to_vec();
    headers.extend([("mcp-session-id", session.id.as_str()), ("mcp-protocol-version", "2025-11-25")]);
    let body = sleep_call(7, 8000, 16).to_string();
    let mut call = SseReader::new(session.http.open(http::Method::POST, &session.url, &headers, body).await);
    let mut seen = read_messages(&mut call, 2).await;

    cluster.node(&holder).signal("STOP");
    cluster.wait_for_haproxy(&format!("mcpgw/{holder} is DOWN"));
    assert_eq!(session.echo(8).await, StatusCode::OK, "taken over while its holder is paused");
    let journal = format!("mcpgw:s:{{{}}}:j", session.id);
    let after_claim = cluster.redis.cli(&["XLEN", &journal]);

    // Woken, the old holder's sleep goes on and sends progress: none of it reaches the
    // store, and its client gets nothing the store does not have; the stream ends.
    cluster.node(&holder).signal("CONT");
    while let Some(event) = call.next().await {
        if !event.data.is_empty() {
            seen.push((event.id.expect("an id"), serde_json::from_str(&event.data).expect("JSON")));
        }
    }
    cluster.node(&holder).wait_for_log("another instance holds this session now");
    assert_eq!(cluster.redis.cli(&["XLEN", &journal]), after_claim, "the old holder wrote nothing to the store");
    let stored = journaled_seqs(&cluster.redis, &session.id);
    for (id, message) in &seen {
        assert!(stored.contains(&seq_of(id).1), "{id} ({message}) was sent but is not in the store: {stored:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_clients_call_on_a_killed_holder_ends_with_a_definite_error_and_the_next_call_works() {
    let mut cluster = Cluster::start(3, CONFIG);
    let mut client = ClientSteps::ts("cluster-lost-call.mjs", &[&cluster.base]);
    let session = client.next().await["session"].as_str().expect("a session id").to_owned();
    let journal = format!("mcpgw:s:{{{session}}}:j");
    eventually("a third progress journaled", || async {
        cluster.redis.cli(&["XLEN", &journal]).parse::<u32>().is_ok_and(|n| n >= 3)
    })
    .await;
    cluster.kill(&session[..4]);
    client.go().await;
    let report = client.next().await;

    assert_eq!(report["session"], session.as_str(), "the session id never changed");
    assert_eq!(report["echoes"], json!(["before", "after"]));
    let outcome = &report["outcome"];
    assert_eq!(outcome["error"]["code"], -32603, "a definite error for the lost call: {outcome}");
    let progress: Vec<f64> =
        report["progress"].as_array().expect("progress").iter().filter_map(|p| p.as_f64()).collect();
    let expected: Vec<f64> = (1..=progress.len()).map(|n| n as f64).collect();
    assert!(progress.len() >= 3, "the progress journaled before the holder died: {progress:?}");
    assert_eq!(progress, expected, "each progress once, in order");
    let exchanges = report["exchanges"].as_array().expect("exchanges");
    assert!(
        exchanges.iter().any(|e| e["method"] == "GET" && e["last_event_id"].is_string() && e["status"] == 200),
        "the client resumed with Last-Event-ID: {exchanges:?}"
    );
    assert_client_invariants(exchanges);
    assert_eq!(takeovers(&cluster).await, 1, "taken over once");
}
