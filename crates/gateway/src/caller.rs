//! The edge's [`Identity`] as the core's policy reads it: one conversion, used for a
//! session when it is created and for a stateless request when it arrives, so both are
//! judged by the same attributes. An identity's serial is its attributes' serial: the edge
//! hands out the same identity for a token on every request, so the policy works out once
//! which of its rules are for it.

use mcpgw_core::Caller;
use mcpgw_core::policy::Attributes;
use mcpgw_transport::auth::Identity;
use serde_json::Value;

/// The policy's caller of `identity` (no copy: it reads the identity itself).
pub(crate) fn of(identity: &Identity) -> Caller {
    Caller::new(Attributed(identity.clone()))
}

struct Attributed(Identity);

impl Attributes for Attributed {
    fn subject(&self) -> Option<&str> {
        self.0.subject_name()
    }

    fn token_name(&self) -> Option<&str> {
        self.0.token_name()
    }

    fn has_scope(&self, scope: &str) -> bool {
        self.0.has_scope(scope)
    }

    fn claim(&self, name: &str) -> Option<&Value> {
        self.0.claim(name)
    }

    fn serial(&self) -> Option<u64> {
        Some(self.0.serial())
    }
}
