//! [`RateLimits`]: token buckets on tool calls, checked at the edge before a call is handed
//! on, so that a call over a limit can still be answered with HTTP 429 and `Retry-After`.
//!
//! Three kinds of bucket, each optional: one global bucket, one per caller (identity), and
//! one per caller and tool (the name the client called). A call takes a token from every
//! bucket that applies, or from none: a call refused by one limit costs nothing from the
//! others, so a caller held back by its per-tool limit does not drain the global bucket.
//!
//! A bucket that has refilled to its burst is the same as no bucket at all, so idle keys
//! are simply forgotten (swept now and then); the number of keys is capped on top of that,
//! since a caller chooses the tool names it calls. At the cap, the key touched least
//! recently is dropped to make room: its caller gets a full bucket back, which costs
//! accuracy under key pressure but never refuses a caller because of others' keys (the
//! global and per-identity buckets still hold).
//!
//! Hand-written rather than `governor`: the three kinds must be checked together and
//! charged all or none, and the keyed buckets need the cap above; that is a few lines on a
//! map, and the lock is held for those lines only (never across an await).
//!
//! Counted per instance: several gateways behind a balancer each allow the full rate.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::model::ClientRequest;

use crate::auth::Principal;
use crate::refusal::{Limit, Refusal};

/// A token bucket's settings: it refills at `per_second` and holds at most `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second (calls per second, sustained).
    pub per_second: f64,
    /// The most tokens it holds (calls at once after a quiet spell); at least 1.
    pub burst: u32,
}

/// Which limits apply, and how many keyed buckets may exist at once.
#[derive(Debug, Clone, PartialEq)]
pub struct RateConfig {
    /// Every tool call of every caller.
    pub global: Option<Rate>,
    /// Every tool call of one caller.
    pub identity: Option<Rate>,
    /// The calls of one caller to one tool.
    pub tool: Option<Rate>,
    /// Keyed buckets kept at most, of each kind (per identity; per identity and tool).
    pub max_keys: usize,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self { global: None, identity: None, tool: None, max_keys: 100_000 }
    }
}

/// The tool a request starts a call of, if it does: a `tools/call`, unless it is a
/// 2026-07-28 retry carrying a `requestState` (that continues a call already counted).
pub(crate) fn tool_call(request: &ClientRequest) -> Option<&str> {
    match request {
        ClientRequest::CallToolRequest(r) if r.params.request_state.is_none() => Some(&r.params.name),
        _ => None,
    }
}

/// Tool names longer than this are counted under their first this many bytes (MCP names
/// are at most 128 characters): a key's size stays bounded whatever a client sends.
const MAX_TOOL_KEY: usize = 256;

/// Swept for full (forgettable) buckets at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The buckets of one gateway.
#[derive(Debug)]
pub struct RateLimits {
    config: RateConfig,
    state: Mutex<State>,
}

type Caller = Option<Principal>;

#[derive(Debug)]
struct State {
    global: Bucket,
    identities: HashMap<Caller, Bucket>,
    tools: HashMap<(Caller, Box<str>), Bucket>,
    swept: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Self { tokens: f64::from(rate.burst.max(1)), at: now }
    }

    /// Its tokens at `now`, refilled since it was last charged.
    fn level(&self, rate: Rate, now: Instant) -> f64 {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * rate.per_second;
        (self.tokens + refill).min(f64::from(rate.burst.max(1)))
    }

    fn is_full(&self, rate: Rate, now: Instant) -> bool {
        self.level(rate, now) >= f64::from(rate.burst.max(1))
    }
}

impl RateLimits {
    /// Buckets with these settings, all full.
    pub fn new(config: RateConfig) -> Self {
        let now = Instant::now();
        let global = config.global.map_or(Bucket { tokens: 0.0, at: now }, |r| Bucket::full(r, now));
        let state = State { global, identities: HashMap::new(), tools: HashMap::new(), swept: now };
        Self { config, state: Mutex::new(state) }
    }

    /// Whether any limit is set.
    pub fn is_active(&self) -> bool {
        self.config.global.is_some() || self.config.identity.is_some() || self.config.tool.is_some()
    }

