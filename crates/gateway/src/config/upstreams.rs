//! The `[upstreams.NAME]` tables of the TOML configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use mcpgw_core::upstream::credentials::Slot;
use mcpgw_core::{Era, Share, ToolFilter, UpstreamKind, UpstreamSpec};
use serde::Deserialize;

use crate::config::credentials::Collect;

/// One `[upstreams.NAME]` table as written. Keys that do not apply to its `kind` are
/// refused by [`RawUpstream::into_spec`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    kind: RawKind,
    // stdio
    command: Option<String>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    cwd: Option<PathBuf>,
    // http, sse
    url: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    // stdio, http, sse with share = "session": secrets for `${secret:NAME}`
    credentials: Option<PathBuf>,
    // every kind but builtin
    share: Option<RawShare>,
    max_connections: Option<usize>,
    connect_timeout_secs: Option<u64>,
    list_timeout_secs: Option<u64>,
    // stdio, http, sse (sse: handshake only)
    era: Option<RawEra>,
    // every kind
    call_timeout_secs: Option<u64>,
    prefix: Option<String>,
    tools_allow: Option<Vec<String>>,
    tools_deny: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawKind {
    Builtin,
    Stdio,
    Http,
    Sse,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawEra {
    Auto,
    Modern,
    Handshake,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawShare {
    Session,
    Shared,
}

/// Upstream names become tool prefixes and metric labels: keep them plain.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks `headers` as they will be sent, so a bad name or value fails the load, naming its
/// key under `at`, instead of every connect at run time. A value is never echoed: it is
/// often a secret.
pub(crate) fn check_headers(headers: &BTreeMap<String, String>, at: &str) -> Result<(), String> {
    for (name, value) in headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("{at}.{name:?}: not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"));
        }
        if http::HeaderValue::from_str(value).is_err() {
            return Err(format!(
                "{at}.{name}: not a valid HTTP header value (visible ASCII, spaces and tabs; no line breaks)"
            ));
        }
    }
    Ok(())
}

