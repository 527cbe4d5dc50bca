//! Host and Origin checks, and CORS as browser clients (the MCP Inspector) need it.

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, POST_HEADERS, initialize};

#[tokio::test]
async fn preflight_allows_every_mcp_header_without_auth() {
    let gw = Gateway::start();
    let reply = Http::new()
        .send(
            Method::OPTIONS,
            &gw.url("/mcp"),
            &[("origin", "http://localhost:6274"), ("access-control-request-method", "POST")],
            Bytes::new(),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.status);
    assert_eq!(reply.header("access-control-allow-origin"), Some("http://localhost:6274"));
    let methods = reply.header("access-control-allow-methods").expect("methods");
    for m in ["GET", "POST", "DELETE"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = reply.header("access-control-allow-headers").expect("headers").to_ascii_lowercase();
    for h in ["mcp-session-id", "mcp-protocol-version", "last-event-id", "authorization", "content-type", "accept"] {
        assert!(headers.contains(h), "{headers}");
    }
}

#[tokio::test]
async fn every_response_exposes_the_session_header_errors_included() {
    let gw = Gateway::start();
    let http = Http::new();
    let origin = ("origin", "http://localhost:6274");
    let mut with_origin = POST_HEADERS.to_vec();
    with_origin.push(origin);
    let ok = http.send(Method::POST, &gw.url("/mcp"), &with_origin, initialize("2025-06-18").to_string()).await;
    let not_found = http
        .send(
            Method::POST,
            &gw.url("/mcp"),
            &[with_origin.clone(), vec![("mcp-session-id", "ffffffffffffffffffffffffffffffff")]].concat(),
            "{}",
        )
        .await;
    let not_allowed = http.send(Method::PUT, &gw.url("/mcp"), &[origin], Bytes::new()).await;
    let not_acceptable = http
        .send(
            Method::POST,
            &gw.url("/mcp"),
            &[origin, ("accept", "text/html"), ("content-type", "application/json")],
            "{}",
        )
        .await;
    for (reply, status) in [
        (&ok, StatusCode::OK),
        (&not_found, StatusCode::NOT_FOUND),
        (&not_allowed, StatusCode::METHOD_NOT_ALLOWED),
        (&not_acceptable, StatusCode::NOT_ACCEPTABLE),
    ] {
        assert_eq!(reply.status, status);
        assert_eq!(reply.header("access-control-allow-origin"), Some("http://localhost:6274"), "{status}");
        let exposed = reply.header("access-control-expose-headers").expect("exposed").to_ascii_lowercase();
        assert!(exposed.contains("mcp-session-id"), "{status}: {exposed}");
    }
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_403_before_dispatch_on_loopback() {
    let gw = Gateway::start();
    let http = Http::new();
    let init = initialize("2025-11-25").to_string();
    let evil_host =
        [POST_HEADERS.to_vec(), vec![("host", "evil.example.com"), ("origin", "http://evil.example.com")]].concat();
    let rebinding = http.send(Method::POST, &gw.url("/mcp"), &evil_host, init.clone()).await;
    assert_eq!(rebinding.status, StatusCode::FORBIDDEN);
    assert!(rebinding.header("mcp-session-id").is_none(), "nothing was dispatched");
    assert!(rebinding.header("access-control-allow-origin").is_none(), "the refused page may not read the answer");
    let evil_origin = [POST_HEADERS.to_vec(), vec![("origin", "https://evil.example")]].concat();
    assert_eq!(
        http.send(Method::POST, &gw.url("/mcp"), &evil_origin, init.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let sse = http.send(Method::GET, &gw.url("/sse"), &[("host", "evil.example.com")], Bytes::new()).await;
    assert_eq!(sse.status, StatusCode::FORBIDDEN);
    let port = gw.authority().rsplit(':').next().expect("port").to_owned();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let own = [POST_HEADERS.to_vec(), vec![("host", host.as_str()), ("origin", "http://localhost:6274")]].concat();
        assert_eq!(http.send(Method::POST, &gw.url("/mcp"), &own, init.clone()).await.status, StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn configured_origins_replace_the_loopback_default() {
    let gw = Gateway::start_with("[security]\nallowed_origins = [\"https://app.example\"]\n");
    let http = Http::new();
    let init = initialize("2025-11-25").to_string();
    let allowed = [POST_HEADERS.to_vec(), vec![("origin", "https://app.example")]].concat();
    assert_eq!(http.send(Method::POST, &gw.url("/mcp"), &allowed, init.clone()).await.status, StatusCode::OK);
    let other = [POST_HEADERS.to_vec(), vec![("origin", "http://localhost:3000")]].concat();
    assert_eq!(http.send(Method::POST, &gw.url("/mcp"), &other, init).await.status, StatusCode::FORBIDDEN);
}

#[test]
fn oversized_headers_and_slow_headers_are_cut_off() {
    use std::io::{Read, Write};
    let gw = Gateway::start_with("[server]\nheader_read_timeout_secs = 1\nmax_header_bytes = 16384\n");
    let mut big = std::net::TcpStream::connect(gw.authority()).expect("connect");
    big.set_read_timeout(Some(mcpgw_tests::WAIT)).expect("timeout");
    let padding = "a".repeat(32 * 1024);
    let _ = write!(big, "GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Pad: {padding}\r\n\r\n", gw.authority());
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");

    // Slowloris: a request head that never ends is dropped after the header timeout.
    let mut slow = std::net::TcpStream::connect(gw.authority()).expect("connect");
    slow.set_read_timeout(Some(mcpgw_tests::WAIT)).expect("timeout");
    write!(slow, "GET /healthz HTTP/1.1\r\nHost: {}\r\n", gw.authority()).expect("send");
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "closed by the server, not by our read timeout");
}
