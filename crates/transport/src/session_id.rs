//! The typed session id, minted here and parsed once at the edge.

use std::fmt;
use std::str::FromStr;

/// A session id: 128 random bits, written as 32 lowercase hex digits.
///
/// It is never derived from anything the client sent, never reused, and made only of
/// visible ASCII, as the spec requires of `Mcp-Session-Id`. An instance of a cluster mints
/// ids whose first 16 bits (4 hex digits) are its [`NodeTag`], leaving 112 random bits, so
/// a load balancer routes every request of a session to the instance that holds it by
/// reading the id alone.
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

    /// A fresh id minted by the cluster node `tag`: the tag, then 112 random bits.
    pub fn random_on(tag: NodeTag) -> Self {
        let random = Self::random().0 & (u128::MAX >> 16);
        Self((u128::from(tag.0) << 112) | random)
    }

    /// The node tag this id starts with (meaningful only for ids a cluster node minted).
    pub fn node(self) -> NodeTag {
        // The shift leaves 16 bits.
        NodeTag((self.0 >> 112) as u16)
    }
}

/// The tag of one instance of a cluster: 16 bits, written as 4 lowercase hex digits, the
/// first 4 of every session id the instance mints.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeTag(u16);

/// The text was not 4 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a node tag is 4 hex digits")]
pub struct MalformedNodeTag;

impl NodeTag {
    /// The tag whose text is the first 4 hex digits of `hex` (a digest, say).
    pub fn from_prefix(hex: &str) -> Result<Self, MalformedNodeTag> {
        hex.get(..4).ok_or(MalformedNodeTag)?.parse()
    }
}

impl FromStr for NodeTag {
    type Err = MalformedNodeTag;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(MalformedNodeTag);
        }
        u16::from_str_radix(s, 16).map(Self).map_err(|_| MalformedNodeTag)
    }
}

impl fmt::Display for NodeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}", self.0)
    }
}

impl fmt::Debug for NodeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeTag({self})")
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
    fn a_nodes_ids_start_with_its_tag_and_stay_random() {
        let tag: NodeTag = "0a2F".parse().expect("a tag");
        assert_eq!(tag.to_string(), "0a2f");
        let (a, b) = (SessionId::random_on(tag), SessionId::random_on(tag));
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(id.to_string().starts_with("0a2f"), "{id}");
            assert_eq!(id.node(), tag);
            assert_eq!(id.to_string().parse::<SessionId>(), Ok(id));
        }
        assert_eq!(NodeTag::from_prefix("ffee0011"), Ok("ffee".parse().expect("a tag")));
        for bad in ["", "abc", "abcde", "zzzz", "+abc"] {
            assert_eq!(bad.parse::<NodeTag>(), Err(MalformedNodeTag), "{bad:?}");
        }
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in ["", "abc", "zz000000000000000000000000000000", &"0".repeat(33), "+0000000000000000000000000000000"]
        {
            assert_eq!(bad.parse::<SessionId>(), Err(MalformedSessionId), "{bad:?}");
        }
    }
}
