//! A rolling restart of a cluster (three instances behind HAProxy running
//! config/examples/haproxy.cfg, sharing a Redis) while the official Python and TypeScript
//! SDK clients call through it every 100 ms on Streamable HTTP, each session with the
//! standalone GET stream its SDK opens by itself. The raw HTTP version is in cluster.rs
//! (`a_rolling_restart_of_every_instance_fails_no_call`). Needs `make deps-cluster`,
//! `make deps-python` and `make deps-ts`.

use std::collections::BTreeSet;

use mcpgw_tests::Http;
use mcpgw_tests::cluster::{ClientSteps, Cluster};
use mcpgw_tests::cluster_client::{RawSession, assert_client_invariants};

/// One runtime thread per instance: three of them share the machine with the clients.
const CONFIG: &str = "[server]\nworker_threads = 1\n";

/// Sessions per SDK client.
const SESSIONS: usize = 4;

/// What one session of `tests/python/clients/cluster_rolling.py` or
/// `tests/ts/clients/cluster-rolling.mjs` reported.
#[derive(Debug, serde::Deserialize)]
struct Report {
    client: String,
    session: String,
    sent_session_ids: Vec<String>,
    texts: Vec<String>,
    echoes: Vec<String>,
    errors: Vec<String>,
    exchanges: Vec<serde_json::Value>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_fails_no_call_of_the_python_and_typescript_sdk_clients() {
    let mut cluster = Cluster::start(3, CONFIG);
    let sessions = SESSIONS.to_string();
    let mut clients = [
        ClientSteps::python("cluster_rolling.py", &[&cluster.base, &sessions]),
        ClientSteps::ts("cluster-rolling.mjs", &[&cluster.base, &sessions]),
    ];
    let mut opened: Vec<String> = Vec::new();
    for client in &mut clients {
        let ready = client.next().await;
        let ids = ready["sessions"].as_array().expect("session ids");
        opened.extend(ids.iter().map(|id| id.as_str().expect("a session id").to_owned()));
    }
    let minted: BTreeSet<&str> = opened.iter().map(|id| &id[..4]).collect();
    assert_eq!(minted.len(), 3, "sessions on every instance, so each one is restarted under some: {opened:?}");

    let began = std::time::Instant::now();
    tokio::task::block_in_place(|| cluster.roll());
    let rolled = began.elapsed();

    // Each session makes a last call, which takes it back to its own instance, and waits for
    // its standalone stream to be open there.
    for client in &mut clients {
        client.go().await;
        let home = client.next().await;
        let home = home["streams_home"].as_object().expect("streams_home");
        assert!(home.values().all(|h| h == true), "standalone streams open on their sessions' instances: {home:?}");
    }
    // Sessions moving in a planned restart are no operator's alarm: the instance that stops
    // and the one that held a session for it while it was away log it as information.
    let logs: Vec<String> = cluster.nodes.iter().flat_map(mcpgw_tests::cluster::Node::log_lines).collect();
    for cause in ["this instance is stopping", "its home instance took it back"] {
        assert!(logs.iter().any(|l| l.contains(cause) && l.contains("INFO")), "a session lost because {cause}");
    }
    let alarms: Vec<&String> =
        logs.iter().filter(|l| l.contains("WARN") && l.contains("another instance holds")).collect();
    assert!(alarms.is_empty(), "{alarms:?}");
    for id in &opened {
        let record = format!("mcpgw:s:{{{id}}}");
        assert!(cluster.redis.cli(&["HGET", &record, "owner"]).starts_with(&id[..4]), "{id}: back home");
        // Taken over once when its instance stopped, and once more by its instance, back: one
        // move each way, never a second hop.
        assert_eq!(cluster.redis.cli(&["HGET", &record, "epoch"]), "2", "{id}: away and back");
    }
    // Two progress notifications to each session's standalone stream, from a call in the
    // session by a raw client that takes only JSON: the SDK's stream must carry them.
    for (n, id) in opened.iter().enumerate() {
        let raw = RawSession { http: Http::new(), url: format!("{}/mcp", cluster.base), id: id.clone() };
        raw.sleep_json_only(1_000_000 + n as i64, 2).await;
    }
    let mut reports = Vec::new();
    for client in &mut clients {
        client.go().await;
        for _ in 0..SESSIONS {
            reports.push(serde_json::from_value::<Report>(client.next().await).expect("a session's report"));
        }
    }
    for report in &reports {
        assert!(opened.contains(&report.session), "{}: one of the sessions it opened", report.session);
        check(report, rolled);
    }
}

/// The invariants on all one session received through the roll.
fn check(report: &Report, rolled: std::time::Duration) {
    let what = format!("{} session {}", report.client, report.session);
    let gets: Vec<&serde_json::Value> = report.exchanges.iter().filter(|e| e["method"] == "GET").collect();
    let nodes: Vec<&str> = gets.iter().map(|e| e["node"].as_str().unwrap_or("?")).collect();
    println!(
        "{what}: {} calls (the roll took {rolled:.1?}), standalone stream on {}",
        report.texts.len(),
        nodes.join(" → ")
    );

    assert_eq!(report.sent_session_ids, std::slice::from_ref(&report.session), "{what}: the session id never changed");
    assert!(report.errors.is_empty(), "{what}: {:?}", report.errors);
    assert_eq!(report.echoes, report.texts, "{what}: every echo came back, once and in order");
    // A call every 100 ms all through the roll; half that rate leaves room for a slow machine,
    // and still shows that the calls went on while each instance was away.
    let least = (rolled.as_millis() / 200) as usize;
    assert!(report.texts.len() > least, "{what}: {} calls in {rolled:?}", report.texts.len());
    let statuses: Vec<(&str, u64)> = report
        .exchanges
        .iter()
        .map(|e| (e["method"].as_str().expect("a method"), e["status"].as_u64().unwrap_or(0)))
        .collect();
    assert!(statuses.iter().all(|&(_, status)| (200..300).contains(&status)), "{what}: no 404, no 5xx: {statuses:?}");
    assert!(gets.len() >= 2, "{what}: the standalone stream opened again after its instance stopped: {nodes:?}");
    // Each time, it resumed from the last event its client had: a resumed stream starts
    // with a priming event carrying that id, from which the TypeScript SDK takes the id to
    // resume from next (it does not keep the one it resumed with: typescript-sdk #2499).
    let fresh: Vec<&str> =
        gets[1..].iter().filter(|e| e["last_event_id"].is_null()).map(|e| e["node"].as_str().unwrap_or("?")).collect();
    assert!(fresh.is_empty(), "{what}: every reopened stream names its Last-Event-ID; without one on {fresh:?}");
    let progress: Vec<&serde_json::Value> = gets
        .iter()
        .flat_map(|e| e["events"].as_array().expect("events"))
        .filter(|event| event["message"]["method"] == "notifications/progress")
        .map(|event| &event["message"]["params"]["progress"])
        .collect();
    assert_eq!(progress.len(), 2, "{what}: the notifications sent to its stream, once each: {progress:?}");
    assert_client_invariants(&report.exchanges);
}
