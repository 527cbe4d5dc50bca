//! The journal of a cluster's sessions (see tests/tests/cluster.rs for the setup): what a
//! client was sent is in the store before it is sent, so a client resuming with
//! `Last-Event-ID` on another instance gets what it missed, once, in order; a call running on
//! a lost instance ends with a definite error and is never run again, and one running on an
//! instance told to stop finishes there (the drain); a paused instance
//! writes nothing more; a store with an append-only file loses nothing it acknowledged. Each
//! test checks the invariants on all the client received. Needs `make deps-cluster`,
//! `make deps-python` and `make deps-ts`.

use http::StatusCode;
use mcpgw_tests::cluster::{ClientSteps, Cluster, Redis};
use mcpgw_tests::cluster_client::{
    RawLegacy, RawSession, assert_client_invariants, assert_increasing, counter, journaled_seqs, memory_usage,
    read_messages, seq_of, sleep_call, takeovers,
};
use mcpgw_tests::{POST_HEADERS, SseReader, eventually, initialize, notification, request};
use serde_json::json;

/// One runtime thread per instance: three of them share the machine with the clients.
const CONFIG: &str = "[server]\nworker_threads = 1\n";

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
    // Sixteen steps of half a second: the holder dies long before the call would end.
    let mut call = session.post_stream(&sleep_call(7, 8000, 16)).await;
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
    let priming = resumed.next().await.expect("the priming event");
    assert_eq!((priming.id.as_deref(), priming.data.as_str()), (Some(last), ""), "primed with the id it resumed from");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_running_on_an_instance_told_to_stop_finishes_there_and_the_session_carries_on_elsewhere() {
    let mut cluster = Cluster::start(3, CONFIG);
    let session = RawSession::open(&cluster).await;
    // Six steps of half a second: it outlasts the holder's wait for the load balancer to see
    // it go (a second with no new MCP request), so it finishes in the drain proper.
    let mut call = session.post_stream(&sleep_call(7, 3000, 6)).await;
    let first = read_messages(&mut call, 1).await;
    let holder = session.id[..4].to_owned();
    let stopping = cluster.terminate_in_background(&holder);

    // The rest of the call comes on its stream, from the holder, through the drain.
    let mut after = Vec::new();
    while let Some(event) = call.next().await {
        if !event.data.is_empty() {
            let message: serde_json::Value = serde_json::from_str(&event.data).expect("JSON");
            after.push((event.id.clone().expect("an id"), message));
        }
    }
    let (answer, progress) = after.split_last().expect("the call's answer");
    assert_eq!(answer.1["id"], 7, "{}", answer.1);
    assert_eq!(answer.1["result"]["content"][0]["text"], "slept 3000 ms", "the call finished: {}", answer.1);
    let steps: Vec<Option<f64>> = first.iter().chain(progress).map(|(_, m)| m["params"]["progress"].as_f64()).collect();
    assert_eq!(steps, (1..=6).map(|n| Some(f64::from(n))).collect::<Vec<_>>(), "every progress once, in order");
    let ids: Vec<&str> = first.iter().chain(&after).map(|(id, _)| id.as_str()).collect();
    assert_increasing(&ids);
    let status =
        tokio::task::spawn_blocking(move || stopping.join().expect("the stopping thread")).await.expect("joined");
    assert!(status.success(), "it stopped cleanly: {status}");

    // The session carries on on another instance, and the call is not pending there.
    assert_eq!(session.echo(8).await, StatusCode::OK);
    assert_eq!(takeovers(&cluster).await, 1);
    let pending = format!("mcpgw:s:{{{}}}:p", session.id);
    assert_eq!(cluster.redis.cli(&["HLEN", &pending]), "0", "answered: not pending");
    for (tag, gateway) in cluster.running() {
        let slept = counter(&gateway.base, "mcpgw_tool_calls_total", &["tool=\"sleep\""]).await;
        assert_eq!(slept, 0, "node {tag} ran the call again");
    }
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
    let (legacy, mut stream) = RawLegacy::connect(&cluster.base).await;
    let session = legacy.id.clone();
    let post = |body: serde_json::Value| {
        let legacy = &legacy;
        async move { legacy.post(&body).await }
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
    let mut resumed = legacy.reconnect(last).await;
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

/// A call that sends nothing for a long while (no progress, no event to carry its note) is
/// pending in the store before its client sees anything of it: its Streamable reply stream
/// is primed, and a legacy POST of it acknowledged, long before its answer; and a client of
/// its killed holder gets a definite error for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_sends_nothing_is_pending_in_the_store_before_its_client_sees_anything() {
    let mut cluster = Cluster::start(3, CONFIG);
    let quiet = |id: i64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "sleep", "arguments": {"ms": 600_000, "steps": 0}}})
    };

    // A legacy session: the POST is acknowledged once the call is pending in the store.
    let (legacy, mut stream) = RawLegacy::connect(&cluster.base).await;
    assert_eq!(legacy.post(&initialize("2024-11-05")).await.status, StatusCode::ACCEPTED);
    assert_eq!(stream.next_message().await["id"], 0);
    assert_eq!(legacy.post(&notification("notifications/initialized")).await.status, StatusCode::ACCEPTED);
    assert_eq!(legacy.post(&quiet(5)).await.status, StatusCode::ACCEPTED, "acknowledged ten minutes before its answer");
    assert_eq!(cluster.redis.cli(&["HGET", &format!("mcpgw:s:{{{}}}:p", legacy.id), "5"]), "0", "pending");

    // A Streamable session whose client takes only an event stream: the stream is primed
    // once the call is pending.
    let session = RawSession::open(&cluster).await;
    let stream_only = [
        ("content-type", "application/json"),
        ("accept", "text/event-stream"),
        ("mcp-session-id", session.id.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let opened = session.http.open(http::Method::POST, &session.url, &stream_only, quiet(7).to_string()).await;
    let mut call = SseReader::new(opened);
    let priming = call.next().await.expect("the priming event, ten minutes before the answer");
    assert_eq!(priming.data, "", "a priming event");
    let primed = priming.id.expect("an event id");
    let pending = format!("mcpgw:s:{{{}}}:p", session.id);
    assert_eq!(cluster.redis.cli(&["HGET", &pending, "7"]), seq_of(&primed).0.to_string(), "pending");
    drop(call);
    cluster.kill(&session.id[..4]);

    // Resumed from its priming event on another instance: the call's definite error.
    let get = [
        ("accept", "text/event-stream"),
        ("mcp-session-id", session.id.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
        ("last-event-id", primed.as_str()),
    ];
    let mut resumed = SseReader::new(session.http.open(http::Method::GET, &session.url, &get, "").await);
    assert_eq!(resumed.status, StatusCode::OK);
    let (id, answer) = read_messages(&mut resumed, 1).await.remove(0);
    assert_eq!((answer["id"].as_i64(), answer["error"]["code"].as_i64()), (Some(7), Some(-32603)), "{answer}");
    assert_increasing(&[primed.as_str(), id.as_str()]);
    assert_eq!(cluster.redis.cli(&["HLEN", &pending]), "0", "answered: no longer pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_append_only_store_nothing_acknowledged_is_lost_when_it_restarts() {
    let mut cluster = Cluster::start_on(Redis::start_durable(), 3, CONFIG);
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

/// A session's record goes to the store in the journal writer's round, not alone: a legacy
/// session's record and its `initialize` answer in one script call, a Streamable HTTP one
/// in one call before its `initialize` answer leaves (docs/deployment.md, Redis sizing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sessions_record_goes_in_one_round_trip_with_a_legacy_sessions_initialize_answer() {
    let cluster = Cluster::start(1, CONFIG);
    // A first session loads the script into the store (a call before that is refused, and
    // the monitor shows it too).
    let (warm, mut warm_stream) = RawLegacy::connect(&cluster.base).await;
    assert_eq!(warm.post(&initialize("2024-11-05")).await.status, StatusCode::ACCEPTED);
    assert_eq!(warm_stream.next_message().await["id"], 0);
    let monitor = cluster.redis.monitor();
    // The writes this instance sent about one session before now (not a script's own, nor
    // the once-a-second check's reads and lifetime renewals).
    let sent_about = |id: &str| {
        let key = format!("mcpgw:s:{{{id}}}");
        cluster
            .redis
            .commands_until(&monitor)
            .into_iter()
            .filter(|l| l.contains(&key) && !l.contains("[0 lua]"))
            .map(|l| l.split('"').nth(1).unwrap_or_default().to_owned())
            .filter(|command| ["EVALSHA", "EVAL", "HSET", "HMSET"].contains(&command.as_str()))
            .collect::<Vec<_>>()
    };

    let (legacy, mut stream) = RawLegacy::connect(&cluster.base).await;
    assert_eq!(legacy.post(&initialize("2024-11-05")).await.status, StatusCode::ACCEPTED);
    let answer = stream.next_message().await;
    assert_eq!(answer["id"], 0, "{answer}");
    assert_eq!(sent_about(&legacy.id), ["EVALSHA"], "the record and the answer in one call");
    assert_eq!(cluster.redis.cli(&["HGET", &format!("mcpgw:s:{{{}}}", legacy.id), "kind"]), "legacy");
    assert_eq!(journaled_seqs(&cluster.redis, &legacy.id).len(), 1, "the answer is journaled");

    let session = RawSession::open(&cluster).await;
    assert_eq!(sent_about(&session.id), ["EVALSHA"], "the record in one call, before the answer with its id");
    assert_eq!(cluster.redis.cli(&["HGET", &format!("mcpgw:s:{{{}}}", session.id), "kind"]), "streamable");
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
    let mut call = session.post_stream(&sleep_call(3, 2000, 2)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_woken_after_its_session_was_taken_over_writes_no_event_the_store_does_not_have() {
    let cluster = Cluster::start(3, CONFIG);
    let session = RawSession::open(&cluster).await;
    let holder = session.id[..4].to_owned();
    let mut call = session.post_stream(&sleep_call(7, 8000, 16)).await;
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
