//! `subscriptions/listen` as the hub sees it: the slots that cap how many listen streams
//! are open, what one listener was acknowledged for, and which of the server's own
//! notifications (list changes, resource updates, sent for no request) it takes.
//!
//! A listener is one open stream of this instance: nothing of it outlives the stream or is
//! shared with another instance. The server (the proxy) sends the acknowledgement, with
//! the filter it honours, under the hub's id for the listen request; the hub keeps that
//! filter and from then on hands the listener every list change and resource update it
//! asked for, each tagged with the client's own id as the subscription id.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rmcp::model::{GetMeta, RequestId, ServerNotification, ServerResult, SubscriptionFilter};

/// The listen streams open now, under a cap, and how many were ended for not reading.
/// Shared by every hub of a gateway (a reload's new hub included), so the cap and the
/// figures hold across hubs.
#[derive(Debug)]
pub struct ListenerSlots {
    cap: usize,
    open: AtomicUsize,
    ended_slow: AtomicU64,
}

impl ListenerSlots {
    /// At most `cap` listen streams open at once.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self { cap, open: AtomicUsize::new(0), ended_slow: AtomicU64::new(0) })
    }

    /// Listen streams open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Listen streams ended so far because their client did not read them fast enough.
    pub fn ended_slow(&self) -> u64 {
        self.ended_slow.load(Ordering::Relaxed)
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// A slot for one more listener, unless the cap is reached; freed when dropped.
    pub(super) fn take(self: &Arc<Self>) -> Option<Slot> {
        self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.cap).then_some(n + 1)).ok()?;
        Some(Slot(self.clone()))
    }

    pub(super) fn count_slow(&self) {
        self.ended_slow.fetch_add(1, Ordering::Relaxed);
    }
}

impl Default for ListenerSlots {
    fn default() -> Self {
        Self { cap: DEFAULT_MAX_LISTENERS, open: AtomicUsize::new(0), ended_slow: AtomicU64::new(0) }
    }
}

/// Listen streams open at once unless configured (`[sessions] max_listeners`).
pub const DEFAULT_MAX_LISTENERS: usize = 1024;

/// One listener's place under the cap.
#[derive(Debug)]
pub(super) struct Slot(Arc<ListenerSlots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the hub keeps of a listen request besides its route.
#[derive(Debug)]
pub(super) struct Listening {
    _slot: Slot,
    /// The filter acknowledged; `None` until the acknowledgement went by (nothing is
    /// sent before it: it is the stream's first message).
    accepted: Option<SubscriptionFilter>,
}

impl Listening {
    pub(super) fn new(slot: Slot) -> Self {
        Self { _slot: slot, accepted: None }
    }

    /// Records the acknowledged filter.
    pub(super) fn acknowledged(&mut self, filter: SubscriptionFilter) {
        self.accepted = Some(filter);
    }

    /// Whether this listener asked for `notification`.
    pub(super) fn wants(&self, notification: &ServerNotification) -> bool {
        let Some(filter) = &self.accepted else { return false };
        let on = |flag: Option<bool>| flag == Some(true);
        match notification {
            ServerNotification::ToolListChangedNotification(_) => on(filter.tools_list_changed),
            ServerNotification::PromptListChangedNotification(_) => on(filter.prompts_list_changed),
            ServerNotification::ResourceListChangedNotification(_) => on(filter.resources_list_changed),
            ServerNotification::ResourceUpdatedNotification(n) => {
                filter.resource_subscriptions.as_ref().is_some_and(|uris| uris.contains(&n.params.uri))
            }
            _ => false,
        }
    }
}

/// Whether the server sends this to listeners (it is for no request).
pub(super) fn is_broadcast(notification: &ServerNotification) -> bool {
    matches!(
        notification,
        ServerNotification::ToolListChangedNotification(_)
            | ServerNotification::PromptListChangedNotification(_)
            | ServerNotification::ResourceListChangedNotification(_)
            | ServerNotification::ResourceUpdatedNotification(_)
    )
}

/// The listen request an acknowledgement answers (the subscription its `_meta` names); `None`
/// for any other notification. The server sends nothing else under a subscription (the hub
/// tags the rest itself), so a subscription id on anything else, relayed from an upstream,
/// routes nothing.
pub(super) fn acknowledges(notification: &mut ServerNotification) -> Option<RequestId> {
    match notification {
        ServerNotification::SubscriptionsAcknowledgedNotification(_) => notification.get_meta_mut().subscription_id(),
        _ => None,
    }
}

/// Names the client's own listen request as the notification's subscription.
pub(super) fn tag(notification: &mut ServerNotification, client_id: &RequestId) {
    notification.get_meta_mut().set_subscription_id(client_id.clone());
}

/// Names the client's own listen request in a listen result.
pub(super) fn tag_result(result: &mut ServerResult, client_id: &RequestId) {
    if let ServerResult::SubscriptionsListenResult(r) = result {
        r.meta.set_subscription_id(client_id.clone());
    }
}
