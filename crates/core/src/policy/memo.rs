//! Which rules match a caller, remembered. Working it out is a pass over every rule (and,
//! for rules on groups, a walk into the caller's claims), on every request of a session and
//! every stateless request, for a caller that is nearly always one seen before: a client
//! sends the same token each time, and the edge hands out the same identity for it.
//!
//! Callers are told apart by [`Attributes::serial`](super::Attributes::serial). A memo
//! belongs to one compiled policy, so a reload (a new policy) starts with an empty one. It
//! is bounded like the edge's cache of verified tokens: when full it is emptied, and
//! callers are matched again on their next request.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::Matched;

/// The most callers remembered.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(super) struct Memo {
    entries: RwLock<HashMap<u64, Matched>>,
}

impl Memo {
    /// The rules matching the caller `serial`, worked out by `work` when not remembered.
    pub(super) fn get_or(&self, serial: u64, work: impl FnOnce() -> Matched) -> Matched {
        // Locks are held only to look up or insert; the work is done outside them.
        if let Some(matched) = self.entries.read().unwrap_or_else(PoisonError::into_inner).get(&serial) {
            return matched.clone();
        }
        let matched = work();
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(serial, matched.clone());
        matched
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.read().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("Memo").field("callers", &len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_is_worked_out_once_and_the_memo_stays_bounded() {
        let memo = Memo::default();
        let first = memo.get_or(7, || Matched::from([1, 2]));
        let again = memo.get_or(7, || panic!("worked out again"));
        assert!(std::sync::Arc::ptr_eq(&first, &again), "the remembered rules, not a copy");
        assert_eq!(&*memo.get_or(8, || Matched::from([3])), &[3]);
        for serial in 100..100 + CAPACITY as u64 {
            memo.get_or(serial, || Matched::from([]));
        }
        assert!(memo.len() <= CAPACITY);
    }
}
