//! Who is calling: a caller's [`Attributes`] (what its credential says, as the gateway
//! reads the edge's identity; the transport and this crate share no types) behind a cheap
//! [`Caller`] handle. The policy matches its rules on them, and an upstream that takes
//! values from its caller (`${claim:…}`) reads them.

use std::sync::Arc;

use serde_json::Value;

/// What the policy reads of a caller: the edge's identity, seen through the gateway (the
/// transport and this crate share no types).
pub trait Attributes: Send + Sync + 'static {
    /// The subject of a JWT (`sub`); `None` for a static token.
    fn subject(&self) -> Option<&str>;
    /// The configured name of a static token; `None` for a JWT or an unnamed token.
    fn token_name(&self) -> Option<&str>;
    /// Whether the credential was granted `scope`.
    fn has_scope(&self, scope: &str) -> bool;
    /// A claim of a JWT (`groups`, `realm_access`, …).
    fn claim(&self, name: &str) -> Option<&Value>;
    /// A number naming these attributes: callers given the same one have the same
    /// attributes, and no caller with others ever gets it. The policy remembers which of
    /// its rules match a caller by it. `None` (the default): no such number, the rules are
    /// matched on every request.
    fn serial(&self) -> Option<u64> {
        None
    }
}

/// An authenticated caller, as the policy sees it; cheap to clone. A session gets the
/// caller that opened it; a stateless request carries its own in its extensions. No caller
/// at all: authentication is off.
#[derive(Clone)]
pub struct Caller(Arc<dyn Attributes>);

impl Caller {
    /// The caller with these attributes.
    pub fn new(attributes: impl Attributes) -> Self {
        Self(Arc::new(attributes))
    }

    /// What its credential says about it.
    pub fn attributes(&self) -> &dyn Attributes {
        &*self.0
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("subject", &self.0.subject())
            .field("token", &self.0.token_name())
            .finish_non_exhaustive()
    }
}
