//! [`Identity`]: who a caller is, decided once at the edge and carried by its session (or
//! its stateless request). Two identities are the same caller when they name the same
//! [`Principal`]: a refreshed token of the same subject keeps its session, whatever else
//! changed in its claims.
//!
//! One `Identity` stands for one verified credential and is kept with it (a static token's
//! in the configuration, a JWT's in the cache of verified tokens), so a client that sends
//! the same token on every request brings the same `Identity` each time. What is derived
//! from it per request is therefore worked out once and kept on it: its [`serial`] lets the
//! policy remember which rules match it, and the request parts that name it to the server
//! on the stateless path are made on first use.
//!
//! [`serial`]: Identity::serial

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use http::request::Parts;
use serde_json::{Map, Value};

/// Who a caller is, as a session is bound to it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A static bearer token, by its SHA-256 digest.
    Token([u8; 32]),
    /// The subject of a JWT access token, within its issuer (a subject is only unique
    /// within the issuer that assigned it).
    Subject {
        /// The token's `iss`, as configured.
        issuer: Arc<str>,
        /// The token's `sub`.
        subject: Arc<str>,
    },
}

impl fmt::Debug for Principal {
    /// A static token shows only a prefix of its digest: enough to tell tokens apart in
    /// logs, and the token can never be recovered from it anyway.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Token(d) => write!(f, "Token({:02x}{:02x}{:02x}{:02x}…)", d[0], d[1], d[2], d[3]),
            Principal::Subject { issuer, subject } => write!(f, "Subject({subject} @ {issuer})"),
        }
    }
}

/// A caller: its principal, and what its credential said about it (the scopes it was
/// granted and, for a JWT, every claim, for the policy to read). Cheap to clone.
#[derive(Clone)]
pub struct Identity(Arc<Inner>);

struct Inner {
    principal: Principal,
    /// A static token's configured name.
    name: Option<Arc<str>>,
    scopes: Box<[String]>,
    claims: Map<String, Value>,
    serial: u64,
    /// The parts a stateless request of this caller carries into the server.
    parts: OnceLock<Parts>,
}

/// The next [`Identity::serial`]; 64 bits never wrap at any rate of new credentials.
static SERIALS: AtomicU64 = AtomicU64::new(1);

impl Inner {
    fn new(principal: Principal, name: Option<Arc<str>>, scopes: Box<[String]>, claims: Map<String, Value>) -> Self {
        let serial = SERIALS.fetch_add(1, Ordering::Relaxed);
        Self { principal, name, scopes, claims, serial, parts: OnceLock::new() }
    }
}

impl Identity {
    /// The identity of a static token with this digest: no claims, no scopes (a static
    /// token is trusted for everything the gateway serves).
    pub fn token(digest: [u8; 32]) -> Self {
        Self(Arc::new(Inner::new(Principal::Token(digest), None, Box::default(), Map::new())))
    }

    /// The identity of a static token with this digest and a configured name (what the
    /// policy's rules name it by).
    pub fn named_token(digest: [u8; 32], name: Arc<str>) -> Self {
        Self(Arc::new(Inner::new(Principal::Token(digest), Some(name), Box::default(), Map::new())))
    }

    /// The identity of a verified JWT's subject, with its scopes and all its claims.
    pub fn subject(issuer: Arc<str>, subject: Arc<str>, scopes: Vec<String>, claims: Map<String, Value>) -> Self {
        Self(Arc::new(Inner::new(Principal::Subject { issuer, subject }, None, scopes.into_boxed_slice(), claims)))
    }

    /// A number no other identity gets: two identities with the same serial are clones of
    /// one, so everything they say (scopes, claims) is the same. Not the caller's identity
    /// for sessions ([`Principal`] is): a refreshed token of the same subject has another.
    pub fn serial(&self) -> u64 {
        self.0.serial
    }

