//! Requests that need the client's input (2026-07-28 MRTR) for a handshake-era upstream.
//!
//! A stateless client cannot be sent a request mid-call. When the upstream of a stateless
//! `tools/call`, `prompts/get` or `resources/read` asks its client for sampling,
//! elicitation or roots, the upstream call is *parked*: it keeps running (its request to
//! the client waits), and the client's call is answered with an `InputRequiredResult`
//! carrying the upstream's requests and a sealed `requestState` (see [`crate::seal`]).
//! The client's retry (a new JSON-RPC request, the same method and params, with
//! `inputResponses` and the state) is matched to the parked call by the state's nonce;
//! the answers go to the upstream, and the retry is answered with what the upstream does
//! next: its result, or another round of requests.
//!
//! The parked calls are keyed by nonce alone (nothing about the connection the first
//! round came on), bounded in number, and each is removed when its retry takes it, when its
//! state expires (the call is then cancelled), or when the call ends. A state that is
//! refused for a reason its tag vouches for (expired, another caller, another request)
//! also ends the call it names: a caller holding a state that fails is not going to finish
//! that call properly.

#![allow(deprecated)] // sampling and roots are deprecated in 2026-07-28, and still what a handshake-era upstream asks

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmcp::model::{
    ClientRequest, ClientResult, CreateMessageResult, ElicitResult, ErrorCode, InputRequest, InputRequiredResult,
    ListRootsResult, ServerRequest, ServerResult,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::seal::{Nonce, Sealer, request_digest};
use crate::upstream::link::{Ask, Asker, Link, SessionKey};
use crate::upstream::modern::with_answers;
use crate::upstream::spec::CANCEL_GRACE;

/// The header of a stateless request's parts that names its caller (the transport's
/// `modern::PRINCIPAL_HEADER`: the crates share no code).
const PRINCIPAL: &str = "mcpgw-principal";

/// Calls parked at once, at most; one more is refused (and cancelled) rather than kept.
pub const MAX_PARKED: usize = 1024;
/// Requests of the upstream's that may queue for one call before it is answered.
const ASKS: usize = 8;

/// How stateless calls are parked: the key their states are sealed with, and how long a
/// state lives (`None`: the upstream's `call_timeout_secs`).
#[derive(Debug, Clone)]
pub struct MrtrConfig {
    /// The sealing key.
    pub sealer: Arc<Sealer>,
    /// A state's lifetime; `None`: the call's deadline.
    pub ttl: Option<Duration>,
}

/// The parked calls of the modern hub.
pub(super) struct Parked {
    config: MrtrConfig,
    calls: Mutex<HashMap<Nonce, Waiting>>,
    /// Calls parked now, for the metrics (shared by every hub of the gateway).
    waiting: Arc<AtomicUsize>,
}

/// What a sealed state names: a handshake-era upstream's call that runs on while its
/// client answers, or a modern upstream's `requestState`, which the retry takes back to it.
enum Waiting {
    Call(Call),
    Relay(Relay),
}

/// A modern upstream answered with an `InputRequiredResult`: its `inputRequests` went to
/// the client as they are, its `requestState` is kept here, and the client got a state
/// sealed by the gateway in its place, so the retry is bound to this caller and request,
/// usable once, and the upstream's state never has to be trusted to the client's keeping
/// (nor a state the client made up reach the upstream).
struct Relay {
    state: String,
}

/// An upstream call that runs on while its client answers.
struct Call {
    /// The call's outcome, once it ends.
    outcome: oneshot::Receiver<Result<ServerResult, ErrorData>>,
    /// The upstream's requests of the client not handed out yet.
    asks: mpsc::Receiver<Ask>,
    /// The requests handed out in the last round, by their key in `inputRequests`.
    open: Vec<(String, Ask)>,
    /// Ends the upstream call.
    cancel: CancellationToken,
    /// The upstream's deadline for the call.
    limit: Duration,
}

impl Drop for Call {
    /// A call dropped before its outcome was taken (refused, expired, its client gone)
    /// ends upstream too.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The parts of a request a retry carries beyond the first round's.
struct Retry {
    responses: Option<BTreeMap<String, serde_json::Value>>,
    state: Option<String>,
}

impl Parked {
    pub(super) fn new(config: MrtrConfig, waiting: Arc<AtomicUsize>) -> Self {
        Self { config, calls: Mutex::new(HashMap::new()), waiting }
    }

    fn calls(&self) -> MutexGuard<'_, HashMap<Nonce, Waiting>> {
        // Plain data, never locked across an await.
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a parked call off the table.
    fn take(&self, nonce: &Nonce) -> Option<Waiting> {
        let call = self.calls().remove(nonce);
        if call.is_some() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        call
    }

    /// Parks a call, unless [`MAX_PARKED`] are parked already (the call is handed back).
    fn put(&self, nonce: Nonce, call: Waiting) -> Result<(), Waiting> {
        let mut calls = self.calls();
        if calls.len() >= MAX_PARKED {
            return Err(call);
        }
        calls.insert(nonce, call);
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for Parked {
    /// The hub ended: its parked calls end with it (each cancels its upstream call).
    fn drop(&mut self) {
        let left = self.calls().len();
        self.waiting.fetch_sub(left, Ordering::Relaxed);
    }
}

/// Runs one round of a stateless call to `link`: the first (the call starts upstream) or
/// a retry (the parked call named by its `requestState` gets the client's answers). Ends
/// with the upstream's result or an `InputRequiredResult`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn round(
    parked: &Arc<Parked>,
    link: Arc<Link>,
    mut request: ClientRequest,
    ctx: &RequestContext<RoleServer>,
    session: SessionKey,
    limit: Duration,
    cancel: &CancellationToken,
    tasks: &TaskTracker,
) -> Result<ServerResult, ErrorData> {
    let retry = take_retry(&mut request);
    let sealer = &parked.config.sealer;
    // The transport names an authenticated caller in the request's parts (none when
    // authentication is off).
    let credential = ctx
        .extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.headers.get(PRINCIPAL))
        .map_or(&[][..], |v| v.as_bytes());
    let caller = sealer.caller(credential);
    let digest = digest_of(&request)?;
    let (call, unanswered) = match retry.state {
        Some(state) => {
            let opened = sealer.open(&state, &caller, &digest).map_err(|refused| {
                if let Some(nonce) = refused.nonce() {
                    // Dropping it cancels it upstream.
                    drop(parked.take(&nonce));
                }
                tracing::info!(why = refused.why(), "refused a stateless retry's requestState");
                invalid(refused.why())
            })?;
            let waiting = parked.take(&opened.nonce).ok_or_else(|| {
                tracing::info!("refused a stateless retry whose requestState was used already or is unknown");
                invalid("requestState was used already or is unknown (each is good for one retry)")
            })?;
            match waiting {
                Waiting::Call(mut call) => {
                    let unanswered = answer(&mut call, retry.responses.unwrap_or_default());
                    (call, unanswered)
                }
                Waiting::Relay(Relay { state }) => {
                    // The modern upstream's own retry: its state and the client's answers.
                    with_answers(&mut request, retry.responses.unwrap_or_default(), Some(state))?;
                    (start(link, request, ctx, session, limit, cancel, tasks), Vec::new())
                }
            }
        }
        None => (start(link, request, ctx, session, limit, cancel, tasks), Vec::new()),
    };
    wait(parked, call, unanswered, ctx, (caller, digest), cancel, tasks).await
}

/// Starts the upstream call on a task of its own, so that it outlives this round.
fn start(
    link: Arc<Link>,
    request: ClientRequest,
    ctx: &RequestContext<RoleServer>,
    session: SessionKey,
    limit: Duration,
    cancel: &CancellationToken,
    tasks: &TaskTracker,
) -> Call {
    let (tx, asks) = mpsc::channel(ASKS);
    let over = CancellationToken::new();
    let asker = Asker { asks: tx, over: over.clone() };
    let (done, outcome) = oneshot::channel();
    let call_ct = cancel.child_token();
    let mut upstream_ctx = ctx.clone();
    upstream_ctx.ct = call_ct.clone();
    let deadline_ct = call_ct.clone();
    let name = link.spec().name.clone();
    tasks.spawn(async move {
        let forward = link.forward_asking(request, &upstream_ctx, session, Some(asker));
        let mut forward = std::pin::pin!(forward);
        let result = tokio::select! {
            result = &mut forward => result.map_err(|e| e.to_jsonrpc()),
            () = tokio::time::sleep(limit) => {
                deadline_ct.cancel();
                // The cancelled forward tells the upstream, for a while.
                let _ = tokio::time::timeout(CANCEL_GRACE, forward).await;
                Err(Error::Timeout { upstream: name, what: "the call".into(), after: limit }.to_jsonrpc())
            }
        };
        over.cancel();
        let _ = done.send(result);
    });
    Call { outcome, asks, open: Vec::new(), cancel: call_ct, limit }
}

/// Waits for the call's next step: its result, or requests of the client, which park it
/// (at once, when the last retry left some unanswered).
async fn wait(
    parked: &Arc<Parked>,
    mut call: Call,
    mut unanswered: Vec<Ask>,
    ctx: &RequestContext<RoleServer>,
    (caller, digest): ([u8; 32], [u8; 32]),
    cancel: &CancellationToken,
    tasks: &TaskTracker,
) -> Result<ServerResult, ErrorData> {
    let requests = loop {
        // Requests the retry left unanswered are asked again, at once.
        if !unanswered.is_empty() {
            let mut asks = std::mem::take(&mut unanswered);
            while let Ok(more) = call.asks.try_recv() {
                asks.push(more);
            }
            let requests = inputs(&mut call, asks, ctx)?;
            if !requests.is_empty() {
                break requests;
            }
        }
        let first = tokio::select! {
            outcome = &mut call.outcome => {
                let outcome = outcome.unwrap_or_else(|_| Err(Error::Cancelled.to_jsonrpc()));
                return relay(parked, outcome, call.limit, (caller, digest), cancel, tasks);
            }
            ask = call.asks.recv() => match ask {
                Some(ask) => ask,
                None => {
                    let outcome = (&mut call.outcome).await.unwrap_or_else(|_| Err(Error::Cancelled.to_jsonrpc()));
                    return relay(parked, outcome, call.limit, (caller, digest), cancel, tasks);
                }
            },
            // Dropping the call cancels it upstream.
            () = ctx.ct.cancelled() => return Err(Error::Cancelled.to_jsonrpc()),
        };
        // Whatever else the upstream asked meanwhile goes in the same round.
        let mut asks = vec![first];
        while let Ok(more) = call.asks.try_recv() {
            asks.push(more);
        }
        let requests = inputs(&mut call, asks, ctx)?;
        if !requests.is_empty() {
            break requests;
        }
    };
    let limit = call.limit;
    let sealed = park(parked, Waiting::Call(call), limit, (caller, digest), cancel, tasks)?;
    let result = InputRequiredResult::new(Some(requests), Some(sealed));
    Ok(ServerResult::InputRequiredResult(result))
}

/// A call's outcome as its client gets it: a modern upstream's `InputRequiredResult` with
/// a `requestState` gets the gateway's sealed state in its place (see [`Relay`]); one
/// without a state, and everything else, goes as it is.
fn relay(
    parked: &Arc<Parked>,
    outcome: Result<ServerResult, ErrorData>,
    limit: Duration,
    bound: ([u8; 32], [u8; 32]),
    cancel: &CancellationToken,
    tasks: &TaskTracker,
) -> Result<ServerResult, ErrorData> {
    let mut result = match outcome {
        Ok(ServerResult::InputRequiredResult(result)) => result,
        other => return other,
    };
    if let Some(state) = result.request_state.take() {
        result.request_state = Some(park(parked, Waiting::Relay(Relay { state }), limit, bound, cancel, tasks)?);
    }
    Ok(ServerResult::InputRequiredResult(result))
}

/// Parks what a state names under a fresh sealed state, which it returns; the state expires
/// after the configured TTL (else `limit`), ending what it names.
fn park(
    parked: &Arc<Parked>,
    waiting: Waiting,
    limit: Duration,
    (caller, digest): ([u8; 32], [u8; 32]),
    cancel: &CancellationToken,
    tasks: &TaskTracker,
) -> Result<String, ErrorData> {
    let ttl = parked.config.ttl.unwrap_or(limit);
    let state = parked.config.sealer.fresh(caller, digest, ttl).map_err(|e| e.to_jsonrpc())?;
    if parked.put(state.nonce, waiting).is_err() {
        // The call handed back is dropped, which cancels it upstream.
        tracing::warn!(max = MAX_PARKED, "too many stateless calls wait for their clients' input; refused one");
        return Err(ErrorData::internal_error("too many calls wait for their clients' input; try again later", None));
    }
    // The state's lifetime: past it, the call ends, whether or not a retry came.
    let (watch, nonce, stop) = (Arc::downgrade(parked), state.nonce, cancel.clone());
    tasks.spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(ttl) => {}
            () = stop.cancelled() => return,
        }
        let expired = watch.upgrade().and_then(|p| p.take(&nonce));
        if expired.is_some() {
            tracing::info!("a stateless call's requestState expired before its retry; cancelled the upstream call");
        }
    });
    Ok(parked.config.sealer.seal(&state))
}

