//! [`Policies`]: the policy in force, shared by every session's server and the hub across
//! reloads (a reload gives new sessions new upstreams, but the policy applies to the live
//! ones too), and the sessions to tell when a reload changes what they may see.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use futures::future::join_all;
use rmcp::model::{
    PromptListChangedNotification, ResourceListChangedNotification, ServerNotification, ToolListChangedNotification,
};
use tokio_util::task::TaskTracker;

use super::{Caller, Kind, Policy};
use crate::channel::Notifier;
use crate::upstream::link::SessionKey;

/// The policy in force and the live sessions it applies to.
pub struct Policies {
    current: RwLock<Arc<Policy>>,
    sessions: Mutex<HashMap<SessionKey, Watcher>>,
}

/// A live session: who it is for and how to reach its client.
struct Watcher {
    caller: Option<Caller>,
    notifier: Notifier,
}

impl Policies {
    /// `policy` in force.
    pub fn new(policy: Arc<Policy>) -> Arc<Self> {
        Arc::new(Self { current: RwLock::new(policy), sessions: Mutex::new(HashMap::new()) })
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        // Held only to clone the Arc; a panic cannot leave it half-written.
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Puts `policy` in force. Every live session whose view it may change gets
    /// `notifications/{tools,prompts,resources}/list_changed` for the kinds concerned
    /// (sent on a task of `tasks`); their next lists and calls go by the new policy.
    pub fn replace(&self, new: Arc<Policy>, tasks: &TaskTracker) {
        let old = std::mem::replace(&mut *self.current.write().unwrap_or_else(PoisonError::into_inner), new.clone());
        let mut notes = Vec::new();
        for watcher in self.sessions.lock().unwrap_or_else(PoisonError::into_inner).values() {
            for kind in [Kind::Tool, Kind::Prompt, Kind::Resource] {
                if old.differs_for(&new, watcher.caller.as_ref(), kind) {
                    notes.push((watcher.notifier.clone(), changed(kind)));
                }
            }
        }
        if notes.is_empty() {
            return;
        }
        tracing::info!(notifications = notes.len(), "the new policy changes what live sessions see; telling them");
        // Each waits for room on its session's stream, or ends when the session does.
        tasks.spawn(join_all(notes.into_iter().map(|(notifier, note)| async move { notifier.notify(note).await })));
    }

    /// Tells the session `key` (whose caller is `caller`) about later changes.
    pub(crate) fn watch(&self, key: SessionKey, caller: Option<Caller>, notifier: Notifier) {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).insert(key, Watcher { caller, notifier });
    }

    /// Forgets the session `key`: it ended.
    pub(crate) fn forget(&self, key: SessionKey) {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
    }
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies").field("rules", &self.current().len()).finish_non_exhaustive()
    }
}

fn changed(kind: Kind) -> ServerNotification {
    match kind {
        Kind::Tool => ServerNotification::ToolListChangedNotification(ToolListChangedNotification::default()),
        Kind::Prompt => ServerNotification::PromptListChangedNotification(PromptListChangedNotification::default()),
        Kind::Resource => {
            ServerNotification::ResourceListChangedNotification(ResourceListChangedNotification::default())
        }
    }
}
