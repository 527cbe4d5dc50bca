//! The configuration file: TOML read into raw serde structs (unknown keys refused), then
//! validated into the settings the rest of the binary uses. A `.json` file is read as the
//! `mcpServers` JSON of desktop MCP clients instead (see [`desktop`]).

mod auth;
mod cluster;
mod credentials;
mod desktop;
mod limits;
mod policy;
mod upstreams;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use mcpgw_core::{MrtrConfig, Policy, Sealer, UpstreamKind, UpstreamSpec};
use mcpgw_transport::checks::HostPolicy;
use mcpgw_transport::edge::EdgeConfig;
use mcpgw_transport::session::SessionLimits;
use serde::Deserialize;

pub(crate) use cluster::{ClusterConfig, parse_node};

/// The default configuration, embedded in the binary.
pub(crate) const DEFAULT_TOML: &str = include_str!("../../../../config/mcpgw.toml");

/// More runtime threads than this is a typo, not a tuning.
const MAX_WORKER_THREADS: usize = 1024;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML or not a valid configuration.
    #[error("{origin}:{line}:{column}: {message}")]
    Parse {
        /// The file, or `<embedded default>`.
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file, or `<embedded default>`.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    paths: RawPaths,
    #[serde(default)]
    sessions: RawSessions,
    #[serde(default)]
    security: RawSecurity,
    upstreams: Option<IndexMap<String, upstreams::RawUpstream>>,
    auth: Option<auth::RawAuth>,
    #[serde(default)]
    policy: policy::RawPolicy,
    #[serde(default)]
    rate_limits: limits::RawRateLimits,
    #[serde(default)]
    audit: limits::RawAudit,
    cluster: Option<cluster::RawCluster>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: SocketAddr,
    max_body_bytes: usize,
    header_read_timeout_secs: u64,
    public_prefix: String,
    drain_timeout_secs: u64,
    max_header_bytes: usize,
    worker_threads: usize,
    call_timeout_secs: u64,
    stateless: bool,
    request_state_key_file: Option<PathBuf>,
    request_state_ttl_secs: Option<u64>,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 4 * 1024 * 1024,
            header_read_timeout_secs: 30,
            public_prefix: String::new(),
            drain_timeout_secs: 10,
            max_header_bytes: 64 * 1024,
            worker_threads: 0,
            call_timeout_secs: mcpgw_core::DEFAULT_CALL_TIMEOUT.as_secs(),
            stateless: true,
            request_state_key_file: None,
            request_state_ttl_secs: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPaths {
    sse: String,
    messages: String,
    mcp: String,
}

impl Default for RawPaths {
    fn default() -> Self {
        Self { sse: "/sse".into(), messages: "/messages".into(), mcp: "/mcp".into() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSessions {
    keepalive_secs: u64,
    legacy_grace_secs: u64,
    idle_timeout_secs: u64,
    inbound_queue: usize,
    stream_queue: usize,
    backlog: usize,
    event_log_events: usize,
    event_log_bytes: usize,
    max_sessions: usize,
    max_sessions_per_credential: Option<usize>,
    stream_stall_secs: u64,
    park_after_secs: u64,
    max_listeners: usize,
}

impl Default for RawSessions {
    fn default() -> Self {
        Self {
            keepalive_secs: 15,
            legacy_grace_secs: 5,
            idle_timeout_secs: 1800,
            inbound_queue: 64,
            stream_queue: 64,
            backlog: 256,
            event_log_events: 256,
            event_log_bytes: 1 << 20,
            max_sessions: 100_000,
            max_sessions_per_credential: None,
            stream_stall_secs: 5,
            park_after_secs: 30,
            max_listeners: mcpgw_transport::hub::DEFAULT_MAX_LISTENERS,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSecurity {
    allowed_hosts: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
}

/// The paths each endpoint is served on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paths {
    /// Legacy event stream (`GET`).
    pub(crate) sse: String,
    /// Legacy message endpoint (`POST`).
    pub(crate) messages: String,
    /// Streamable HTTP endpoint.
    pub(crate) mcp: String,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Where to listen.
    pub(crate) listen: SocketAddr,
    /// Time allowed for request headers.
    pub(crate) header_read_timeout: Duration,
    /// At shutdown, how long calls in flight may take to finish.
    pub(crate) drain_timeout: Duration,
    /// The largest request head (request line and headers) accepted.
    pub(crate) max_header_bytes: usize,
    /// Threads of the async runtime; `None`: one per CPU the process may use.
    pub(crate) worker_threads: Option<usize>,
    /// Endpoint paths.
    pub(crate) paths: Paths,
    /// Settings of the HTTP edge.
    pub(crate) edge: EdgeConfig,
    /// Per-session queue sizes.
    pub(crate) limits: SessionLimits,
    /// A session idle this long (no request, no open stream) is ended.
    pub(crate) idle_timeout: Duration,
    /// A session quiet this long lets its MCP server go until its next message; `None`: never.
    pub(crate) park_after: Option<Duration>,
    /// The upstreams, in configuration order.
    pub(crate) upstreams: Vec<UpstreamSpec>,
    /// Caps on live sessions.
    pub(crate) caps: SessionCaps,
    /// The key and lifetime of input-required results' `requestState`.
    pub(crate) mrtr: MrtrConfig,
    /// Who may see and call what (`[policy]`); a reload puts a new one in force for live
    /// sessions too.
    pub(crate) policy: Arc<Policy>,
    /// Log each tool call's arguments in its audit line.
    pub(crate) audit_arguments: bool,
    /// `[cluster]`; `None`: a single node, no store.
    pub(crate) cluster: Option<ClusterConfig>,
}

/// Caps on live sessions; past them a new session gets 503 and nothing is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionCaps {
    /// All sessions.
    pub(crate) total: usize,
    /// The sessions of one credential.
    pub(crate) per_credential: Option<usize>,
    /// Open `subscriptions/listen` streams (of this instance).
    pub(crate) listeners: usize,
}

impl Config {
    /// Loads `path`, or the embedded default when `path` is `None`.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                let origin = path.display().to_string();
                if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
                    return Self::parse_desktop_json(&text, &origin);
                }
                Self::parse(&text, &origin)
            }
            None => Self::parse(DEFAULT_TOML, "<embedded default>"),
        }
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |span| line_and_column(text, span.start));
            ConfigError::Parse { origin: origin.to_owned(), line, column, message: e.message().trim().to_owned() }
        })?;
        raw.validate(origin)
    }
}

