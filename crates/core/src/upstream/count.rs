//! What is counted per upstream across all its connections: the live ones (against its
//! cap), restarts and failed lists (for the metrics), and the era an `era = "auto"`
//! upstream was found to speak.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use crate::upstream::spec::Era;

/// Live connections of one upstream (counted against its cap) and how often they ended
/// unexpectedly and were restarted.
#[derive(Debug, Default)]
pub struct ConnectionCount {
    pub(super) live: AtomicUsize,
    pub(super) restarts: AtomicU64,
    pub(super) list_failures: AtomicU64,
    /// The era an `era = "auto"` upstream was last started in by a connection preferring the
    /// handshake era (index 0) or the modern one (index 1) (0: not found yet, 1: handshake, 2:
    /// modern), so a new session's connection need not ask again.
    found: [AtomicU8; 2],
}

impl ConnectionCount {
    /// Live connections now.
    pub fn get(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Connections that ended on their own (a child exited, a remote dropped) so far.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// List requests (`tools/list`, …) that failed or passed their deadline so far.
    pub fn list_failures(&self) -> u64 {
        self.list_failures.load(Ordering::Relaxed)
    }

    /// The era an `auto` upstream was last started in by a connection preferring `prefers`.
    pub fn found_era(&self, prefers: Era) -> Option<Era> {
        match self.found[usize::from(prefers == Era::Modern)].load(Ordering::Relaxed) {
            1 => Some(Era::Handshake),
            2 => Some(Era::Modern),
            _ => None,
        }
    }

    pub(super) fn set_found_era(&self, prefers: Era, era: Era) {
        let code = match era {
            Era::Handshake => 1,
            Era::Modern => 2,
            Era::Auto => 0,
        };
        self.found[usize::from(prefers == Era::Modern)].store(code, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_era_found_is_kept_for_each_preference() {
        let count = ConnectionCount::default();
        assert_eq!(count.found_era(Era::Handshake), None);
        count.set_found_era(Era::Handshake, Era::Handshake);
        count.set_found_era(Era::Modern, Era::Modern);
        assert_eq!(count.found_era(Era::Handshake), Some(Era::Handshake));
        assert_eq!(count.found_era(Era::Modern), Some(Era::Modern));
        count.set_found_era(Era::Handshake, Era::Modern);
        assert_eq!(count.found_era(Era::Handshake), Some(Era::Modern));
        assert_eq!(count.found_era(Era::Modern), Some(Era::Modern));
    }
}
