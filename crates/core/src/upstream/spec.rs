//! What an upstream is, as configured: its name, how to reach it, whether sessions share
//! it, and which of its tools are exposed under which names.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::upstream::credentials::{Missing, PerCaller, Slot};

/// How long a list request may take unless configured: long enough for a large list from
/// a remote server, short enough that a stalled upstream is soon left out.
pub const DEFAULT_LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// One configured upstream MCP server.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSpec {
    /// Its name: used in logs, metrics and, on a name collision, as the tool prefix.
    pub name: String,
    /// How to reach it.
    pub kind: UpstreamKind,
    /// One connection per client session, or one for all.
    pub share: Share,
    /// Which of its tools are exposed.
    pub tools: ToolFilter,
    /// Put in front of every tool and prompt name it exposes (for example `fs_`).
    pub prefix: Option<String>,
    /// At most this many live connections (children, for stdio) at once; `None`: no cap.
    pub max_connections: Option<usize>,
    /// How long starting it and its `initialize` may take.
    pub connect_timeout: Duration,
    /// How long one of its tool calls may take; past it the call is cancelled upstream and
    /// the client gets an error. `None`: [`DEFAULT_CALL_TIMEOUT`].
    pub call_timeout: Option<Duration>,
    /// How long one of its list requests (`tools/list`, …, every page) may take; past it the
    /// upstream's list is left out of the catalogs until it answers.
    pub list_timeout: Duration,
    /// The protocol era it is spoken to in.
    pub era: Era,
    /// What its environment, arguments or headers take from each caller (`share =
    /// "session"` only); `None`: every caller's connection is the same.
    pub per_caller: Option<Arc<PerCaller>>,
}

/// How long a tool call may take when its upstream sets no limit of its own: no call
/// waits forever, even on an upstream that never sends its result.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a request cancelled at its deadline may take to wind up (telling its upstream)
/// before its client is answered all the same: an upstream that does not take the cancel
/// (a legacy SSE server whose POST hangs, a listen never acknowledged) must not hold the
/// answer for ever.
pub(crate) const CANCEL_GRACE: Duration = Duration::from_secs(2);

impl UpstreamSpec {
    /// A spec with the defaults for everything but the name and kind.
    pub fn new(name: impl Into<String>, kind: UpstreamKind) -> Self {
        let era = Era::default_for(&kind);
        Self {
            name: name.into(),
            kind,
            share: Share::Session,
            tools: ToolFilter::default(),
            prefix: None,
            max_connections: None,
            connect_timeout: Duration::from_secs(60),
            call_timeout: None,
            list_timeout: DEFAULT_LIST_TIMEOUT,
            era,
            per_caller: None,
        }
    }

    /// The spec of `caller`'s own connection: its per-caller values filled in from the
    /// caller's identity, or why the caller has none (and so does not get this upstream).
    pub fn for_caller(&self, caller: Option<&dyn crate::caller::Attributes>) -> Result<UpstreamSpec, Missing> {
        let Some(per_caller) = &self.per_caller else { return Ok(self.clone()) };
        let values = per_caller.resolve(caller)?;
        let mut spec = self.clone();
        spec.per_caller = None;
        for (slot, value) in values {
            match (&mut spec.kind, slot) {
                (UpstreamKind::Stdio { env, .. }, Slot::Env(name)) => {
                    env.insert(name.clone(), value);
                }
                (UpstreamKind::Stdio { args, .. }, Slot::Arg(i)) => {
                    if let Some(arg) = args.get_mut(*i) {
                        *arg = value;
                    }
                }
                (UpstreamKind::Http { headers, .. } | UpstreamKind::Sse { headers, .. }, Slot::Header(name)) => {
                    headers.insert(name.clone(), value);
                }
                // Configuration load puts each slot only where its kind has it.
                _ => {}
            }
        }
        Ok(spec)
    }
}