/// The upstream's requests as a round's `inputRequests`, each kept open in `call` for
/// its answer; -32021 when the client did not declare a capability one needs (but for a
/// `roots/list` the upstream did not tie to the call, answered with no roots).
fn inputs(
    call: &mut Call,
    asks: Vec<Ask>,
    ctx: &RequestContext<RoleServer>,
) -> Result<BTreeMap<String, InputRequest>, ErrorData> {
    let declared = ctx.meta.client_capabilities().unwrap_or_default();
    let mut requests = BTreeMap::new();
    for (n, ask) in asks.into_iter().enumerate() {
        let (key, input) = match &ask.request {
            ServerRequest::CreateMessageRequest(r) => {
                ("sampling", declared.sampling.is_some().then(|| InputRequest::CreateMessage(r.clone())))
            }
            ServerRequest::ElicitRequest(r) => {
                ("elicitation", declared.elicitation.is_some().then(|| InputRequest::Elicitation(r.clone())))
            }
            ServerRequest::ListRootsRequest(r) => {
                ("roots", declared.roots.is_some().then(|| InputRequest::ListRoots(r.clone())))
            }
            _ => {
                let _ = ask.reply.send(Err(ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    "not a request a stateless client can be asked",
                    None,
                )));
                continue;
            }
        };
        let Some(input) = input else {
            if let (ServerRequest::ListRootsRequest(_), false) = (&ask.request, ask.tied) {
                // Only the call in flight when it came, not the call's own request: it may
                // well be the upstream's own (servers ask for roots right after `initialize`
                // and on list changes). A caller without roots has none: say so, and let
                // the call go on rather than fail it for a request that may not be its.
                let _ = ask.reply.send(Ok(ClientResult::ListRootsResult(ListRootsResult::new(Vec::new()))));
                continue;
            }
            // The caller drops the call, which cancels it upstream; the request is answered
            // (with an error) only after that.
            return Err(ErrorData::new(
                ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
                format!("the upstream needs the client's {key} capability, which this request does not declare"),
                Some(serde_json::json!({ "requiredCapabilities": { key: {} } })),
            ));
        };
        let id = format!("{key}-{n}");
        requests.insert(id.clone(), input);
        call.open.push((id, ask));
    }
    Ok(requests)
}

