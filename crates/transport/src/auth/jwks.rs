//! An issuer's signing keys, from its JWKS: fetched on first use (the JWKS URL configured,
//! or discovered from the issuer's metadata), kept, fetched again when they are older than
//! their maximum age, and when a token names a key id they lack (a key rotation), at most
//! once per refetch interval: tokens with made-up key ids cannot make the gateway hammer
//! the issuer. The HTTP GET itself is the binary's ([`Fetch`]): this crate makes no
//! outbound requests.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use tokio::time::Instant;

/// What a failed fetch says.
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// An HTTP GET of a JSON document (a JWKS, an issuer's metadata), answered by the binary.
/// Implementations bound the time and the size of the answer.
pub trait Fetch: Send + Sync + 'static {
    /// The body of a 200 answer to `GET url`; anything else is an error.
    fn get(&self, url: &str) -> Pin<Box<dyn Future<Output = Result<Bytes, FetchError>> + Send + '_>>;
}

/// How keys are kept and fetched again.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// Keys older than this are fetched again on their next use.
    pub max_age: Duration,
    /// At most one fetch for an unknown key id per this interval.
    pub refetch_interval: Duration,
    /// The deadline of one fetch (discovery and JWKS each).
    pub fetch_timeout: Duration,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(3600),
            refetch_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(10),
        }
    }
}

/// Why no key verifies a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// The JWKS has no key of this id (and, when allowed, was fetched again to make sure).
    Unknown,
    /// The key of this id is not for this algorithm.
    WrongAlgorithm,
    /// The keys could not be fetched.
    Unavailable,
}

/// A verification key and what it may verify.
struct Key {
    key: Arc<DecodingKey>,
    /// The JWK's `alg`, when it names one: then only that algorithm.
    alg: Option<Algorithm>,
}

impl Key {
    fn verifies(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|a| a == alg) && self.key.family() == alg.family()
    }
}

#[derive(Default)]
struct State {
    /// Keys by id; keys without one under the empty id (used only by tokens without `kid`).
    keys: HashMap<String, Vec<Key>>,
    jwks_uri: Option<Arc<str>>,
    fetched: Option<Instant>,
    /// The last fetch made because of an unknown key id.
    refetched: Option<Instant>,
    /// The last fetch, when it failed: none is tried again within the refetch interval,
    /// so an issuer that is down does not cost every request a fetch.
    failed: Option<Instant>,
    /// Counts fetches, so that a request that waited on another's fetch uses its result.
    generation: u64,
}

impl State {
    /// The key for `kid`; a token without one may use a key without one, or the only key
    /// of the set that verifies its algorithm.
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<DecodingKey>, KeyError> {
        let keys = match (self.keys.get(kid.unwrap_or("")), kid) {
            (Some(keys), _) => keys,
            (None, Some(_)) => return Err(KeyError::Unknown),
            (None, None) => {
                let mut usable = self.keys.values().flatten().filter(|k| k.verifies(alg));
                return match (usable.next(), usable.next()) {
                    (Some(only), None) => Ok(only.key.clone()),
                    _ => Err(KeyError::Unknown),
                };
            }
        };
        keys.iter().find(|k| k.verifies(alg)).map(|k| k.key.clone()).ok_or(KeyError::WrongAlgorithm)
    }
}

/// One issuer's keys.
pub(crate) struct KeySet {
    issuer: Arc<str>,
    fetch: Arc<dyn Fetch>,
    policy: KeyPolicy,
    state: RwLock<State>,
    /// Held across a fetch, so that concurrent misses wait for one fetch instead of each
    /// making their own; the keys themselves are behind `state`, locked only briefly.
    gate: tokio::sync::Mutex<()>,
}

impl KeySet {
    /// The keys of `issuer`, from `jwks_uri` or, without it, from the URL its metadata names.
    pub(crate) fn new(issuer: Arc<str>, jwks_uri: Option<String>, fetch: Arc<dyn Fetch>, policy: KeyPolicy) -> Self {
        let state = State { jwks_uri: jwks_uri.map(Arc::from), ..State::default() };
        Self { issuer, fetch, policy, state: RwLock::new(state), gate: tokio::sync::Mutex::new(()) }
    }

