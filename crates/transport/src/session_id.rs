//! The typed session id, minted here and parsed once at the edge.

use std::fmt;
use std::str::FromStr;

/// A session id: 128 random bits, written as 32 lowercase hex digits.
///
/// It is never derived from anything the client sent, never reused, and made only of
/// visible ASCII, as the spec requires of `Mcp-Session-Id`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u128);

/// The text was not 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a session id is 32 hex digits")]
pub struct MalformedSessionId;

impl SessionId {
    /// A fresh id from the operating system's random source.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        // The OS random source only fails on exotic platforms before boot entropy is
        // available; a gateway cannot mint unguessable ids there, so refuse to continue.
        getrandom::fill(&mut bytes).expect("the OS random source is unavailable");
        Self(u128::from_le_bytes(bytes))
    }
}

impl FromStr for SessionId {
    type Err = MalformedSessionId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(MalformedSessionId);
        }
        u128::from_str_radix(s, 16).map(Self).map_err(|_| MalformedSessionId)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = SessionId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert!(text.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_eq!(text.parse::<SessionId>(), Ok(id));
    }

    #[test]
    fn fresh_ids_differ() {
        assert_ne!(SessionId::random(), SessionId::random());
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in ["", "abc", "zz000000000000000000000000000000", &"0".repeat(33), "+0000000000000000000000000000000"]
        {
            assert_eq!(bad.parse::<SessionId>(), Err(MalformedSessionId), "{bad:?}");
        }
    }
}
