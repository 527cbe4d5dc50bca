//! Opening one connection to a remote upstream and running rmcp's client over it.

use std::process::Stdio;
use std::time::Duration;

use process_wrap::tokio::{CommandWrap, ProcessGroup};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rmcp::model::ProtocolVersion;
use rmcp::service::{ClientLifecycleMode, RunningService, serve_client_with_lifecycle_and_ct};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientCacheConfig, RoleClient, Service};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::sync::Weak;

use crate::error::{BoxError, Error};
use crate::upstream::http_client;
use crate::upstream::ordered::{Deliver, Ordered};
use crate::upstream::resume::{GaveUp, ResumingClient};
use crate::upstream::spec::{CANCEL_GRACE, DEFAULT_CALL_TIMEOUT, Era, UpstreamKind, UpstreamSpec};
use crate::upstream::sse_client::SseClientTransport;

/// Variables a service manager gives the gateway alone: a child that inherited them could
/// send notifications or take sockets meant for the gateway.
const SERVICE_MANAGER_ENV: [&str; 6] =
    ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// A running connection, the process group of its child (stdio only), and why reply
/// streams were not resumed (Streamable HTTP only).
pub(crate) struct Connected<C: Service<RoleClient>> {
    pub(crate) running: RunningService<RoleClient, C>,
    pub(crate) process_group: Option<u32>,
    pub(crate) gave_up: Option<GaveUp>,
}

/// How rmcp's client starts a connection in `era`. `Auto` is rmcp's: a `server/discover`
/// first, then `initialize` on the same connection when the upstream answers it with an
/// error (a handshake-era Streamable HTTP server refuses a request without a session at
/// once, with a 4xx), or when it does not answer within 10 s. (A connection that prefers
/// the handshake era does the reverse itself, see [`serve`].)
fn lifecycle(era: Era) -> ClientLifecycleMode {
    let modern = vec![ProtocolVersion::V_2026_07_28];
    match era {
        Era::Handshake => ClientLifecycleMode::Initialize,
        Era::Modern => ClientLifecycleMode::Discover { preferred_versions: modern },
        Era::Auto => ClientLifecycleMode::Auto { preferred_versions: modern, legacy_version: None },
    }
}

/// The era a running connection was started in.
pub(crate) fn era_of<C: Service<RoleClient>>(running: &RunningService<RoleClient, C>) -> Era {
    match running.peer().peer_info() {
        Some(info) if !info.protocol_version.has_initialize() => Era::Modern,
        _ => Era::Handshake,
    }
}

/// The era a connection starts in: `era` (the configured one, or the one found before), and
/// the one it `prefers` when that is `Auto` (its client's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    pub(crate) era: Era,
    pub(crate) prefers: Era,
}

