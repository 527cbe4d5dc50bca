//! Listeners in the hub's routing table, with no server behind it: the acknowledgement and
//! everything after it named by the client's own id, list changes only to the listeners that
//! asked, the cap, a listener that does not read, and the clean end.

use rmcp::model::{
    PromptListChangedNotification, SubscriptionFilter, SubscriptionsAcknowledgedNotification,
    SubscriptionsAcknowledgedNotificationParams, SubscriptionsListenRequest, SubscriptionsListenRequestParams,
    ToolListChangedNotification,
};
use serde_json::Value;

use super::*;

fn hub_with(stream: usize, cap: usize) -> (Arc<Hub>, mpsc::Receiver<Box<ClientJsonRpcMessage>>, Arc<ListenerSlots>) {
    let slots = ListenerSlots::new(cap);
    let limits = HubLimits { stream, ..HubLimits::default() };
    let (hub, server) = Hub::new(limits, TaskTracker::new(), slots.clone());
    (hub, server, slots)
}

fn listen(id: RequestId, filter: SubscriptionFilter) -> JsonRpcRequest<ClientRequest> {
    let request = ClientRequest::SubscriptionsListenRequest(SubscriptionsListenRequest::new(
        SubscriptionsListenRequestParams::new(filter),
    ));
    JsonRpcRequest::new(id, request)
}

fn entered_id(message: ClientJsonRpcMessage) -> RequestId {
    let JsonRpcMessage::Request(r) = message else { panic!("a request") };
    r.id
}

/// What the server sends first on a listen: the acknowledgement, under the hub's id.
fn ack(hub_id: &RequestId, filter: SubscriptionFilter) -> ServerJsonRpcMessage {
    let ack = SubscriptionsAcknowledgedNotification::new(SubscriptionsAcknowledgedNotificationParams::new(filter));
    let mut note = ServerNotification::SubscriptionsAcknowledgedNotification(ack);
    note.get_meta_mut().set_subscription_id(hub_id.clone());
    JsonRpcMessage::notification(note)
}

fn tools_changed() -> ServerJsonRpcMessage {
    JsonRpcMessage::notification(
        ServerNotification::ToolListChangedNotification(ToolListChangedNotification::default()),
    )
}

fn prompts_changed() -> ServerJsonRpcMessage {
    JsonRpcMessage::notification(ServerNotification::PromptListChangedNotification(
        PromptListChangedNotification::default(),
    ))
}

fn json(out: &Outgoing) -> Value {
    serde_json::from_slice(out.json().expect("a message")).expect("json")
}

fn subscription(out: &Outgoing) -> Value {
    json(out)["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"].clone()
}

