//! The hub's routing table with no server behind it: ids and progress tokens rewritten on
//! the way in and restored on the way out, logs only when asked for, and a request whose
//! client leaves cancelled once.

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, EmptyResult, LoggingMessageNotification, LoggingMessageNotificationParam,
    ProgressNotification, ProgressNotificationParam,
};

use super::*;

fn hub() -> (Arc<Hub>, mpsc::Receiver<Box<ClientJsonRpcMessage>>) {
    Hub::new(HubLimits::default(), TaskTracker::new(), Arc::new(ListenerSlots::default()))
}

fn call(id: RequestId, token: Option<i64>) -> JsonRpcRequest<ClientRequest> {
    let mut request = ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new("echo")));
    if let Some(t) = token {
        request.get_meta_mut().set_progress_token(ProgressToken(NumberOrString::Number(t)));
    }
    JsonRpcRequest::new(id, request)
}

/// The hub id a request entered the server under, and its progress token there.
fn entered(message: ClientJsonRpcMessage) -> (RequestId, Option<ProgressToken>) {
    let JsonRpcMessage::Request(r) = message else { panic!("a request") };
    (r.id, r.request.get_meta().get_progress_token())
}

fn json(out: &Outgoing) -> Value {
    serde_json::from_slice(out.json().expect("a message")).expect("json")
}

use serde_json::Value;

#[tokio::test]
async fn two_clients_with_the_same_id_and_token_each_get_their_own_answer_back() {
    let (hub, mut server) = hub();
    let (mut a, _ta) =
        hub.submit(call(RequestId::Number(1), Some(7)), None, Declared::default()).await.expect("submitted");
    let (mut b, _tb) =
        hub.submit(call(RequestId::Number(1), Some(7)), None, Declared::default()).await.expect("submitted");
    let (id_a, token_a) = entered(*server.recv().await.expect("a"));
    let (id_b, token_b) = entered(*server.recv().await.expect("b"));
    assert_ne!(id_a, id_b, "hub ids are unique");
    assert_ne!(token_a, token_b, "so are the tokens");
    let progress = ProgressNotification::new(ProgressNotificationParam::new(token_b.expect("token"), 0.5));
    hub.deliver(JsonRpcMessage::notification(ServerNotification::ProgressNotification(progress))).await.expect("ok");
    let answer = JsonRpcMessage::response(ServerResult::EmptyResult(EmptyResult {}), id_a);
    hub.deliver(answer).await.expect("ok");
    let got_b = b.recv().await.expect("progress for b");
    assert_eq!(json(&got_b)["params"]["progressToken"], 7, "the client's own token");
    let got_a = a.recv().await.expect("answer for a");
    assert!(got_a.is_response());
    assert_eq!(json(&got_a)["id"], 1, "the client's own id");
    assert!(a.recv().await.is_none(), "answered: the stream ends");
    assert_eq!(hub.in_flight(), 1);
}

#[tokio::test]
async fn log_messages_reach_only_requests_that_asked_and_at_their_level() {
    let (hub, mut server) = hub();
    let (mut quiet, _t1) =
        hub.submit(call(RequestId::Number(1), None), None, Declared::default()).await.expect("submitted");
    let (mut chatty, _t2) = hub
        .submit(call(RequestId::Number(2), None), Some(LoggingLevel::Warning), Declared::default())
        .await
        .expect("submitted");
    let (quiet_id, _) = entered(*server.recv().await.expect("1"));
    let (chatty_id, _) = entered(*server.recv().await.expect("2"));
    let log = |level, id: &RequestId| {
        let mut note = LoggingMessageNotification::new(LoggingMessageNotificationParam::new(level, "x".into()));
        note.extensions.insert(OriginatingRequestId(id.clone()));
        JsonRpcMessage::notification(ServerNotification::LoggingMessageNotification(note))
    };
    hub.deliver(log(LoggingLevel::Error, &quiet_id)).await.expect("ok");
    hub.deliver(log(LoggingLevel::Info, &chatty_id)).await.expect("ok");
    hub.deliver(log(LoggingLevel::Error, &chatty_id)).await.expect("ok");
    for (rx, id) in [(&mut quiet, quiet_id), (&mut chatty, chatty_id)] {
        hub.deliver(JsonRpcMessage::response(ServerResult::EmptyResult(EmptyResult {}), id)).await.expect("ok");
        let _ = rx;
    }
    assert!(quiet.recv().await.expect("answer").is_response(), "no log before the answer");
    let first = chatty.recv().await.expect("a log");
    assert_eq!(json(&first)["params"]["level"], "error", "only the error, not the info");
    assert!(chatty.recv().await.expect("answer").is_response());
}