/// How to reach an upstream. Its `Debug` leaves out argument, environment and header
/// values: they often hold credentials.
#[derive(Clone, PartialEq)]
pub enum UpstreamKind {
    /// mcpgw's in-process tools.
    Builtin,
    /// A child process speaking MCP on stdin/stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Extra environment variables (the gateway's own environment is inherited).
        env: BTreeMap<String, String>,
        /// Its working directory; the gateway's when `None`.
        cwd: Option<PathBuf>,
    },
    /// A remote Streamable HTTP server.
    Http {
        /// Its MCP endpoint URL.
        url: String,
        /// Extra request headers (for example `Authorization`).
        headers: BTreeMap<String, String>,
    },
    /// A remote legacy HTTP+SSE server.
    Sse {
        /// Its event-stream URL.
        url: String,
        /// Extra request headers.
        headers: BTreeMap<String, String>,
    },
}

impl UpstreamKind {
    /// A short lowercase name, for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            UpstreamKind::Builtin => "builtin",
            UpstreamKind::Stdio { .. } => "stdio",
            UpstreamKind::Http { .. } => "http",
            UpstreamKind::Sse { .. } => "sse",
        }
    }
}

/// The protocol era an upstream is spoken to in: the handshake era (`initialize`, a
/// session; 2024-11-05 … 2025-11-25) or the modern one (`server/discover`, every request
/// self-contained; 2026-07-28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// Ask with `server/discover` and fall back to `initialize` when the upstream does not
    /// know it; found once per upstream, asked again when a connection is re-established.
    Auto,
    /// `server/discover` only: an upstream that refuses it does not connect.
    Modern,
    /// `initialize` only, never probed (many stdio servers exit on a first request that is
    /// not `initialize`).
    Handshake,
}

impl Era {
    /// `auto` for a remote Streamable HTTP server, `handshake` for the rest: a stdio child
    /// is never probed, and legacy SSE has no modern era.
    pub fn default_for(kind: &UpstreamKind) -> Self {
        match kind {
            UpstreamKind::Http { .. } => Era::Auto,
            _ => Era::Handshake,
        }
    }

    /// Its name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Auto => "auto",
            Era::Modern => "modern",
            Era::Handshake => "handshake",
        }
    }
}

/// Names and counts only: an environment variable, argument or header may hold a secret
/// (a per-caller credential, or a configured token).
impl std::fmt::Debug for UpstreamKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamKind::Builtin => f.write_str("Builtin"),
            UpstreamKind::Stdio { command, args, env, cwd } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", &args.len())
                .field("env", &env.keys().collect::<Vec<_>>())
                .field("cwd", cwd)
                .finish(),
            UpstreamKind::Http { url, headers } | UpstreamKind::Sse { url, headers } => f
                .debug_struct(if matches!(self, UpstreamKind::Http { .. }) { "Http" } else { "Sse" })
                .field("url", url)
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Whether client sessions share one connection to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Share {
    /// A connection (a child, for stdio) per client session: full isolation, and requests
    /// the upstream sends (sampling, elicitation) reach exactly the right client.
    #[default]
    Session,
    /// One connection for every session, requests multiplexed. A request the upstream sends
    /// goes to the one session with a call in flight on it, otherwise it is refused.
    Shared,
}

/// Which tools of an upstream are exposed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolFilter {
    /// Only these (by the upstream's own name), when set.
    pub allow: Option<Vec<String>>,
    /// Never these.
    pub deny: Vec<String>,
}

impl ToolFilter {
    /// Whether the tool with this (upstream) name is exposed.
    pub fn allows(&self, name: &str) -> bool {
        self.allow.as_ref().is_none_or(|a| a.iter().any(|n| n == name)) && !self.deny.iter().any(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_applies_allow_then_deny() {
        let f = ToolFilter { allow: Some(vec!["a".into(), "b".into()]), deny: vec!["b".into()] };
        assert!(f.allows("a"));
        assert!(!f.allows("b"));
        assert!(!f.allows("c"));
        assert!(ToolFilter::default().allows("anything"));
    }
}