    /// The key that verifies a token signed with `alg` under `kid`.
    pub(crate) async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<DecodingKey>, KeyError> {
        let interval = self.policy.refetch_interval;
        let (found, generation, stale, refetch, backoff) = {
            let state = self.read();
            let found = state.lookup(kid, alg);
            let stale = state.fetched.is_none_or(|at| at.elapsed() >= self.policy.max_age);
            let may_refetch = state.refetched.is_none_or(|at| at.elapsed() >= interval);
            let miss = matches!(found, Err(KeyError::Unknown)) && !stale;
            let backoff = state.failed.is_some_and(|at| at.elapsed() < interval);
            let found = match found {
                Err(_) if state.fetched.is_none() => Err(KeyError::Unavailable),
                other => other,
            };
            (found, state.generation, stale, miss && may_refetch, backoff)
        };
        if backoff || (!stale && !refetch) {
            return found;
        }
        let _gate = self.gate.lock().await;
        if self.read().generation == generation {
            // Only a fetch for an unknown key counts against the refetch interval: the
            // first fetch and one of stale keys are not a client's doing.
            self.refresh(refetch).await;
        }
        let state = self.read();
        match state.lookup(kid, alg) {
            // Keys that could not be fetched at all: say so, not "unknown key".
            Err(_) if state.fetched.is_none() => Err(KeyError::Unavailable),
            other => other,
        }
    }

    /// Fetches the keys; on failure the keys already held stay (an issuer that is down
    /// for a while does not lock everyone out whose token verified before).
    async fn refresh(&self, miss: bool) {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.policy.fetch_timeout * 2, self.fetch_keys()).await;
        let mut state = self.write();
        state.generation += 1;
        if miss {
            state.refetched = Some(started);
        }
        match outcome {
            Ok(Ok((uri, keys))) => {
                tracing::info!(issuer = %self.issuer, keys = keys.values().map(Vec::len).sum::<usize>(), "JWKS fetched");
                state.keys = keys;
                state.jwks_uri = Some(uri);
                state.fetched = Some(started);
                state.failed = None;
            }
            Ok(Err(e)) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "JWKS not fetched");
                state.failed = Some(started);
            }
            Err(_) => {
                tracing::warn!(issuer = %self.issuer, error = "timed out", "JWKS not fetched");
                state.failed = Some(started);
            }
        }
    }

    async fn fetch_keys(&self) -> Result<(Arc<str>, HashMap<String, Vec<Key>>), FetchError> {
        let known = self.read().jwks_uri.clone();
        let uri = match known {
            Some(uri) => uri,
            None => self.discover().await?,
        };
        let body = self.get(&uri).await?;
        Ok((uri, parse_jwks(&body)?))
    }

    /// The `jwks_uri` of the issuer's metadata: OpenID Connect discovery, then RFC 8414.
    async fn discover(&self) -> Result<Arc<str>, FetchError> {
        let mut last = None;
        for url in metadata_urls(&self.issuer) {
            match self.get(&url).await.and_then(|body| Ok(serde_json::from_slice::<Value>(&body)?)) {
                Ok(doc) if doc["issuer"].as_str() != Some(&self.issuer) => {
                    last = Some(format!("{url} names another issuer: {}", doc["issuer"]).into());
                }
                Ok(doc) => match doc["jwks_uri"].as_str() {
                    Some(uri) => return Ok(Arc::from(uri)),
                    None => last = Some(format!("{url} has no jwks_uri").into()),
                },
                Err(e) => last = Some(format!("{url}: {e}").into()),
            }
        }
        Err(last.unwrap_or_else(|| "no metadata URL".into()))
    }

    async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        match tokio::time::timeout(self.policy.fetch_timeout, self.fetch.get(url)).await {
            Ok(result) => result,
            Err(_) => Err(format!("{url}: no answer within {:?}", self.policy.fetch_timeout).into()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where an issuer's metadata may be: OpenID Connect discovery (the issuer with
/// `/.well-known/openid-configuration` appended), then RFC 8414 (the well-known path
/// inserted between the host and the issuer's path).
fn metadata_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{trimmed}/.well-known/openid-configuration")];
    if let Some((scheme, rest)) = trimmed.split_once("://") {
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        urls.push(format!("{scheme}://{host}/.well-known/oauth-authorization-server{path}"));
    }
    urls
}

/// The usable public keys of a JWKS document. A key this gateway cannot use (a symmetric
/// one, an encryption key, an unknown type) is skipped rather than failing the set.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Vec<Key>>, FetchError> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set = serde_json::from_slice(body)?;
    let mut keys: HashMap<String, Vec<Key>> = HashMap::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_))
            || jwk.common.public_key_use.as_ref().is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            continue;
        }
        let alg = match jwk.common.key_algorithm {
            Some(a) => match a.to_string().parse::<Algorithm>() {
                Ok(alg) => Some(alg),
                Err(_) => continue,
            },
            None => None,
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        keys.entry(kid).or_default().push(Key { key: Arc::new(key), alg });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests;