#[tokio::test]
async fn a_ticket_dropped_before_the_answer_cancels_the_request_once() {
    let (hub, mut server) = hub();
    let (rx, ticket) =
        hub.submit(call(RequestId::String("c".into()), None), None, Declared::default()).await.expect("submitted");
    let (id, _) = entered(*server.recv().await.expect("request"));
    drop(ticket);
    let JsonRpcMessage::Notification(n) = *server.recv().await.expect("a cancel") else { panic!("a notification") };
    let ClientNotification::CancelledNotification(c) = n.notification else { panic!("cancelled") };
    assert_eq!(c.params.request_id, Some(id.clone()));
    assert_eq!(hub.in_flight(), 0);
    // A late answer goes nowhere; the stream just ends.
    hub.deliver(JsonRpcMessage::response(ServerResult::EmptyResult(EmptyResult {}), id)).await.expect("ok");
    let mut rx = rx;
    assert!(rx.recv().await.is_none());
    assert!(server.try_recv().is_err(), "cancelled once");
}

#[tokio::test]
async fn an_answered_request_is_not_cancelled_when_its_ticket_goes() {
    let (hub, mut server) = hub();
    let (mut rx, ticket) =
        hub.submit(call(RequestId::Number(5), None), None, Declared::default()).await.expect("submitted");
    let (id, _) = entered(*server.recv().await.expect("request"));
    hub.deliver(JsonRpcMessage::response(ServerResult::EmptyResult(EmptyResult {}), id)).await.expect("ok");
    assert!(rx.recv().await.expect("answer").is_response());
    drop(ticket);
    assert!(server.try_recv().is_err(), "no cancel for an answered request");
}

#[tokio::test]
async fn a_relayed_result_without_a_result_type_is_marked_complete() {
    let (hub, mut server) = hub();
    let (mut rx, _t) =
        hub.submit(call(RequestId::Number(2), None), None, Declared::default()).await.expect("submitted");
    let (id, _) = entered(*server.recv().await.expect("request"));
    let mut relayed = rmcp::model::CallToolResult::success(vec![]);
    relayed.result_type = None;
    hub.deliver(JsonRpcMessage::response(ServerResult::CallToolResult(relayed), id)).await.expect("ok");
    assert_eq!(json(&rx.recv().await.expect("answer"))["result"]["resultType"], "complete");
}

#[tokio::test]
async fn errors_carry_the_status_a_stateless_reply_gets() {
    let (hub, mut server) = hub();
    let (mut rx, _t) =
        hub.submit(call(RequestId::Number(9), None), None, Declared::default()).await.expect("submitted");
    let (id, _) = entered(*server.recv().await.expect("request"));
    let error = ErrorData::new(ErrorCode::METHOD_NOT_FOUND, "no", None);
    hub.deliver(JsonRpcMessage::error(error, Some(id))).await.expect("ok");
    let out = rx.recv().await.expect("the error");
    let Outgoing::Failure { status, .. } = &out else { panic!("a failure") };
    assert_eq!(*status, StatusCode::NOT_FOUND);
    assert_eq!(json(&out)["id"], 9);
}

