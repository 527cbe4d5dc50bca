//! Several instances behind HAProxy (config/examples/haproxy.cfg as it is) sharing a Redis,
//! driven by the official Python and TypeScript SDK clients on both transports. Needs
//! `make deps-cluster` (haproxy, redis-server), `make deps-python` and `make deps-ts`.

use std::collections::{BTreeMap, BTreeSet};

use mcpgw_tests::Http;
use mcpgw_tests::cluster::{ClientSession, Cluster, python_sessions, ts_sessions};

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
    }
}
