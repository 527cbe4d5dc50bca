//! [`ProtocolVersion`]: the MCP revisions mcpgw knows, parsed once from text and compared
//! by their order, never as strings.

use std::fmt;
use std::str::FromStr;

/// An MCP protocol revision, oldest first: comparing two gives their order in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// 2024-11-05: HTTP+SSE.
    V2024_11_05,
    /// 2025-03-26: Streamable HTTP; JSON-RPC batches.
    V2025_03_26,
    /// 2025-06-18: no batches; `MCP-Protocol-Version` on every request.
    V2025_06_18,
    /// 2025-11-25: event streams start with a priming event.
    V2025_11_25,
    /// 2026-07-28: no sessions; each request carries its version and capabilities.
    V2026_07_28,
}

/// The text names no revision mcpgw knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an unknown MCP protocol version")]
pub struct UnknownVersion;

impl ProtocolVersion {
    /// Every known revision, oldest first.
    pub const ALL: [ProtocolVersion; 5] = [
        ProtocolVersion::V2024_11_05,
        ProtocolVersion::V2025_03_26,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2026_07_28,
    ];

    /// The revision's name, as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V2024_11_05 => "2024-11-05",
            ProtocolVersion::V2025_03_26 => "2025-03-26",
            ProtocolVersion::V2025_06_18 => "2025-06-18",
            ProtocolVersion::V2025_11_25 => "2025-11-25",
            ProtocolVersion::V2026_07_28 => "2026-07-28",
        }
    }

    /// Whether it is of the handshake era: its clients open a session with `initialize`.
    pub fn has_sessions(self) -> bool {
        self < ProtocolVersion::V2026_07_28
    }

    /// Whether its clients may POST JSON-RPC batches (only 2025-03-26 allowed them).
    pub fn allows_batches(self) -> bool {
        self == ProtocolVersion::V2025_03_26
    }

    /// Whether its clients expect every event stream to start with a priming event (an id
    /// and no data), so they can resume before any message came; older clients crashed on
    /// empty events.
    pub fn primes_streams(self) -> bool {
        self >= ProtocolVersion::V2025_11_25
    }
}

impl FromStr for ProtocolVersion {
    type Err = UnknownVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|v| v.as_str() == s).ok_or(UnknownVersion)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_known_version_and_nothing_else() {
        for v in ProtocolVersion::ALL {
            assert_eq!(v.as_str().parse(), Ok(v));
        }
        for bad in ["", "1999-01-01", "2025-06-18 ", "2025-6-18", "2026-07-29"] {
            assert_eq!(bad.parse::<ProtocolVersion>(), Err(UnknownVersion), "{bad:?}");
        }
    }

    #[test]
    fn order_is_the_order_in_time() {
        let mut sorted = ProtocolVersion::ALL;
        sorted.sort_by_key(|v| v.as_str());
        assert_eq!(sorted, ProtocolVersion::ALL, "the names sort like the revisions");
        assert!(ProtocolVersion::V2025_11_25.primes_streams() && !ProtocolVersion::V2025_06_18.primes_streams());
        assert!(ProtocolVersion::V2026_07_28.primes_streams());
        assert!(!ProtocolVersion::V2026_07_28.has_sessions() && ProtocolVersion::V2024_11_05.has_sessions());
        assert!(ProtocolVersion::V2025_03_26.allows_batches() && !ProtocolVersion::V2025_06_18.allows_batches());
    }
}
