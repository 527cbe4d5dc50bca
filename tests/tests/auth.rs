//! Bearer-token authentication, sessions bound to their credential, and session caps.

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, POST_HEADERS, SseReader, initialize, request};
use serde_json::json;

fn digest(token: &str) -> String {
    mcpgw_transport::auth::digest_hex(token)
}

fn auth_config(extra: &str) -> String {
    format!("[auth]\ntoken_sha256 = [\"{}\", \"{}\"]\n{extra}", digest("alice-token"), digest("bob-token"))
}

fn with(token: &'static str, headers: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut all: Vec<(&'static str, String)> = headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    all.push(("authorization", format!("Bearer {token}")));
    all
}

async fn post(
    http: &Http,
    url: &str,
    headers: &[(&'static str, String)],
    body: &serde_json::Value,
) -> mcpgw_tests::Reply {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    http.send(Method::POST, url, &headers, body.to_string()).await
}

#[tokio::test]
async fn without_a_valid_token_requests_get_401_with_a_bearer_challenge() {
    let gw = Gateway::start_with(&auth_config(""));
    let http = Http::new();
    let none = http.post(&gw.url("/mcp"), &[], &initialize("2025-11-25")).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.header("www-authenticate").is_some_and(|c| c.starts_with("Bearer")), "{:?}", none.headers);
    assert!(none.header("mcp-session-id").is_none(), "nothing was created");
    let wrong = post(&http, &gw.url("/mcp"), &with("guess", &POST_HEADERS), &initialize("2025-11-25")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.header("www-authenticate").is_some_and(|c| c.contains("invalid_token")));
    let sse = http.send(Method::GET, &gw.url("/sse"), &[("accept", "text/event-stream")], Bytes::new()).await;
    assert_eq!(sse.status, StatusCode::UNAUTHORIZED);
    let ok = post(&http, &gw.url("/mcp"), &with("alice-token", &POST_HEADERS), &initialize("2025-11-25")).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn a_preflight_never_needs_a_token() {
    let gw = Gateway::start_with(&auth_config(""));
    let reply = Http::new()
        .send(
            Method::OPTIONS,
            &gw.url("/mcp"),
            &[("origin", "http://localhost:6274"), ("access-control-request-method", "POST")],
            Bytes::new(),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.status);
    assert!(reply.header("access-control-allow-headers").is_some_and(|h| h.contains("authorization")));
}

#[tokio::test]
async fn another_credential_gets_404_for_a_streamable_session() {
    let gw = Gateway::start_with(&auth_config(""));
    let http = Http::new();
    let init = post(&http, &gw.url("/mcp"), &with("alice-token", &POST_HEADERS), &initialize("2025-11-25")).await;
    let sid = init.header("mcp-session-id").expect("sid").to_owned();
    let mut alice = with("alice-token", &POST_HEADERS);
    alice.push(("mcp-session-id", sid.clone()));
    let mut bob = with("bob-token", &POST_HEADERS);
    bob.push(("mcp-session-id", sid.clone()));
    let theirs = post(&http, &gw.url("/mcp"), &bob, &request(1, "tools/list", json!({}))).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let mine = post(&http, &gw.url("/mcp"), &alice, &request(2, "tools/list", json!({}))).await;
    assert_eq!(mine.status, StatusCode::OK);
}

#[tokio::test]
async fn another_credential_gets_404_for_a_legacy_session() {
    let gw = Gateway::start_with(&auth_config(""));
    let http = Http::new();
    let alice: Vec<(&str, String)> = with("alice-token", &[("accept", "text/event-stream")]);
    let alice_headers: Vec<(&str, &str)> = alice.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut stream = SseReader::new(http.open(Method::GET, &gw.url("/sse"), &alice_headers, Bytes::new()).await);
    let endpoint = gw.url(&stream.next().await.expect("endpoint").data);
    let bob = with("bob-token", &[("content-type", "application/json")]);
    let theirs = post(&http, &endpoint, &bob, &initialize("2024-11-05")).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let mine = post(
        &http,
        &endpoint,
        &with("alice-token", &[("content-type", "application/json")]),
        &initialize("2024-11-05"),
    )
    .await;
    assert_eq!(mine.status, StatusCode::ACCEPTED);
    assert_eq!(stream.next_message().await["id"], 0);
}

#[tokio::test]
async fn past_the_session_cap_a_new_session_gets_503_and_nothing_is_created() {
    let gw = Gateway::start_with("[sessions]\nmax_sessions = 2\n");
    let http = Http::new();
    for _ in 0..2 {
        assert_eq!(http.post(&gw.url("/mcp"), &[], &initialize("2025-11-25")).await.status, StatusCode::OK);
    }
    let refused = http.post(&gw.url("/mcp"), &[], &initialize("2025-11-25")).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.header("retry-after").is_some());
    assert!(refused.header("mcp-session-id").is_none());
    assert_eq!(mcpgw_tests::session_counts(&http, &gw).await, (0, 2));
}

#[tokio::test]
async fn the_per_credential_cap_leaves_room_for_others() {
    let gw = Gateway::start_with(&auth_config("[sessions]\nmax_sessions_per_credential = 1\n"));
    let http = Http::new();
    let first = post(&http, &gw.url("/mcp"), &with("alice-token", &POST_HEADERS), &initialize("2025-11-25")).await;
    assert_eq!(first.status, StatusCode::OK);
    let second = post(&http, &gw.url("/mcp"), &with("alice-token", &POST_HEADERS), &initialize("2025-11-25")).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    let bob = post(&http, &gw.url("/mcp"), &with("bob-token", &POST_HEADERS), &initialize("2025-11-25")).await;
    assert_eq!(bob.status, StatusCode::OK);
}

/// 64 concurrent `initialize` with one slot left under a cap: exactly one gets a session,
/// every other one 503 with `Retry-After`, and no more sessions exist than the cap.
async fn race_for_the_last_slot(config: &str, token: &'static str, cap: u64) {
    let gw = Gateway::start_with(config);
    let http = Http::new();
    let headers = with(token, &POST_HEADERS);
    for _ in 0..cap - 1 {
        assert_eq!(post(&http, &gw.url("/mcp"), &headers, &initialize("2025-11-25")).await.status, StatusCode::OK);
    }
    let url = gw.url("/mcp");
    let racers: Vec<_> = (0..64)
        .map(|_| {
            let (http, url, headers) = (http.clone(), url.clone(), headers.clone());
            tokio::spawn(async move { post(&http, &url, &headers, &initialize("2025-11-25")).await })
        })
        .collect();
    let mut created = 0;
    for racer in racers {
        let reply = racer.await.expect("racer");
        if reply.status == StatusCode::OK {
            created += 1;
        } else {
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
            assert!(reply.header("mcp-session-id").is_none());
        }
    }
    assert_eq!(created, 1);
    let (legacy, streamable) = mcpgw_tests::session_counts(&http, &gw).await;
    assert_eq!(legacy + streamable, cap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_initializes_at_the_global_cap_create_exactly_one_session() {
    race_for_the_last_slot(&auth_config("[sessions]\nmax_sessions = 4\n"), "alice-token", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_initializes_at_a_credentials_cap_create_exactly_one_session() {
    race_for_the_last_slot(&auth_config("[sessions]\nmax_sessions_per_credential = 4\n"), "bob-token", 4).await;
}