/// Hands the client's answers to the requests the last round asked; those it did not
/// answer are returned, to be asked again. Answers to keys never asked are ignored.
fn answer(call: &mut Call, mut responses: BTreeMap<String, serde_json::Value>) -> Vec<Ask> {
    let mut unanswered = Vec::new();
    for (key, ask) in call.open.drain(..) {
        match responses.remove(&key) {
            None => unanswered.push(ask),
            Some(value) => {
                let _ = ask.reply.send(parse_answer(&ask.request, value));
            }
        }
    }
    unanswered
}

/// A client's answer as the result of the request it answers.
fn parse_answer(request: &ServerRequest, value: serde_json::Value) -> Result<ClientResult, ErrorData> {
    let bad = |e: serde_json::Error| ErrorData::internal_error(format!("the client's answer is malformed: {e}"), None);
    match request {
        ServerRequest::CreateMessageRequest(_) => serde_json::from_value::<CreateMessageResult>(value)
            .map(|r| ClientResult::CreateMessageResult(Box::new(r)))
            .map_err(bad),
        ServerRequest::ElicitRequest(_) => {
            serde_json::from_value::<ElicitResult>(value).map(ClientResult::ElicitResult).map_err(bad)
        }
        ServerRequest::ListRootsRequest(_) => {
            serde_json::from_value::<ListRootsResult>(value).map(ClientResult::ListRootsResult).map_err(bad)
        }
        _ => Err(ErrorData::internal_error("not a request a client answers", None)),
    }
}