/// An upstream's sampling request relayed during `origin`'s call.
fn sampling_for(origin: &RequestId) -> ServerJsonRpcMessage {
    let mut message: ServerJsonRpcMessage = serde_json::from_value(serde_json::json!({
        "jsonrpc": "2.0", "id": 77, "method": "sampling/createMessage",
        "params": {"messages": [], "maxTokens": 5},
    }))
    .expect("a sampling request");
    let JsonRpcMessage::Request(r) = &mut message else { panic!("a request") };
    r.request.extensions_mut().insert(OriginatingRequestId(origin.clone()));
    message
}

#[tokio::test]
async fn a_capability_the_client_did_not_declare_ends_its_call_with_32021() {
    let (hub, mut server) = hub();
    let (mut rx, _t) =
        hub.submit(call(RequestId::Number(4), None), None, Declared::default()).await.expect("submitted");
    let (id, _) = entered(*server.recv().await.expect("request"));
    hub.deliver(sampling_for(&id)).await.expect("ok");
    let out = rx.recv().await.expect("the refusal");
    let Outgoing::Failure { status, .. } = &out else { panic!("a failure") };
    assert_eq!(*status, StatusCode::BAD_REQUEST);
    let refusal = json(&out);
    assert_eq!(
        (refusal["id"].clone(), refusal["error"]["code"].clone()),
        (serde_json::json!(4), serde_json::json!(-32021))
    );
    assert_eq!(refusal["error"]["data"]["requiredCapabilities"], serde_json::json!({"sampling": {}}));
    assert!(rx.recv().await.is_none(), "nothing more for that call");
    // The server hears that the call is cancelled, and its own request is answered.
    let JsonRpcMessage::Notification(n) = *server.recv().await.expect("cancel") else { panic!("a notification") };
    assert!(matches!(n.notification, ClientNotification::CancelledNotification(_)));
    let JsonRpcMessage::Error(e) = *server.recv().await.expect("answer") else { panic!("an error") };
    assert_eq!(e.id, Some(RequestId::Number(77)));
}

#[tokio::test]
async fn a_declared_capability_does_not_end_the_call() {
    let (hub, mut server) = hub();
    let declared = Declared::from_capabilities(Some(&serde_json::json!({"sampling": {}})));
    assert!(declared.sampling && !declared.elicitation);
    let (mut rx, _t) = hub.submit(call(RequestId::Number(4), None), None, declared).await.expect("submitted");
    let (id, _) = entered(*server.recv().await.expect("request"));
    hub.deliver(sampling_for(&id)).await.expect("ok");
    let JsonRpcMessage::Error(e) = *server.recv().await.expect("answer") else { panic!("an error") };
    assert_eq!(e.id, Some(RequestId::Number(77)), "answered (relaying comes with input-required results)");
    assert_eq!(hub.in_flight(), 1, "the call goes on");
    assert!(rx.try_recv().is_err(), "and nothing reaches the client's stream");
}

#[tokio::test(start_paused = true)]
async fn a_stream_its_client_does_not_read_is_given_up_and_its_request_cancelled() {
    let limits = HubLimits { inbound: 8, stream: 1, stall: Duration::from_secs(1) };
    let (hub, mut server) = Hub::new(limits, TaskTracker::new(), Arc::new(ListenerSlots::default()));
    let (_rx, _ticket) =
        hub.submit(call(RequestId::Number(1), Some(1)), None, Declared::default()).await.expect("submitted");
    let (_, token) = entered(*server.recv().await.expect("request"));
    let progress = || {
        let p = ProgressNotification::new(ProgressNotificationParam::new(token.clone().expect("token"), 0.5));
        JsonRpcMessage::notification(ServerNotification::ProgressNotification(p))
    };
    hub.deliver(progress()).await.expect("ok: room for one");
    // The second waits for room that never comes, then gives the request up.
    hub.deliver(progress()).await.expect("ok");
    assert_eq!(hub.in_flight(), 0);
    let JsonRpcMessage::Notification(n) = *server.recv().await.expect("a cancel") else { panic!("a notification") };
    assert!(matches!(n.notification, ClientNotification::CancelledNotification(_)));
}
