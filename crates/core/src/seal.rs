//! Sealing the `requestState` of an input-required result (2026-07-28 MRTR). The client
//! echoes the state back on its retry, so what comes back is attacker-controlled: it is
//! tagged with HMAC-SHA256 under a key only the gateway has, and says in the clear what it
//! is bound to, so a refusal can name why.
//!
//! A sealed state is `base64url(payload) "." base64url(tag)`, the payload being a nonce
//! (16 bytes: the key of the parked call, usable once), the expiry (Unix milliseconds, 8
//! bytes), the caller (32 bytes: a keyed digest of its credential, so the state reveals
//! nothing of it) and the request (32 bytes: SHA-256 of the request without `_meta`,
//! `inputResponses` and `requestState`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::error::Error;

type HmacSha256 = Hmac<Sha256>;

/// What a state's tag covers first: a state of another kind or version never opens.
const DOMAIN: &[u8] = b"mcpgw-request-state-v1";
const PAYLOAD_LEN: usize = 16 + 8 + 32 + 32;
/// A configured key shorter than this is refused.
pub const MIN_KEY_LEN: usize = 32;

/// The key parked calls' states are sealed with.
pub struct Sealer {
    mac: HmacSha256,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// The key of a parked call.
pub(crate) type Nonce = [u8; 16];

/// What a sealed state says, once its tag is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) nonce: Nonce,
    /// Unix milliseconds.
    pub(crate) expires: u64,
    pub(crate) caller: [u8; 32],
    pub(crate) request: [u8; 32],
}

/// Why an echoed state is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not a state this gateway sealed, or altered since.
    Forged,
    /// Past its expiry; the nonce says which call it was.
    Expired(Nonce),
    /// Sealed for another caller.
    OtherCaller(Nonce),
    /// Sealed for another request.
    OtherRequest(Nonce),
}

impl Refused {
    /// The parked call the state names, when its tag held.
    pub(crate) fn nonce(&self) -> Option<Nonce> {
        match self {
            Refused::Forged => None,
            Refused::Expired(n) | Refused::OtherCaller(n) | Refused::OtherRequest(n) => Some(*n),
        }
    }

    pub(crate) fn why(&self) -> &'static str {
        match self {
            Refused::Forged => "requestState was not issued by this gateway or was altered",
            Refused::Expired(_) => "requestState has expired",
            Refused::OtherCaller(_) => "requestState was issued to another credential",
            Refused::OtherRequest(_) => "requestState was issued for another request",
        }
    }
}