/// Starts the upstream (a child, or a connection) and completes `initialize` (or
/// `server/discover`, as `start` says) with it, as `client`; its progress and log
/// notifications go to `link`, in order. An `Auto` connection that prefers the handshake
/// era (a session's: its client is of that era) tries `initialize` first, and
/// `server/discover` on a new connection only when that fails (a modern-only upstream
/// refuses `initialize`); one that prefers the modern era asks `server/discover` first.
pub(crate) async fn serve<C: Service<RoleClient> + Clone, D: Deliver>(
    spec: &UpstreamSpec,
    Start { era, prefers }: Start,
    client: C,
    link: Weak<D>,
    lost: CancellationToken,
    ct: CancellationToken,
    tasks: &TaskTracker,
) -> Result<Connected<C>, Error> {
    let failed = |what: String, source: Option<BoxError>| Error::Connect { upstream: spec.name.clone(), what, source };
    let (mut process_group, mut gave_up) = (None, None);
    let running = match &spec.kind {
        UpstreamKind::Stdio { command, args, env, cwd } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).envs(env);
            for name in SERVICE_MANAGER_ENV {
                cmd.env_remove(name);
            }
            if let Some(cwd) = cwd {
                cmd.current_dir(cwd);
            }
            // Its own process group, so ending the connection ends everything it started.
            let mut wrapped = CommandWrap::from(cmd);
            wrapped.wrap(ProcessGroup::leader());
            let (child, stderr) = TokioChildProcess::builder(wrapped)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| failed(format!("cannot start {command}"), Some(e.into())))?;
            process_group = child.id();
            if let Some(stderr) = stderr {
                let name = spec.name.clone();
                tasks.spawn(async move {
                    let mut lines = tokio::io::BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        tracing::info!(upstream = %name, "stderr: {line}");
                    }
                });
            }
            match serve_client_with_lifecycle_and_ct(client, Ordered::new(child, link, lost), lifecycle(era), ct).await
            {
                Ok(running) => running,
                Err(e) => {
                    if let Some(group) = process_group {
                        kill_process_group(group);
                    }
                    return Err(failed(format!("{} failed", starting(era)), Some(e.into())));
                }
            }
        }
        UpstreamKind::Http { url, headers } => {
            let headers = header_map(headers).map_err(|e| failed(e, None))?;
            let transport = |gave_up: &mut Option<GaveUp>| {
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                    .custom_headers(headers.clone().into_iter().filter_map(|(k, v)| k.map(|k| (k, v))).collect());
                config.retry_config = http_client::resume_policy();
                let http = ResumingClient::new(http_client::shared(), post_deadline(spec));
                *gave_up = Some(http.gave_up());
                Ordered::new(StreamableHttpClientTransport::with_client(http, config), link.clone(), lost.clone())
            };
            let first = if era == Era::Auto && prefers == Era::Handshake { Era::Handshake } else { era };
            let started = serve_client_with_lifecycle_and_ct(
                client.clone(),
                transport(&mut gave_up),
                lifecycle(first),
                ct.clone(),
            )
            .await;
            match started {
                Ok(running) => running,
                Err(e) if first != era => {
                    tracing::debug!(upstream = %spec.name, error = %e, "initialize failed; asking server/discover");
                    let lifecycle = lifecycle(Era::Modern);
                    match serve_client_with_lifecycle_and_ct(client, transport(&mut gave_up), lifecycle, ct).await {
                        Ok(running) => running,
                        // Neither era: the first failure says most (a dead upstream, say).
                        Err(_) => {
                            return Err(failed("initialize (then server/discover) failed".into(), Some(e.into())));
                        }
                    }
                }
                Err(e) => return Err(failed(format!("{} failed", starting(era)), Some(e.into()))),
            }
        }
        UpstreamKind::Sse { url, headers } => {
            let headers = header_map(headers).map_err(|e| failed(e, None))?;
            let transport = SseClientTransport::connect(url, headers, post_deadline(spec), tasks)
                .await
                .map_err(|e| failed("cannot connect".into(), Some(e.into())))?;
            // The legacy transport has no modern era (the configuration refuses one).
            let lifecycle = ClientLifecycleMode::Initialize;
            serve_client_with_lifecycle_and_ct(client, Ordered::new(transport, link, lost), lifecycle, ct)
                .await
                .map_err(|e| failed("initialize failed".into(), Some(e.into())))?
        }
        UpstreamKind::Builtin => return Err(failed("the built-in upstream is not a connection".into(), None)),
    };
    // A gateway must never answer from a stale list of a dead upstream.
    running.peer().set_response_cache_config(ClientCacheConfig::disabled()).await;
    Ok(Connected { running, process_group, gave_up })
}

/// What starting a connection in `era` is called, for errors.
/// How long a POST to an HTTP upstream of what is not bounded by a request's own deadline may
/// take: as long as anything it carries may (a legacy server that holds a POST until its
/// answer is sent is slow, not wrong: `initialize`, a list, a call), and a moment more, so a
/// request's own deadline is what answers its client.
fn post_deadline(spec: &UpstreamSpec) -> Duration {
    let call = spec.call_timeout.unwrap_or(DEFAULT_CALL_TIMEOUT);
    call.max(spec.connect_timeout).max(spec.list_timeout) + CANCEL_GRACE
}

fn starting(era: Era) -> &'static str {
    match era {
        Era::Handshake => "initialize",
        Era::Modern => "server/discover",
        Era::Auto => "server/discover (then initialize)",
    }
}

/// Kills what is left of a child's process group. The child leads its group, so this
/// reaches everything it started (`npx` and the `node` under it, say); a group that is
/// already gone is fine.
pub(crate) fn kill_process_group(group: u32) {
    let Ok(pid) = i32::try_from(group) else { return };
    match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!(group, error = %e, "could not kill an upstream's process group"),
    }
}

fn header_map(headers: &std::collections::BTreeMap<String, String>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("bad header name {name:?}: {e}"))?;
        let value = HeaderValue::from_str(value).map_err(|e| format!("bad value for header {name}: {e}"))?;
        map.insert(name, value);
    }
    Ok(map)
}