    /// Takes a token for a call of `tool` by `caller` (`None`: no authentication, every
    /// such caller counted as one) from every bucket that applies, or refuses the call and
    /// takes none.
    pub fn check(&self, caller: Option<&Principal>, tool: &str, now: Instant) -> Result<(), Refusal> {
        let config = &self.config;
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.saturating_duration_since(state.swept) >= SWEEP_EVERY {
            state.sweep(config, now);
        }
        let caller = caller.cloned();
        let tool_key = config.tool.map(|_| (caller.clone(), Box::<str>::from(bounded(tool))));
        let mut refusal: Option<Refusal> = None;
        let mut lacks = |limit: Limit, rate: Rate, level: f64| {
            if level < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - level) / rate.per_second.max(f64::MIN_POSITIVE));
                if refusal.is_none_or(|r| r.retry_after < wait) {
                    refusal = Some(Refusal { limit, retry_after: wait });
                }
            }
        };
        if let Some(rate) = config.global {
            lacks(Limit::Global, rate, state.global.level(rate, now));
        }
        if let Some(rate) = config.identity
            && let Some(bucket) = state.identities.get(&caller)
        {
            lacks(Limit::Identity, rate, bucket.level(rate, now));
        }
        if let (Some(rate), Some(key)) = (config.tool, &tool_key)
            && let Some(bucket) = state.tools.get(key)
        {
            lacks(Limit::Tool, rate, bucket.level(rate, now));
        }
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        if let Some(rate) = config.global {
            let level = state.global.level(rate, now);
            state.global = Bucket { tokens: level - 1.0, at: now };
        }
        if let Some(rate) = config.identity {
            charge(&mut state.identities, config.max_keys, caller, rate, now);
        }
        if let (Some(rate), Some(key)) = (config.tool, tool_key) {
            charge(&mut state.tools, config.max_keys, key, rate, now);
        }
        Ok(())
    }

    /// Keyed buckets held now (for tests and metrics).
    pub fn keys(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.identities.len() + state.tools.len()
    }
}

impl State {
    /// Forgets the buckets that have refilled: a full bucket and no bucket are the same.
    fn sweep(&mut self, config: &RateConfig, now: Instant) {
        if let Some(rate) = config.identity {
            self.identities.retain(|_, b| !b.is_full(rate, now));
        }
        if let Some(rate) = config.tool {
            self.tools.retain(|_, b| !b.is_full(rate, now));
        }
        self.swept = now;
    }
}

/// Takes a token from the bucket of `key` in `map` (known to hold one), making it first if
/// need be; a new key at the cap makes room first (full buckets go, then the oldest).
fn charge<K: Hash + Eq + Clone>(map: &mut HashMap<K, Bucket>, max: usize, key: K, rate: Rate, now: Instant) {
    if map.len() >= max.max(1) && !map.contains_key(&key) {
        map.retain(|_, b| !b.is_full(rate, now));
        if map.len() >= max.max(1)
            && let Some(oldest) = map.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }
    let bucket = map.entry(key).or_insert_with(|| Bucket::full(rate, now));
    let level = bucket.level(rate, now);
    *bucket = Bucket { tokens: level - 1.0, at: now };
}