impl Sealer {
    /// A sealer with a configured key (at least [`MIN_KEY_LEN`] bytes).
    pub fn new(key: &[u8]) -> Result<Self, Error> {
        if key.len() < MIN_KEY_LEN {
            return Err(Error::Config(format!(
                "the request state key has {} bytes; at least {MIN_KEY_LEN} are needed",
                key.len()
            )));
        }
        let mac = <HmacSha256 as KeyInit>::new_from_slice(key).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self { mac })
    }

    /// A sealer with a random key: states it seals open only in this process.
    pub fn generate() -> Result<Self, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| Error::Config(format!("no random key: {e}")))?;
        Self::new(&key)
    }

    /// The keyed digest of a caller's credential (empty when authentication is off).
    pub(crate) fn caller(&self, credential: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(b"caller\0");
        mac.update(credential);
        mac.finalize().into_bytes().into()
    }

    /// A fresh state for a parked call, valid for `ttl`.
    pub(crate) fn fresh(&self, caller: [u8; 32], request: [u8; 32], ttl: Duration) -> Result<State, Error> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| Error::Config(format!("no random nonce: {e}")))?;
        let expires = now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        Ok(State { nonce, expires, caller, request })
    }

    pub(crate) fn seal(&self, state: &State) -> String {
        let mut payload = Vec::with_capacity(PAYLOAD_LEN);
        payload.extend_from_slice(&state.nonce);
        payload.extend_from_slice(&state.expires.to_be_bytes());
        payload.extend_from_slice(&state.caller);
        payload.extend_from_slice(&state.request);
        let tag = self.tag(&payload);
        format!("{}.{}", BASE64_URL_SAFE_NO_PAD.encode(&payload), BASE64_URL_SAFE_NO_PAD.encode(tag))
    }

    /// Opens an echoed state for `caller`'s `request`: the tag first, then what it is
    /// bound to.
    pub(crate) fn open(&self, sealed: &str, caller: &[u8; 32], request: &[u8; 32]) -> Result<State, Refused> {
        let (payload, tag) = sealed.split_once('.').ok_or(Refused::Forged)?;
        let payload = BASE64_URL_SAFE_NO_PAD.decode(payload).map_err(|_| Refused::Forged)?;
        let tag = BASE64_URL_SAFE_NO_PAD.decode(tag).map_err(|_| Refused::Forged)?;
        if payload.len() != PAYLOAD_LEN {
            return Err(Refused::Forged);
        }
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(&payload);
        mac.verify_slice(&tag).map_err(|_| Refused::Forged)?;
        let field = |from: usize, to: usize| &payload[from..to];
        let mut state = State { nonce: [0; 16], expires: 0, caller: [0; 32], request: [0; 32] };
        state.nonce.copy_from_slice(field(0, 16));
        let mut expires = [0u8; 8];
        expires.copy_from_slice(field(16, 24));
        state.expires = u64::from_be_bytes(expires);
        state.caller.copy_from_slice(field(24, 56));
        state.request.copy_from_slice(field(56, 88));
        if state.expires <= now_ms() {
            return Err(Refused::Expired(state.nonce));
        }
        if state.caller != *caller {
            return Err(Refused::OtherCaller(state.nonce));
        }
        if state.request != *request {
            return Err(Refused::OtherRequest(state.nonce));
        }
        Ok(state)
    }

    fn tag(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

/// SHA-256 of a request as a state binds it: its method and its params without `_meta`,
/// `inputResponses` and `requestState`, object keys sorted (a retry may order them anew).
pub(crate) fn request_digest(method: &str, params: &serde_json::Value) -> [u8; 32] {
    let mut params = params.clone();
    if let Some(object) = params.as_object_mut() {
        for key in ["_meta", "inputResponses", "requestState"] {
            object.remove(key);
        }
    }
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update([0]);
    hash.update(canonical(&params).as_bytes());
    hash.finalize().into()
}

fn canonical(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", serde_json::Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::new(&[7u8; 32]).expect("a 32-byte key")
    }

    #[test]
    fn a_sealed_state_opens_for_its_caller_and_request_only() {
        let s = sealer();
        let (alice, bob) = (s.caller(b"alice"), s.caller(b"bob"));
        let request = request_digest("tools/call", &serde_json::json!({"name": "t", "arguments": {"a": 1, "b": 2}}));
        let reordered =
            request_digest("tools/call", &serde_json::json!({"arguments": {"b": 2, "a": 1}, "name": "t", "_meta": {}}));
        assert_eq!(request, reordered);
        let other = request_digest("tools/call", &serde_json::json!({"name": "u"}));
        let state = s.fresh(alice, request, Duration::from_secs(60)).expect("a state");
        let sealed = s.seal(&state);
        assert_eq!(s.open(&sealed, &alice, &request), Ok(state.clone()));
        assert_eq!(s.open(&sealed, &bob, &request), Err(Refused::OtherCaller(state.nonce)));
        assert_eq!(s.open(&sealed, &alice, &other), Err(Refused::OtherRequest(state.nonce)));
        let mut tampered = sealed.clone().into_bytes();
        tampered[3] ^= 1;
        assert_eq!(s.open(&String::from_utf8(tampered).expect("ascii"), &alice, &request), Err(Refused::Forged));
        let stranger = Sealer::new(&[8u8; 32]).expect("a key");
        assert_eq!(stranger.open(&sealed, &alice, &request), Err(Refused::Forged));
        assert_eq!(s.open("not a state", &alice, &request), Err(Refused::Forged));
    }

    #[test]
    fn an_expired_state_is_refused() {
        let s = sealer();
        let (caller, request) = (s.caller(b""), [1u8; 32]);
        let state = s.fresh(caller, request, Duration::ZERO).expect("a state");
        assert_eq!(s.open(&s.seal(&state), &caller, &request), Err(Refused::Expired(state.nonce)));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Sealer::new(&[1u8; 31]).is_err());
    }
}
