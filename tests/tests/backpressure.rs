//! A client that opens its event stream and never reads it cannot grow the gateway's
//! memory past the configured bounds (stream queue, backlog, event log).

use std::io::{Read, Write};
use std::net::TcpStream;

use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, initialize, notification, request, rss_kib};
use serde_json::json;

#[tokio::test]
async fn a_client_that_never_reads_its_stream_cannot_grow_the_gateways_memory() {
    let gw = Gateway::start_with("[sessions]\nstream_stall_secs = 1\nbacklog = 16\nevent_log_bytes = 262144\n");
    // Open the legacy stream by hand and read only up to the endpoint event.
    let mut socket = TcpStream::connect(gw.authority()).expect("connect");
    write!(socket, "GET /sse HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n", gw.authority()).expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&head).contains("sessionId=") || !head.ends_with(b"\n") {
        socket.read_exact(&mut byte).expect("read the endpoint event");
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let path = text.lines().find_map(|l| l.strip_prefix("data: ")).expect("endpoint").trim().to_owned();
    let endpoint = gw.url(&path);
    let http = Http::new();
    let json_ct = [("content-type", "application/json")];
    assert_eq!(
        http.send(Method::POST, &endpoint, &json_ct, initialize("2024-11-05").to_string()).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        http.send(Method::POST, &endpoint, &json_ct, notification("notifications/initialized").to_string())
            .await
            .status,
        StatusCode::ACCEPTED
    );

    let before = rss_kib(gw.pid());
    let big = "x".repeat(64 * 1024);
    // 2,000 answers of 64 KiB (125 MiB) for a client that reads none of them.
    for id in 1..=2000 {
        let call = request(id, "tools/call", json!({"name": "echo", "arguments": {"text": big}}));
        let reply = http.send(Method::POST, &endpoint, &json_ct, call.to_string()).await;
        assert!(reply.status == StatusCode::ACCEPTED || reply.status == StatusCode::NOT_FOUND, "{}", reply.status);
    }
    let after = rss_kib(gw.pid());
    println!("RSS {before} KiB -> {after} KiB");
    assert!(after < before + 48 * 1024, "memory grew from {before} KiB to {after} KiB");
    drop(socket);
}