/// A tool name cut to [`MAX_TOOL_KEY`] bytes, on a character boundary.
fn bounded(tool: &str) -> &str {
    if tool.len() <= MAX_TOOL_KEY {
        return tool;
    }
    let mut end = MAX_TOOL_KEY;
    while !tool.is_char_boundary(end) {
        end -= 1;
    }
    &tool[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(name: &str) -> Principal {
        Principal::Subject { issuer: "https://idp".into(), subject: name.into() }
    }

    fn limits(global: Option<Rate>, identity: Option<Rate>, tool: Option<Rate>) -> RateLimits {
        RateLimits::new(RateConfig { global, identity, tool, max_keys: 100 })
    }

    const TWO_PER_SEC_BURST_2: Rate = Rate { per_second: 2.0, burst: 2 };

    #[test]
    fn a_burst_passes_the_next_call_waits_for_its_token() {
        let l = limits(None, Some(TWO_PER_SEC_BURST_2), None);
        let t0 = Instant::now();
        let alice = who("alice");
        assert!(l.check(Some(&alice), "echo", t0).is_ok());
        assert!(l.check(Some(&alice), "echo", t0).is_ok());
        let refused = l.check(Some(&alice), "echo", t0).expect_err("over the burst");
        assert_eq!(refused.limit, Limit::Identity);
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        assert_eq!(refused.retry_after_secs(), 1, "rounded up");
        assert!(l.check(Some(&alice), "echo", t0 + Duration::from_millis(499)).is_err());
        assert!(l.check(Some(&alice), "echo", t0 + Duration::from_millis(500)).is_ok());
    }

    #[test]
    fn callers_have_buckets_of_their_own_and_share_the_global_one() {
        let l = limits(Some(Rate { per_second: 1.0, burst: 3 }), Some(TWO_PER_SEC_BURST_2), None);
        let t0 = Instant::now();
        let (alice, bob) = (who("alice"), who("bob"));
        assert!(l.check(Some(&alice), "echo", t0).is_ok());
        assert!(l.check(Some(&alice), "echo", t0).is_ok());
        assert_eq!(l.check(Some(&alice), "echo", t0).map_err(|r| r.limit), Err(Limit::Identity));
        assert!(l.check(Some(&bob), "echo", t0).is_ok(), "bob's own bucket is full");
        assert_eq!(l.check(Some(&bob), "echo", t0).map_err(|r| r.limit), Err(Limit::Global));
        assert!(l.check(None, "echo", t0).is_err(), "the global bucket holds for anyone");
    }

    #[test]
    fn per_tool_buckets_are_per_caller_and_tool_and_a_refusal_charges_nothing() {
        let l = limits(Some(Rate { per_second: 1.0, burst: 3 }), None, Some(Rate { per_second: 1.0, burst: 1 }));
        let t0 = Instant::now();
        let alice = who("alice");
        assert!(l.check(Some(&alice), "echo", t0).is_ok());
        for _ in 0..5 {
            assert_eq!(l.check(Some(&alice), "echo", t0).map_err(|r| r.limit), Err(Limit::Tool));
        }
        assert!(l.check(Some(&alice), "add", t0).is_ok(), "another tool: another bucket");
        assert!(l.check(Some(&who("bob")), "echo", t0).is_ok(), "another caller: another bucket");
        assert_eq!(l.check(Some(&who("carol")), "echo", t0).map_err(|r| r.limit), Err(Limit::Global));
    }

    #[test]
    fn the_limit_that_frees_up_last_is_named() {
        let l = limits(Some(Rate { per_second: 10.0, burst: 1 }), None, Some(Rate { per_second: 0.5, burst: 1 }));
        let t0 = Instant::now();
        assert!(l.check(None, "echo", t0).is_ok());
        let refused = l.check(None, "echo", t0).expect_err("both empty");
        assert_eq!((refused.limit, refused.retry_after_secs()), (Limit::Tool, 2));
    }

    #[test]
    fn keys_stay_under_the_cap_and_refilled_buckets_are_forgotten() {
        let l = RateLimits::new(RateConfig {
            tool: Some(Rate { per_second: 1.0, burst: 1 }),
            max_keys: 3,
            ..RateConfig::default()
        });
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(l.check(None, &format!("tool{i}"), t0 + Duration::from_millis(i)).is_ok());
            assert!(l.keys() <= 3, "{} keys", l.keys());
        }
        // The most recent keys are kept: their callers are still held back.
        assert!(l.check(None, "tool9", t0 + Duration::from_millis(10)).is_err());
        assert!(l.check(None, "x", t0 + SWEEP_EVERY + Duration::from_secs(1)).is_ok());
        assert_eq!(l.keys(), 1, "the sweep forgot every refilled bucket");
        assert!(l.check(None, &"é".repeat(MAX_TOOL_KEY), t0 + SWEEP_EVERY + Duration::from_secs(1)).is_ok());
    }
}
