//! Three instances behind stock nginx (config/examples/nginx-cluster.conf as it is) sharing a
//! Redis, as tests/tests/cluster.rs proves HAProxy: every request of a session reaches the
//! instance that minted it with no takeover, and after `kill -9` of a holder the next call
//! continues the same session on the instance's one backup. Needs `make deps-cluster` (nginx,
//! redis-server), `make deps-python` and `make deps-ts`.

use std::collections::BTreeMap;

use http::StatusCode;
use mcpgw_tests::cluster::{Balancer, ClientSession, ClientSteps, Cluster, python_sessions, ts_sessions};
use mcpgw_tests::cluster_client::{
    CLOSED_STREAMS_CONFIG, RawLegacy, assert_every_session_stayed_on_its_instance, open_then_close_streams,
};
use mcpgw_tests::{Http, eventually, initialize, notification, request};
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

/// Takeovers counted by each instance still running, by tag.
async fn takeovers(cluster: &Cluster) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (tag, gateway) in cluster.running() {
        out.insert(tag.to_owned(), counter(&gateway.base, "mcpgw_session_takeovers_total", &[]).await);
    }
    out
}

/// The instance nginx-cluster.conf names as the backup of the one tagged `tag`: the next in
/// the ring.
fn backup_of(tag: &str) -> &'static str {
    match tag {
        "0001" => "0002",
        "0002" => "0003",
        "0003" => "0001",
        other => panic!("no instance {other} in nginx-cluster.conf"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_every_request_of_a_session_is_served_by_the_instance_that_minted_it() {
    let cluster = Cluster::start_behind(Balancer::Nginx, 3, CONFIG);
    let (python, ts) = tokio::join!(python_sessions(&cluster.base, 4, 5), ts_sessions(&cluster.base, 4, 5));
    let sessions: Vec<ClientSession> = python.into_iter().chain(ts).collect();
    assert_eq!(sessions.len(), 16);

    // Both transports: the header and ?sessionId= reached the session's instance.
    assert_every_session_stayed_on_its_instance(&cluster, &sessions, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_the_next_call_after_the_holder_was_killed_carries_on_on_its_backup() {
    let mut cluster = Cluster::start_behind(Balancer::Nginx, 3, CONFIG);
    let mut client = ClientSteps::python("cluster_takeover.py", &[&cluster.base]);
    let session = client.next().await["session"].as_str().expect("a session id").to_owned();
    let holder = session[..4].to_owned();
    let record = format!("mcpgw:s:{{{session}}}");
    assert!(cluster.redis.cli(&["HGET", &record, "owner"]).starts_with(&format!("{holder}:")));
    cluster.kill(&holder);
    client.go().await;
    let report = client.next().await;

    assert_eq!(report["session"], session.as_str(), "the session id never changed");
    assert_eq!(report["sent_session_ids"], json!([session]), "no second session");
    assert_eq!(report["echoes"], json!(["before", "after"]));
    let statuses = report["statuses"].as_array().expect("statuses");
    assert!(statuses.iter().all(|s| s[1].as_u64() < Some(400)), "{statuses:?}");
    // Taken over once, by the holder's backup in the ring, and held there.
    let backup = backup_of(&holder);
    let counted = takeovers(&cluster).await;
    assert_eq!(counted.values().sum::<u64>(), 1, "taken over once: {counted:?}");
    assert_eq!(counted[backup], 1, "by {backup}: {counted:?}");
    assert!(cluster.redis.cli(&["HGET", &record, "owner"]).starts_with(&format!("{backup}:")));
    assert_eq!(cluster.redis.cli(&["HGET", &record, "epoch"]), "1");
    client.go().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_a_legacy_client_reconnecting_with_its_last_event_id_carries_on_on_the_backup() {
    let mut cluster = Cluster::start_behind(Balancer::Nginx, 3, CONFIG);
    let (legacy, mut stream) = RawLegacy::connect(&cluster.base).await;
    let session = legacy.id.clone();
    let post = |body: serde_json::Value| {
        let legacy = &legacy;
        async move { legacy.post(&body).await }
    };
    assert_eq!(post(initialize("2024-11-05")).await.status, StatusCode::ACCEPTED);
    // The last event id the client saw, as an EventSource keeps it: the initialize answer's.
    let answer = stream.next().await.expect("the initialize answer");
    let last = answer.id.clone().expect("the answer has an event id");
    let answer: serde_json::Value = serde_json::from_str(&answer.data).expect("JSON");
    assert_eq!(answer["id"], 0);
    assert_eq!(post(notification("notifications/initialized")).await.status, StatusCode::ACCEPTED);

    let holder = session[..4].to_owned();
    cluster.kill(&holder);
    // What an EventSource does when its stream drops: the same URL, with the last event id,
    // which is all nginx has to route it by.
    let mut resumed = legacy.reconnect(&last).await;
    assert_eq!(resumed.status, StatusCode::OK);
    let endpoint = resumed.next().await.expect("the endpoint event again");
    assert_eq!(endpoint.event, "endpoint");
    assert!(endpoint.data.ends_with(&format!("sessionId={session}")), "the same session: {}", endpoint.data);
    let echo = request(1, "tools/call", json!({"name": "echo", "arguments": {"text": "again"}}));
    assert_eq!(post(echo).await.status, StatusCode::ACCEPTED);
    let reply = resumed.next_message().await;
    assert_eq!(reply["result"]["content"][0]["text"], "again", "{reply}");
    let counted = takeovers(&cluster).await;
    assert_eq!(counted.values().sum::<u64>(), 1, "{counted:?}");
    assert_eq!(counted[backup_of(&holder)], 1, "the stream and the POSTs reached the same instance: {counted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_a_restarted_holder_gets_its_session_back_and_no_call_fails() {
    let mut cluster = Cluster::start_behind(Balancer::Nginx, 3, CONFIG);
    let (http, url) = (Http::new(), format!("{}/mcp", cluster.base));
    let reply = http.post(&url, &[], &initialize("2025-11-25")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let session = reply.header("mcp-session-id").expect("a session id").to_owned();
    let headers = [("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-11-25")];
    assert_eq!(
        http.post(&url, &headers, &notification("notifications/initialized")).await.status,
        StatusCode::ACCEPTED
    );
    let echo = |id: i64| {
        let (http, url) = (&http, &url);
        async move {
            let body = request(id, "tools/call", json!({"name": "echo", "arguments": {"text": "x"}}));
            let reply = http.post(url, &headers, &body).await;
            assert_eq!(reply.status, StatusCode::OK, "call {id}: {}", reply.text());
            assert_eq!(reply.messages()[0]["result"]["content"][0]["text"], "x");
        }
    };
    echo(1).await;
    let (holder, record) = (session[..4].to_owned(), format!("mcpgw:s:{{{session}}}"));
    let backup = backup_of(&holder);

    cluster.kill(&holder);
    echo(2).await;
    assert!(cluster.redis.cli(&["HGET", &record, "owner"]).starts_with(&format!("{backup}:")));
    cluster.restart(&holder);
    // nginx tries the instance again once its fail_timeout is over, with the session's next
    // call: the instance takes its session back, and the backup lets it go.
    let mut id = 3;
    eventually("the restarted holder took its session back", || {
        id += 1;
        let (echo, cluster, record, holder) = (&echo, &cluster, &record, &holder);
        async move {
            echo(id).await;
            cluster.redis.cli(&["HGET", record, "owner"]).starts_with(&format!("{holder}:"))
        }
    })
    .await;
    assert_eq!(cluster.redis.cli(&["HGET", &record, "epoch"]), "2", "moved twice: away and back");
    cluster.node(backup).wait_for_log("another instance holds this session now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_a_stream_its_client_closes_is_closed_on_the_instance_at_once() {
    let cluster = Cluster::start_behind(Balancer::Nginx, 3, CLOSED_STREAMS_CONFIG);
    open_then_close_streams(&cluster).await;
}