#[tokio::test]
async fn a_list_change_reaches_only_the_listeners_that_asked_under_their_own_ids() {
    let (hub, mut server, slots) = hub_with(16, 8);
    let tools = SubscriptionFilter::builder().tools_list_changed().build();
    let prompts = SubscriptionFilter::builder().prompts_list_changed().build();
    let (mut a, _ta) =
        hub.submit(listen(RequestId::String("a".into()), tools.clone()), None, Declared::default()).await.expect("a");
    let (mut b, _tb) =
        hub.submit(listen(RequestId::Number(1), prompts.clone()), None, Declared::default()).await.expect("b");
    let (id_a, id_b) = (entered_id(*server.recv().await.expect("a")), entered_id(*server.recv().await.expect("b")));
    assert_eq!((slots.open(), hub.in_flight()), (2, 0), "listeners hold slots and no drain waits for them");
    // Nothing before the acknowledgement: it is the stream's first message.
    hub.deliver(tools_changed()).await.expect("ok");
    hub.deliver(ack(&id_a, tools)).await.expect("ok");
    hub.deliver(ack(&id_b, prompts)).await.expect("ok");
    let first = a.recv().await.expect("a's ack");
    assert_eq!(json(&first)["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(subscription(&first), "a", "the client's own id");
    assert_eq!(subscription(&b.recv().await.expect("b's ack")), 1);
    hub.deliver(tools_changed()).await.expect("ok");
    hub.deliver(prompts_changed()).await.expect("ok");
    let to_a = a.recv().await.expect("a change");
    assert_eq!(
        (json(&to_a)["method"].clone(), subscription(&to_a)),
        (Value::from("notifications/tools/list_changed"), Value::from("a"))
    );
    let to_b = b.recv().await.expect("a change");
    assert_eq!(json(&to_b)["method"], "notifications/prompts/list_changed", "not the tools change it did not ask for");
    assert!(a.try_recv().is_err() && b.try_recv().is_err(), "one each");
}

#[tokio::test]
async fn the_cap_refuses_one_listener_too_many_and_a_gone_one_frees_its_slot() {
    let (hub, mut server, slots) = hub_with(16, 1);
    let filter = SubscriptionFilter::builder().tools_list_changed().build();
    let (_rx, ticket) =
        hub.submit(listen(RequestId::Number(1), filter.clone()), None, Declared::default()).await.expect("first");
    let refused = hub.submit(listen(RequestId::Number(2), filter.clone()), None, Declared::default()).await;
    assert_eq!(refused.err(), Some(NotTaken::TooManyListeners));
    drop(ticket);
    assert_eq!(slots.open(), 0);
    let _ = server.recv().await;
    hub.submit(listen(RequestId::Number(3), filter), None, Declared::default()).await.expect("room again");
}

#[tokio::test]
async fn a_listener_whose_queue_is_full_is_ended_and_counted_without_holding_up_others() {
    let (hub, mut server, slots) = hub_with(1, 8);
    let filter = SubscriptionFilter::builder().tools_list_changed().build();
    let (_slow, _ts) =
        hub.submit(listen(RequestId::Number(1), filter.clone()), None, Declared::default()).await.expect("slow");
    let (mut fast, _tf) =
        hub.submit(listen(RequestId::Number(2), filter.clone()), None, Declared::default()).await.expect("fast");
    let (slow_id, fast_id) =
        (entered_id(*server.recv().await.expect("1")), entered_id(*server.recv().await.expect("2")));
    hub.deliver(ack(&slow_id, filter.clone())).await.expect("ok");
    hub.deliver(ack(&fast_id, filter)).await.expect("ok");
    assert!(fast.recv().await.is_some(), "fast reads its ack");
    // The slow one never reads: its one slot holds the ack, so the change finds it full.
    hub.deliver(tools_changed()).await.expect("ok, at once");
    assert_eq!(json(&fast.recv().await.expect("a change"))["method"], "notifications/tools/list_changed");
    assert_eq!((slots.open(), slots.ended_slow()), (1, 1));
    let JsonRpcMessage::Notification(n) = *server.recv().await.expect("a cancel") else { panic!("a notification") };
    assert!(matches!(n.notification, ClientNotification::CancelledNotification(_)), "the server ends it too");
}

#[tokio::test]
async fn completing_listeners_answers_each_with_its_result_and_takes_no_more() {
    let (hub, mut server, slots) = hub_with(16, 8);
    let filter = SubscriptionFilter::builder().tools_list_changed().build();
    let (mut rx, _t) = hub
        .submit(listen(RequestId::String("s".into()), filter.clone()), None, Declared::default())
        .await
        .expect("listen");
    let id = entered_id(*server.recv().await.expect("listen"));
    hub.deliver(ack(&id, filter.clone())).await.expect("ok");
    let _ = rx.recv().await;
    hub.complete_listeners();
    let done = rx.recv().await.expect("the result");
    assert!(done.is_response());
    let done = json(&done);
    assert_eq!(done["id"], "s");
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(done["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "s");
    assert!(rx.recv().await.is_none(), "then the stream ends");
    assert_eq!(slots.open(), 0);
    let refused = hub.submit(listen(RequestId::Number(2), filter), None, Declared::default()).await;
    assert_eq!(refused.err(), Some(NotTaken::Ended), "a draining hub takes no new listener");
}

#[tokio::test]
async fn a_resource_update_reaches_only_the_listeners_of_its_uri() {
    let (hub, mut server, _slots) = hub_with(16, 8);
    let a_filter = SubscriptionFilter::builder().resource_subscription("test://a").build();
    let b_filter = SubscriptionFilter::builder().resource_subscription("test://b").build();
    let (mut a, _ta) =
        hub.submit(listen(RequestId::Number(1), a_filter.clone()), None, Declared::default()).await.expect("a");
    let (mut b, _tb) =
        hub.submit(listen(RequestId::Number(2), b_filter.clone()), None, Declared::default()).await.expect("b");
    let (id_a, id_b) = (entered_id(*server.recv().await.expect("a")), entered_id(*server.recv().await.expect("b")));
    hub.deliver(ack(&id_a, a_filter)).await.expect("ok");
    hub.deliver(ack(&id_b, b_filter)).await.expect("ok");
    let _ = (a.recv().await, b.recv().await);
    let updated = |uri: &str| {
        // As an upstream may relay it: with a subscription id of its own, which the hub replaces.
        let mut n = ServerNotification::ResourceUpdatedNotification(rmcp::model::ResourceUpdatedNotification::new(
            rmcp::model::ResourceUpdatedNotificationParam::new(uri),
        ));
        n.get_meta_mut().set_subscription_id(RequestId::Number(999));
        JsonRpcMessage::notification(n)
    };
    hub.deliver(updated("test://b")).await.expect("ok");
    hub.deliver(updated("test://a")).await.expect("ok");
    let to_a = a.recv().await.expect("a's update");
    assert_eq!((json(&to_a)["params"]["uri"].clone(), subscription(&to_a)), (Value::from("test://a"), Value::from(1)));
    let to_b = b.recv().await.expect("b's update");
    assert_eq!((json(&to_b)["params"]["uri"].clone(), subscription(&to_b)), (Value::from("test://b"), Value::from(2)));
    assert!(a.try_recv().is_err() && b.try_recv().is_err(), "one each");
}