/// Takes a retry's `inputResponses` and `requestState` out of the request: with a state,
/// they are for the gateway, not the upstream. Without one, the request goes on as it came
/// (an upstream that knows `inputResponses` may use them; 2026-07-28 asks a server to
/// ignore what it does not know).
fn take_retry(request: &mut ClientRequest) -> Retry {
    let (responses, state) = match request {
        ClientRequest::CallToolRequest(r) => (&mut r.params.input_responses, &mut r.params.request_state),
        ClientRequest::GetPromptRequest(r) => (&mut r.params.input_responses, &mut r.params.request_state),
        ClientRequest::ReadResourceRequest(r) => (&mut r.params.input_responses, &mut r.params.request_state),
        _ => return Retry { responses: None, state: None },
    };
    if state.is_none() {
        return Retry { responses: None, state: None };
    }
    Retry { responses: responses.take(), state: state.take() }
}

/// The digest a state binds: the request's method and params (see [`request_digest`]).
fn digest_of(request: &ClientRequest) -> Result<[u8; 32], ErrorData> {
    let value = serde_json::to_value(request).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let params = value.get("params").cloned().unwrap_or(serde_json::Value::Null);
    Ok(request_digest(request.method(), &params))
}

fn invalid(why: &str) -> ErrorData {
    ErrorData::new(ErrorCode::INVALID_PARAMS, why.to_owned(), None)
}