    /// The parts a stateless request of this caller carries, made by `make` on first use.
    pub(crate) fn parts(&self, make: impl FnOnce(&Self) -> Parts) -> &Parts {
        self.0.parts.get_or_init(|| make(self))
    }

    /// Who it is.
    pub fn principal(&self) -> &Principal {
        &self.0.principal
    }

    /// The configured name of its static token; `None` for a JWT or an unnamed token.
    pub fn token_name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// The subject of its JWT; `None` for a static token.
    pub fn subject_name(&self) -> Option<&str> {
        match &self.0.principal {
            Principal::Subject { subject, .. } => Some(subject),
            Principal::Token(_) => None,
        }
    }

    /// The scopes its token was granted (`scope`, or `scp`); none for a static token.
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// Whether its token was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.iter().any(|s| s == scope)
    }

    /// A claim of its token (`groups`, `roles`, …); `None` for a static token.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.0.claims.get(name)
    }

    /// Its name in the audit log: `subject (issuer)`; for a static token `token:` and its
    /// configured name (`[auth.tokens]`), or else the first bytes of its digest (as
    /// [`Principal`]'s `Debug` shows them).
    pub fn name(&self) -> String {
        match (&self.0.principal, &self.0.name) {
            (Principal::Token(_), Some(name)) => format!("token:{name}"),
            (Principal::Token(d), None) => format!("token:{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3]),
            (Principal::Subject { issuer, subject }, _) => format!("{subject} ({issuer})"),
        }
    }
}

impl PartialEq for Identity {
    /// The same caller: the same principal, whatever its token's other claims.
    fn eq(&self, other: &Self) -> bool {
        self.0.principal == other.0.principal
    }
}

impl Eq for Identity {}

impl Hash for Identity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.principal.hash(state);
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.principal.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(sub: &str, scopes: &[&str]) -> Identity {
        Identity::subject(
            "https://idp".into(),
            sub.into(),
            scopes.iter().map(|s| (*s).to_owned()).collect(),
            Map::new(),
        )
    }

    #[test]
    fn the_same_subject_is_the_same_caller_whatever_its_scopes() {
        assert_eq!(subject("alice", &["a"]), subject("alice", &["a", "b"]));
        assert_ne!(subject("alice", &[]), subject("bob", &[]));
        let other_issuer = Identity::subject("https://other".into(), "alice".into(), vec![], Map::new());
        assert_ne!(subject("alice", &[]), other_issuer, "a subject is unique within its issuer only");
        assert_ne!(Identity::token([1; 32]), Identity::token([2; 32]));
    }

    #[test]
    fn a_named_token_is_the_same_caller_as_its_digest_and_carries_its_name() {
        let named = Identity::named_token([3; 32], "ci".into());
        assert_eq!(named, Identity::token([3; 32]));
        assert_eq!(named.token_name(), Some("ci"));
        assert_eq!(named.subject_name(), None);
        assert_eq!(subject("alice", &[]).subject_name(), Some("alice"));
        assert_eq!(subject("alice", &[]).token_name(), None);
        assert_eq!(named.name(), "token:ci", "the audit names it by its configured name");
        assert_eq!(Identity::token([3; 32]).name(), "token:03030303");
    }

    #[test]
    fn every_identity_has_its_own_serial_and_its_clones_share_it() {
        let alice = subject("alice", &["a"]);
        assert_eq!(alice.clone().serial(), alice.serial());
        let refreshed = subject("alice", &["a"]);
        assert_eq!(refreshed, alice, "the same caller");
        assert_ne!(refreshed.serial(), alice.serial(), "another credential: its claims may differ");
        assert_ne!(Identity::token([1; 32]).serial(), Identity::token([1; 32]).serial());
    }

    #[test]
    fn debug_never_shows_the_whole_digest() {
        let shown = format!("{:?}", Identity::token([0xab; 32]));
        assert!(shown.len() < 30, "{shown}");
    }
}