impl Config {
    /// Reads the `mcpServers` JSON of desktop clients: its servers are the upstreams, and
    /// every other setting keeps its default.
    pub(crate) fn parse_desktop_json(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let upstreams =
            desktop::upstreams(text).map_err(|message| ConfigError::Invalid { origin: origin.to_owned(), message })?;
        let mut config = RawConfig::default().validate(origin)?;
        config.upstreams = upstreams;
        Ok(config)
    }
}

impl RawConfig {
    fn validate(self, origin: &str) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { origin: origin.to_owned(), message };
        let mut upstreams = match self.upstreams {
            // No [upstreams] at all: the built-in tools, so a bare config still serves.
            None => vec![UpstreamSpec::new("builtin", UpstreamKind::Builtin)],
            Some(raw) => upstreams::specs(raw).map_err(invalid)?,
        };
        // An upstream without a call_timeout_secs of its own gets the gateway's: no call
        // waits forever.
        let call_timeout = Duration::from_secs(self.server.call_timeout_secs.max(1));
        for spec in &mut upstreams {
            spec.call_timeout.get_or_insert(call_timeout);
        }
        let invalid = |message: String| ConfigError::Invalid { origin: origin.to_owned(), message };
        for (key, path) in
            [("paths.sse", &self.paths.sse), ("paths.messages", &self.paths.messages), ("paths.mcp", &self.paths.mcp)]
        {
            if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') || path.contains(['?', '#']) {
                return Err(invalid(format!("{key} must be a path like \"/name\", not {path:?}")));
            }
        }
        let p = &self.paths;
        if p.sse == p.messages || p.sse == p.mcp || p.messages == p.mcp {
            return Err(invalid("paths.sse, paths.messages and paths.mcp must differ".into()));
        }
        let prefix = self.server.public_prefix.trim_end_matches('/');
        if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.contains(['?', '#'])) {
            return Err(invalid(format!("server.public_prefix must be empty or start with '/', not {prefix:?}")));
        }
        if self.server.worker_threads > MAX_WORKER_THREADS {
            return Err(invalid(format!("server.worker_threads must be at most {MAX_WORKER_THREADS}")));
        }
        if self.server.max_body_bytes == 0 {
            return Err(invalid("server.max_body_bytes must be positive".into()));
        }
        let s = &self.sessions;
        for (key, value) in [("sessions.inbound_queue", s.inbound_queue), ("sessions.stream_queue", s.stream_queue)] {
            if value == 0 {
                return Err(invalid(format!("{key} must be positive")));
            }
        }
        let hosts = match (self.security.allowed_hosts, self.security.allowed_origins) {
            (None, None) if self.server.listen.ip().is_loopback() => HostPolicy::loopback(),
            (allowed_hosts, allowed_origins) => HostPolicy { allowed_hosts, allowed_origins },
        };
        let token_names = self.auth.as_ref().map(auth::RawAuth::token_names).unwrap_or_default();
        let auth = match self.auth {
            None => None,
            Some(raw) => Some(raw.build().map_err(|m| invalid(format!("auth: {m}")))?),
        };
        if s.max_sessions == 0 || s.max_sessions_per_credential == Some(0) {
            return Err(invalid(
                "sessions.max_sessions and sessions.max_sessions_per_credential must be positive".into(),
            ));
        }
        if s.max_listeners == 0 {
            return Err(invalid("sessions.max_listeners must be positive".into()));
        }
        let sealer = match &self.server.request_state_key_file {
            Some(path) => {
                let key = std::fs::read(path)
                    .map_err(|e| invalid(format!("server.request_state_key_file {}: {e}", path.display())))?;
                Sealer::new(key.trim_ascii()).map_err(|e| invalid(format!("server.request_state_key_file: {e}")))?
            }
            None => Sealer::generate().map_err(|e| invalid(e.to_string()))?,
        };
        let ttl = match self.server.request_state_ttl_secs {
            Some(0) => return Err(invalid("server.request_state_ttl_secs must be positive".into())),
            other => other.map(Duration::from_secs),
        };
        let mrtr = MrtrConfig { sealer: Arc::new(sealer), ttl };
        let names: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
        let policy =
            self.policy.build(&names, auth.is_some(), &token_names).map_err(|m| invalid(format!("policy: {m}")))?;
        let rate_limits = self.rate_limits.build().map_err(invalid)?;
        let cluster = match self.cluster {
            None => None,
            Some(raw) => Some(raw.build().map_err(invalid)?),
        };
        let edge = EdgeConfig {
            keepalive: Duration::from_secs(s.keepalive_secs),
            legacy_grace: Duration::from_secs(s.legacy_grace_secs),
            max_body: self.server.max_body_bytes,
            messages_path: p.messages.clone(),
            public_prefix: prefix.to_owned(),
            hosts,
            auth,
            stateless: self.server.stateless,
            rate_limits,
        };
        Ok(Config {
            listen: self.server.listen,
            header_read_timeout: Duration::from_secs(self.server.header_read_timeout_secs.max(1)),
            drain_timeout: Duration::from_secs(self.server.drain_timeout_secs),
            // hyper's floor for its read buffer.
            max_header_bytes: self.server.max_header_bytes.max(8192),
            worker_threads: (self.server.worker_threads > 0).then_some(self.server.worker_threads),
            paths: Paths { sse: p.sse.clone(), messages: p.messages.clone(), mcp: p.mcp.clone() },
            edge,
            limits: SessionLimits {
                inbound: s.inbound_queue,
                stream: s.stream_queue,
                backlog: s.backlog,
                log_events: s.event_log_events,
                log_bytes: s.event_log_bytes,
                stall: Duration::from_secs(s.stream_stall_secs.max(1)),
            },
            idle_timeout: Duration::from_secs(s.idle_timeout_secs),
            park_after: (s.park_after_secs > 0).then(|| Duration::from_secs(s.park_after_secs)),
            upstreams,
            caps: SessionCaps {
                total: s.max_sessions,
                per_credential: s.max_sessions_per_credential,
                listeners: s.max_listeners,
            },
            mrtr,
            policy,
            audit_arguments: self.audit.arguments,
            cluster,
        })
    }
}