impl RawUpstream {
    pub(crate) fn into_spec(self, name: &str) -> Result<UpstreamSpec, String> {
        let at = |key: &str| format!("upstreams.{name}.{key}");
        if !valid_name(name) {
            return Err(format!("upstreams.{name}: a name is 1 to 64 letters, digits, '_' or '-'"));
        }
        let refuse = |present: bool, key: &str, kind: &str| -> Result<(), String> {
            if present { Err(format!("{} does not apply to kind = \"{kind}\"", at(key))) } else { Ok(()) }
        };
        let mut per_caller = Collect::new();
        let mut kind = match self.kind {
            RawKind::Builtin => {
                for (present, key) in [
                    (self.command.is_some(), "command"),
                    (self.args.is_some(), "args"),
                    (self.env.is_some(), "env"),
                    (self.cwd.is_some(), "cwd"),
                    (self.url.is_some(), "url"),
                    (self.headers.is_some(), "headers"),
                    (self.credentials.is_some(), "credentials"),
                    (self.share.is_some(), "share"),
                    (self.max_connections.is_some(), "max_connections"),
                    (self.connect_timeout_secs.is_some(), "connect_timeout_secs"),
                    (self.list_timeout_secs.is_some(), "list_timeout_secs"),
                    (self.era.is_some(), "era"),
                ] {
                    refuse(present, key, "builtin")?;
                }
                UpstreamKind::Builtin
            }
            RawKind::Stdio => {
                refuse(self.url.is_some(), "url", "stdio")?;
                refuse(self.headers.is_some(), "headers", "stdio")?;
                let command = self
                    .command
                    .filter(|c| !c.trim().is_empty())
                    .ok_or_else(|| format!("{} is required for kind = \"stdio\"", at("command")))?;
                UpstreamKind::Stdio {
                    command,
                    args: self.args.unwrap_or_default(),
                    env: self.env.unwrap_or_default(),
                    cwd: self.cwd,
                }
            }
            kind @ (RawKind::Http | RawKind::Sse) => {
                let label = if kind == RawKind::Http { "http" } else { "sse" };
                for (present, key) in [
                    (self.command.is_some(), "command"),
                    (self.args.is_some(), "args"),
                    (self.env.is_some(), "env"),
                    (self.cwd.is_some(), "cwd"),
                ] {
                    refuse(present, key, label)?;
                }
                let url = self.url.ok_or_else(|| format!("{} is required for kind = \"{label}\"", at("url")))?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("{} must be an http:// or https:// URL, not {url:?}", at("url")));
                }
                let headers = self.headers.unwrap_or_default();
                check_headers(&headers, &at("headers"))?;
                if kind == RawKind::Http {
                    UpstreamKind::Http { url, headers }
                } else {
                    UpstreamKind::Sse { url, headers }
                }
            }
        };
        if let Some(prefix) = &self.prefix
            && !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(format!("{} may hold only letters, digits, '_', '-' and '.'", at("prefix")));
        }
        if self.max_connections == Some(0) {
            return Err(format!("{} must be positive", at("max_connections")));
        }
        let era = match (self.era, &kind) {
            (None, kind) => Era::default_for(kind),
            (Some(RawEra::Handshake), _) => Era::Handshake,
            (Some(RawEra::Modern | RawEra::Auto), UpstreamKind::Sse { .. }) => {
                return Err(format!(
                    "{} must be \"handshake\" for kind = \"sse\": the legacy HTTP+SSE transport has no 2026-07-28 era",
                    at("era")
                ));
            }
            // A stdio child is never probed: many exit on a first request that is not `initialize`.
            (Some(RawEra::Auto), UpstreamKind::Stdio { .. }) => {
                return Err(format!(
                    "{} = \"auto\" is not allowed for kind = \"stdio\" (a child is never probed before initialize): \
                     use \"handshake\" (the default) or \"modern\"",
                    at("era")
                ));
            }
            (Some(RawEra::Modern), _) => Era::Modern,
            (Some(RawEra::Auto), _) => Era::Auto,
        };
        match &mut kind {
            UpstreamKind::Stdio { args, env, .. } => {
                per_caller.args(args, &at("args"))?;
                per_caller.map(env, Slot::Env, &at("env"))?;
            }
            UpstreamKind::Http { headers, .. } | UpstreamKind::Sse { headers, .. } => {
                per_caller.map(headers, Slot::Header, &at("headers"))?;
            }
            UpstreamKind::Builtin => {}
        }
        let mut spec = UpstreamSpec::new(name, kind);
        spec.era = era;
        spec.share = match self.share {
            Some(RawShare::Shared) => Share::Shared,
            Some(RawShare::Session) | None => Share::Session,
        };
        spec.per_caller = per_caller.finish(self.credentials.as_deref(), &at("credentials"))?;
        if spec.per_caller.is_some() && spec.share == Share::Shared {
            return Err(format!(
                "upstreams.{name}: a value takes ${{claim:…}} or ${{secret:…}} from its caller, so it needs \
                 share = \"session\" (a connection per caller), not \"shared\""
            ));
        }
        spec.prefix = self.prefix;
        spec.tools = ToolFilter { allow: self.tools_allow, deny: self.tools_deny.unwrap_or_default() };
        spec.max_connections = self.max_connections;
        if let Some(secs) = self.connect_timeout_secs {
            spec.connect_timeout = Duration::from_secs(secs.max(1));
        }
        if let Some(secs) = self.list_timeout_secs {
            spec.list_timeout = Duration::from_secs(secs.max(1));
        }
        spec.call_timeout = self.call_timeout_secs.map(|secs| Duration::from_secs(secs.max(1)));
        Ok(spec)
    }
}

/// Validates every table, in the order written.
pub(crate) fn specs(raw: IndexMap<String, RawUpstream>) -> Result<Vec<UpstreamSpec>, String> {
    let specs: Vec<UpstreamSpec> = raw.into_iter().map(|(name, r)| r.into_spec(&name)).collect::<Result<_, _>>()?;
    if specs.is_empty() {
        return Err("[upstreams] is empty: configure at least one upstream (for example kind = \"builtin\")".into());
    }
    Ok(specs)
}
