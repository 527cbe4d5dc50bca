//! What a session keeps for its whole life, across runs of its server: its key among the
//! upstreams' audiences, the way to notify its client, the caller it was opened by and the
//! policy it is served under, and the `initialize` handshake a parked session's next
//! server starts from (and, in a cluster, the server of the instance that takes the
//! session over).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::{Peer, RoleServer};

use crate::audit::{Audit, Origin};
use crate::channel::{Notifier, Recorder};
use crate::handshake::Handshake;
use crate::policy::{Caller, Policies};
use crate::upstream::link::{Link, SessionKey};

/// One session's lasting state.
pub(crate) struct SessionState {
    pub(crate) key: SessionKey,
    pub(crate) notifier: Notifier,
    /// Who opened the session (`None`: authentication is off, or this is the hub, whose
    /// requests each carry their own).
    pub(crate) caller: Option<Caller>,
    /// The policy in force, swapped by reloads.
    pub(crate) policies: Arc<Policies>,
    /// How its tool calls are audited, and where they come from.
    pub(crate) audit: Audit,
    pub(crate) origin: Origin,
    /// Who records the handshake before its answer leaves (a cluster's store); `None`
    /// for a single node.
    pub(crate) recorder: Option<Recorder>,
    handshake: OnceLock<Handshake>,
    /// Set once the session holds nothing that only a running server keeps (its own
    /// upstream connections do).
    may_park: Arc<AtomicBool>,
    /// The shared links whose audience it is in, left when the session ends.
    attached: Mutex<Vec<Arc<Link>>>,
}

impl SessionState {
    pub(crate) fn new(
        key: SessionKey,
        notifier: Notifier,
        caller: Option<Caller>,
        policies: Arc<Policies>,
        audit: Audit,
        origin: Origin,
        recorder: Option<Recorder>,
    ) -> Self {
        Self {
            key,
            notifier,
            caller,
            policies,
            audit,
            origin,
            recorder,
            handshake: OnceLock::new(),
            may_park: Arc::new(AtomicBool::new(false)),
            attached: Mutex::new(Vec::new()),
        }
    }

    /// The handshake, once the first server run completed it.
    pub(crate) fn handshake(&self) -> Option<&Handshake> {
        self.handshake.get()
    }

    /// Records the handshake; `may_park` says whether a quiet session may let its server go.
    pub(crate) fn initialized(&self, handshake: Handshake, may_park: bool) {
        let _ = self.handshake.set(handshake);
        self.may_park.store(may_park, Ordering::Release);
    }

    pub(crate) fn may_park(&self) -> Arc<AtomicBool> {
        self.may_park.clone()
    }

    /// Joins `link`'s audience; `owner` is the running server, for a link of the
    /// session's own.
    pub(crate) fn attach(&self, link: &Arc<Link>, owner: Option<Peer<RoleServer>>) {
        link.attach(self.key, self.notifier.clone(), owner);
        let mut attached = self.attached.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !attached.iter().any(|l| Arc::ptr_eq(l, link)) {
            attached.push(link.clone());
        }
    }

    /// Leaves every audience: the session has ended.
    pub(crate) fn detach_all(&self) {
        self.policies.forget(self.key);
        let attached = std::mem::take(&mut *self.attached.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for link in attached {
            link.detach(self.key);
        }
    }
}
