//! The policy on a request's way: whom it is for (the session's caller, or a stateless
//! request's own), the catalog as that caller sees it, and the pinned arguments of a call.
//!
//! Shaping a catalog walks all of it, so the shaped catalogs are kept: one per set of
//! rules matching a caller, catalog and policy. A session has one caller, so it keeps one
//! entry; the hub keeps a few, one per kind of caller seen lately.

use std::sync::{Arc, PoisonError};

use rmcp::ErrorData;
use rmcp::model::{CallToolRequestParams, Extensions};
use serde_json::{Map, Value};

use super::{Built, Proxy};
use crate::policy::{Caller, Matched, Policy, shape};

/// How many shaped catalogs a server keeps.
const KEPT: usize = 8;

/// The policy in force and the rules of it that are for a request's caller.
pub(super) struct View {
    policy: Arc<Policy>,
    matched: Matched,
}

/// A catalog shaped for one set of rules.
pub(super) struct Shaped {
    base: Arc<Built>,
    generation: u64,
    matched: Matched,
    shaped: Arc<Built>,
}

impl Proxy {
    /// What the policy says to a request with these extensions: `None` when it lets
    /// everything through.
    pub(super) fn view(&self, extensions: &Extensions) -> Option<View> {
        let policy = self.state.policies.current();
        if policy.is_open() {
            return None;
        }
        // A session's requests are its caller's; the hub's each carry their own.
        let caller = match self.modern {
            Some(_) => extensions.get::<Caller>(),
            None => self.state.caller.as_ref(),
        };
        let matched = policy.matching(caller);
        Some(View { policy, matched })
    }

    /// `base` as `view`'s caller sees it.
    pub(super) fn shape(&self, base: Arc<Built>, view: Option<&View>) -> Arc<Built> {
        let Some(View { policy, matched }) = view else { return base };
        let generation = policy.generation();
        let mut kept = self.shaped.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hit) =
            kept.iter().find(|s| Arc::ptr_eq(&s.base, &base) && s.generation == generation && s.matched == *matched)
        {
            return hit.shaped.clone();
        }
        let catalog = Arc::new(shape::shape(policy, matched, &base.catalog, &self.names));
        let shaped = Arc::new(Built { catalog, generations: base.generations.clone(), missing: base.missing.clone() });
        // Entries of an older catalog or policy are never hit again.
        kept.retain(|s| Arc::ptr_eq(&s.base, &base) && s.generation == generation);
        if kept.len() >= KEPT {
            kept.remove(0);
        }
        kept.push(Shaped { base, generation, matched: matched.clone(), shaped: shaped.clone() });
        shaped
    }
}

/// Sets a call's pinned arguments. One the client gave itself is refused, never silently
/// replaced: the tool's schema as the client saw it has no such argument, so a client
/// sending one is mistaken about what it calls, and should hear so.
pub(super) fn pin(params: &mut CallToolRequestParams, pins: &Map<String, Value>) -> Result<(), ErrorData> {
    let arguments = params.arguments.get_or_insert_with(Map::new);
    if let Some(given) = pins.keys().find(|k| arguments.contains_key(k.as_str())) {
        return Err(ErrorData::invalid_params(
            format!("argument '{given}' is set by the gateway for this tool and cannot be given"),
            None,
        ));
    }
    arguments.extend(pins.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(())
}
