//! Verified JWTs by the SHA-256 of the token, until they expire: a client sends the same
//! token on every request, and after its first one a request costs a hash and a lookup
//! instead of a signature verification. Bounded: when full, expired entries go, and if
//! that is not enough, all of them (they are verified again on their next use).

use std::collections::HashMap;
use std::sync::RwLock;

use crate::auth::identity::Identity;

/// The most tokens kept.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(crate) struct Cache {
    entries: RwLock<HashMap<[u8; 32], (Identity, u64)>>,
}

impl Cache {
    /// The identity of this token digest, if it was verified and has not expired by `now`
    /// (seconds since the epoch; the expiry already includes the leeway).
    pub(crate) fn get(&self, digest: &[u8; 32], now: u64) -> Option<Identity> {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(digest).filter(|(_, until)| now <= *until).map(|(identity, _)| identity.clone())
    }

    /// Keeps a verified token's identity until `until`.
    pub(crate) fn insert(&self, digest: [u8; 32], identity: Identity, until: u64, now: u64) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, until)| now <= *until);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(digest, (identity, until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_cache_stays_bounded() {
        let cache = Cache::default();
        cache.insert([1; 32], Identity::token([1; 32]), 100, 0);
        assert!(cache.get(&[1; 32], 100).is_some());
        assert!(cache.get(&[1; 32], 101).is_none(), "expired");
        for i in 0..CAPACITY + 10 {
            let mut d = [0; 32];
            d[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.insert(d, Identity::token(d), 1000, 0);
        }
        assert!(cache.entries.read().expect("lock").len() <= CAPACITY);
    }
}
