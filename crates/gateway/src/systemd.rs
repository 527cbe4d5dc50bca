//! systemd integration: readiness and status notifications, the watchdog, and socket
//! activation. Every call is a no-op when the gateway was not started by systemd.

use std::net::SocketAddr;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::registry::Registry;

/// Sends one state change to the service manager; failures are logged, never fatal.
fn notify(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}

/// The listener is bound and the upstreams have started.
pub(crate) fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts; [`ready`] ends it.
pub(crate) fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    notify(&states);
}

/// Shutdown starts.
pub(crate) fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
}

/// Pings the watchdog at half its interval when systemd set one (WatchdogSec=), until
/// `shutdown`. The pings come from a runtime task, so a wedged runtime stops them and
/// systemd restarts the service.
pub(crate) async fn watchdog(shutdown: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else { return };
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tokio::select! {
            _ = tick.tick() => notify(&[NotifyState::Watchdog]),
            () = shutdown.cancelled() => return,
        }
    }
}

/// Keeps `STATUS=` up to date with the live session counts, until `shutdown`.
pub(crate) async fn report_status(registry: std::sync::Arc<Registry>, shutdown: CancellationToken) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let mut last = None;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let counts = registry.counts();
                if last != Some(counts) {
                    last = Some(counts);
                    notify(&[NotifyState::Status(&status_line(counts))]);
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// `STATUS=` text: the live session counts.
pub(crate) fn status_line((legacy, streamable): (usize, usize)) -> String {
    format!("{} sessions ({streamable} streamable, {legacy} legacy)", legacy + streamable)
}

/// The listening socket systemd passed (socket activation: `LISTEN_FDS`, `LISTEN_PID`),
/// if any. Call it before the runtime starts threads: it clears those variables.
pub(crate) fn inherited_listener() -> std::io::Result<Option<std::net::TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    fds.take_tcp_listener(0)
}

/// The inherited socket, or a fresh bind of `addr` when there is none. Returns whether
/// the socket was inherited.
pub(crate) async fn listener(
    inherited: Option<std::net::TcpListener>,
    addr: SocketAddr,
) -> std::io::Result<(tokio::net::TcpListener, bool)> {
    match inherited {
        Some(listener) => {
            listener.set_nonblocking(true)?;
            Ok((tokio::net::TcpListener::from_std(listener)?, true))
        }
        None => Ok((tokio::net::TcpListener::bind(addr).await?, false)),
    }
}