/// 1-based line and column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        let c = Config::parse(DEFAULT_TOML, "default").expect("valid");
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(c.paths.mcp, "/mcp");
        assert_eq!(c.edge.max_body, 4 * 1024 * 1024);
        assert!(c.edge.hosts.allowed_hosts.is_some(), "loopback listen gets the loopback host policy");
    }

    #[test]
    fn an_empty_file_means_defaults() {
        let c = Config::parse("", "empty").expect("valid");
        assert_eq!(c.edge.keepalive, Duration::from_secs(15));
        assert_eq!(c.caps.listeners, 1024);
    }

    #[test]
    fn max_listeners_is_read_and_must_be_positive() {
        let c = Config::parse("[sessions]\nmax_listeners = 3\n", "f").expect("valid");
        assert_eq!(c.caps.listeners, 3);
        let err = Config::parse("[sessions]\nmax_listeners = 0\n", "f").expect_err("refused");
        assert!(err.to_string().contains("sessions.max_listeners"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let err = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", "f.toml").expect_err("refused");
        let text = err.to_string();
        assert!(text.starts_with("f.toml:3:"), "{text}");
        assert!(text.contains("lisen"), "{text}");
    }

    #[test]
    fn worker_threads_zero_means_one_per_cpu() {
        assert_eq!(Config::parse("", "f").expect("valid").worker_threads, None);
        assert_eq!(Config::parse("[server]\nworker_threads = 0\n", "f").expect("valid").worker_threads, None);
        assert_eq!(Config::parse("[server]\nworker_threads = 1\n", "f").expect("valid").worker_threads, Some(1));
        let err = Config::parse("[server]\nworker_threads = 5000\n", "f").expect_err("refused");
        assert!(err.to_string().contains("server.worker_threads"), "{err}");
    }

    #[test]
    fn every_upstream_has_a_call_deadline() {
        let text = "[server]\ncall_timeout_secs = 7\n[upstreams.a]\nkind = \"builtin\"\n\
                    [upstreams.b]\nkind = \"builtin\"\ncall_timeout_secs = 2\n";
        let c = Config::parse(text, "f").expect("valid");
        let limits: Vec<_> = c.upstreams.iter().map(|u| u.call_timeout).collect();
        assert_eq!(limits, [Some(Duration::from_secs(7)), Some(Duration::from_secs(2))]);
        let c = Config::parse("", "f").expect("valid");
        assert_eq!(c.upstreams[0].call_timeout, Some(mcpgw_core::DEFAULT_CALL_TIMEOUT));
        assert_eq!(mcpgw_core::DEFAULT_CALL_TIMEOUT, Duration::from_secs(300));
    }

    #[test]
    fn an_upstreams_era_defaults_by_kind_and_sse_has_only_the_handshake_era() {
        use mcpgw_core::Era;
        let upstream = |kind: &str, era: &str| {
            let reach = match kind {
                "stdio" => "command = \"x\"",
                _ => "url = \"http://127.0.0.1:1/mcp\"",
            };
            format!("[upstreams.u]\nkind = \"{kind}\"\n{reach}\n{era}")
        };
        let era = |text: &str| Config::parse(text, "f").map(|c| c.upstreams[0].era);
        assert_eq!(era(&upstream("http", "")).expect("valid"), Era::Auto);
        assert_eq!(era(&upstream("stdio", "")).expect("valid"), Era::Handshake);
        assert_eq!(era(&upstream("sse", "")).expect("valid"), Era::Handshake);
        assert_eq!(era(&upstream("http", "era = \"modern\"")).expect("valid"), Era::Modern);
        assert_eq!(era(&upstream("http", "era = \"handshake\"")).expect("valid"), Era::Handshake);
        assert_eq!(era(&upstream("stdio", "era = \"modern\"")).expect("valid"), Era::Modern);
        assert_eq!(era(&upstream("sse", "era = \"handshake\"")).expect("valid"), Era::Handshake);
        let refused = era(&upstream("sse", "era = \"modern\"")).expect_err("refused").to_string();
        assert!(refused.contains("upstreams.u.era") && refused.contains("sse"), "{refused}");
        let refused = era(&upstream("stdio", "era = \"auto\"")).expect_err("refused").to_string();
        assert!(refused.contains("upstreams.u.era") && refused.contains("never probed"), "{refused}");
        assert!(era("[upstreams.u]\nkind = \"builtin\"\nera = \"modern\"\n").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::parse("[paths]\nmcp = \"mcp\"\n", "f").is_err());
        assert!(Config::parse("[paths]\nmcp = \"/sse\"\n", "f").is_err());
        assert!(Config::parse("[server]\nlisten = \"nowhere\"\n", "f").is_err());
    }

    #[test]
    fn upstreams_keep_their_order_and_kind_specific_keys_are_checked() {
        let text = r#"
[upstreams.zeta]
kind = "stdio"
command = "server"
args = ["--stdio"]
share = "shared"
tools_deny = ["rm"]

[upstreams.alpha]
kind = "http"
url = "http://127.0.0.1:9/mcp"
headers = { Authorization = "Bearer x" }
prefix = "a_"

[upstreams.builtin]
kind = "builtin"
"#;
        let c = Config::parse(text, "f").expect("valid");
        let names: Vec<&str> = c.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha", "builtin"]);
        assert_eq!(c.upstreams[0].share, mcpgw_core::Share::Shared);
        assert!(!c.upstreams[0].tools.allows("rm"));
        assert_eq!(c.upstreams[1].prefix.as_deref(), Some("a_"));

        let wrong = Config::parse("[upstreams.x]\nkind = \"stdio\"\ncommand = \"a\"\nurl = \"http://b\"\n", "f")
            .expect_err("refused");
        assert!(wrong.to_string().contains("upstreams.x.url"), "{wrong}");
        let missing = Config::parse("[upstreams.x]\nkind = \"http\"\n", "f").expect_err("refused");
        assert!(missing.to_string().contains("upstreams.x.url"), "{missing}");
        let unknown = Config::parse("[upstreams.x]\nkind = \"builtin\"\ncomand = \"a\"\n", "f").expect_err("refused");
        assert!(unknown.to_string().contains("comand") && unknown.to_string().starts_with("f:3:"), "{unknown}");
        let bad_kind = Config::parse("[upstreams.x]\nkind = \"ftp\"\n", "f").expect_err("refused");
        assert!(bad_kind.to_string().contains("ftp"), "{bad_kind}");
    }

    #[test]
    fn every_example_config_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("config/examples") {
            let path = entry.expect("entry").path();
            // haproxy.cfg and its kind are the load balancer's, not mcpgw's.
            if !path.extension().is_some_and(|e| e == "toml" || e == "json") {
                continue;
            }
            Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
            seen += 1;
        }
        assert!(seen >= 3, "the examples are there");
    }

    #[test]
    fn auth_takes_digests_inline_and_from_a_file() {
        let file = std::env::temp_dir().join(format!("mcpgw-tokens-{}", std::process::id()));
        let b = mcpgw_transport::auth::digest_hex("b");
        std::fs::write(&file, format!("# ops\n\n{b}\n")).expect("write");
        let text = format!(
            "[auth]\ntoken_sha256 = [\"{}\"]\ntoken_file = \"{}\"\n",
            mcpgw_transport::auth::digest_hex("a"),
            file.display()
        );
        let c = Config::parse(&text, "f").expect("valid");
        assert_eq!(c.edge.auth.as_ref().map(|a| a.static_tokens()), Some(2));
        assert!(Config::parse("[auth]\n", "f").is_err(), "auth without a token");
        assert!(Config::parse("[auth]\ntoken_sha256 = [\"short\"]\n", "f").is_err());
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn the_request_state_key_comes_from_a_file_of_at_least_32_bytes() {
        let file = std::env::temp_dir().join(format!("mcpgw-state-key-{}", std::process::id()));
        let with = |file: &std::path::Path| {
            format!("[server]\nrequest_state_key_file = \"{}\"\nrequest_state_ttl_secs = 7\n", file.display())
        };
        std::fs::write(&file, format!("{}\n", "k".repeat(32))).expect("write");
        let c = Config::parse(&with(&file), "f").expect("valid");
        assert_eq!(c.mrtr.ttl, Some(Duration::from_secs(7)));
        std::fs::write(&file, "k".repeat(31)).expect("write");
        let short = Config::parse(&with(&file), "f").expect_err("a short key");
        assert!(short.to_string().contains("at least 32"), "{short}");
        let _ = std::fs::remove_file(&file);
        assert!(Config::parse(&with(&file), "f").is_err(), "a missing key file");
        assert!(Config::parse("[server]\nrequest_state_ttl_secs = 0\n", "f").is_err());
        assert_eq!(Config::parse("", "f").expect("valid").mrtr.ttl, None, "the call deadline by default");
    }

    #[test]
    fn cluster_is_off_unless_configured_and_its_values_are_checked() {
        assert_eq!(Config::parse("", "f").expect("valid").cluster, None);
        let c = Config::parse("[cluster]\nnode = \"0A01\"\nstore = \"redis://127.0.0.1:6379\"\n", "f").expect("valid");
        let cluster = c.cluster.expect("a cluster");
        assert_eq!((cluster.node.to_string(), cluster.node_derived), ("0a01".to_owned(), false));
        assert_eq!(cluster.key_prefix, "mcpgw");
        let c = Config::parse("[cluster]\nstore = \"unix:///run/redis.sock\"\n", "f").expect("valid");
        assert!(c.cluster.expect("a cluster").node_derived, "no node: derived from the host name");
        let c = Config::parse("[cluster]\nnode = \"0002\"\nstore = \"none\"\n", "f").expect("valid");
        assert_eq!(c.cluster.expect("a cluster").store, None, "affinity only");
        for (bad, key) in [
            ("[cluster]\nnode = \"1\"\nstore = \"redis://h\"\n", "cluster.node"),
            ("[cluster]\nnode = \"0001\"\n", "cluster.store"),
            ("[cluster]\nstore = \"http://h\"\n", "cluster.store"),
            ("[cluster]\nstore = \"redis://h\"\nkey_prefix = \"a b\"\n", "cluster.key_prefix"),
        ] {
            let err = Config::parse(bad, "f").expect_err("refused");
            assert!(err.to_string().contains(key), "{bad}: {err}");
        }
    }

    #[test]
    fn no_upstreams_section_means_the_builtin_tools() {
        let c = Config::parse("", "f").expect("valid");
        assert_eq!(c.upstreams.len(), 1);
        assert_eq!(c.upstreams[0].kind, UpstreamKind::Builtin);
    }

    #[test]
    fn a_public_listen_allows_any_host_unless_configured() {
        let c = Config::parse("[server]\nlisten = \"0.0.0.0:8080\"\n", "f").expect("valid");
        assert!(c.edge.hosts.allowed_hosts.is_none());
        let c =
            Config::parse("[server]\nlisten = \"0.0.0.0:8080\"\n[security]\nallowed_hosts = [\"mcp.example\"]\n", "f")
                .expect("valid");
        assert_eq!(c.edge.hosts.allowed_hosts, Some(vec!["mcp.example".to_owned()]));
    }
}
