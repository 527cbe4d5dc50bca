//! A link's supervisor: connects, waits for the connection to end, backs off and connects
//! again, until the link is cancelled; and what one connection attempt takes (the cap on
//! connections, the era to speak, the connect deadline).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Connection, Link, LinkClient, LinkState};
use crate::error::Error;
use crate::upstream::changes;
use crate::upstream::connect::{self, Connected, Start};
use crate::upstream::spec::Era;

/// The first and the longest wait between reconnects.
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that lived this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// How long a stopped connection's child may take to exit on its own before its process
/// group is killed.
const CHILD_GRACE: Duration = Duration::from_secs(2);

/// Keeps a link connected until it is cancelled: connect, wait for the connection to end,
/// back off, reconnect.
pub(super) async fn supervise(link: Arc<Link>, tasks: TaskTracker) {
    let mut backoff = BACKOFF_START;
    // A connection re-established (after one ended or failed) finds its era anew.
    let mut recheck = false;
    loop {
        if link.cancel.is_cancelled() {
            break;
        }
        link.state.send_replace(LinkState::Connecting);
        let started = tokio::time::Instant::now();
        let lost = CancellationToken::new();
        let attempt = connect_once(&link, &tasks, &lost, recheck).await;
        link.attempted.store(true, Ordering::Release);
        recheck = true;
        match attempt {
            Ok(Connected { running, process_group, gave_up }) => {
                let era = connect::era_of(&running);
                if link.spec.era == Era::Auto {
                    link.count.set_found_era(link.prefers, era);
                }
                let peer = running.peer().clone();
                let offered = peer.peer_info().map(|info| info.capabilities.clone());
                let changes = if era == Era::Modern { changes::filter(offered.as_ref()) } else { None };
                *link.offered.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = offered;
                link.bump();
                link.state.send_replace(LinkState::Up(Connection {
                    peer: peer.clone(),
                    lost: lost.clone(),
                    gave_up,
                    era,
                }));
                tracing::info!(upstream = %link.spec.name, kind = link.spec.kind.as_str(), era = era.as_str(), "upstream connected");
                if let Some(filter) = changes {
                    let weak = Arc::downgrade(&link);
                    tasks.spawn(changes::listen(link.spec.name.clone(), peer, filter, lost.clone(), move |n| {
                        let link = weak.upgrade();
                        async move {
                            if let Some(link) = link {
                                link.list_changed(n).await;
                            }
                        }
                    }));
                }
                let mut waiting = std::pin::pin!(running.waiting());
                let ended = tokio::select! {
                    reason = &mut waiting => Some(reason),
                    () = link.cancel.cancelled() => None,
                };
                lost.cancel();
                // rmcp's service stops with `link.cancel` and closes its transport: a child
                // gets its stdin closed, then SIGTERM, then SIGKILL. Let that run for a
                // moment, so a child can exit cleanly before its group is killed.
                let mut stopped = ended.is_some();
                if !stopped {
                    stopped = tokio::time::timeout(CHILD_GRACE, &mut waiting).await.is_ok();
                }
                // Whatever ended the connection, nothing the child started may outlive it.
                if let Some(group) = process_group {
                    connect::kill_process_group(group);
                    if !stopped {
                        // rmcp waits on the child it started: let it reap the killed one
                        // before this task ends (and with it, maybe, the gateway).
                        let _ = tokio::time::timeout(CHILD_GRACE, &mut waiting).await;
                    }
                }
                link.count.live.fetch_sub(1, Ordering::AcqRel);
                link.bump();
                let Some(reason) = ended else { break };
                link.count.restarts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(upstream = %link.spec.name, ?reason, "upstream connection ended; restarting");
                link.state.send_replace(LinkState::Down("it exited and is restarting".into()));
                if started.elapsed() >= STABLE_AFTER {
                    backoff = BACKOFF_START;
                }
            }
            Err(e) => {
                let why = match e {
                    Error::Unavailable { why, .. } => why,
                    other => other.chain(),
                };
                tracing::warn!(upstream = %link.spec.name, error = %why, retry_in = ?backoff, "upstream could not be started");
                link.state.send_replace(LinkState::Down(why.into()));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = link.cancel.cancelled() => break,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    link.state.send_replace(LinkState::Closed);
}

async fn connect_once(
    link: &Arc<Link>,
    tasks: &TaskTracker,
    lost: &CancellationToken,
    recheck: bool,
) -> Result<Connected<LinkClient>, Error> {
    if let Some(cap) = link.spec.max_connections {
        let now = link.count.live.fetch_add(1, Ordering::AcqRel);
        if now >= cap {
            link.count.live.fetch_sub(1, Ordering::AcqRel);
            return Err(link.unavailable(&format!("it is at its cap of {cap} connections")));
        }
    } else {
        link.count.live.fetch_add(1, Ordering::AcqRel);
    }
    let client = LinkClient { link: Arc::downgrade(link), info: link.client.clone(), lost: lost.clone() };
    let weak = Arc::downgrade(link);
    let ct = link.cancel.child_token();
    // An `auto` upstream whose era another connection found is not asked again, unless
    // this connection replaces one that ended or failed.
    let era = match (link.spec.era, link.count.found_era(link.prefers)) {
        (Era::Auto, Some(found)) if !recheck => found,
        (era, _) => era,
    };
    let connected = tokio::time::timeout(
        link.spec.connect_timeout,
        connect::serve(&link.spec, Start { era, prefers: link.prefers }, client, weak, lost.clone(), ct, tasks),
    )
    .await;
    let result = match connected {
        Ok(result) => result,
        Err(_) => Err(Error::Connect {
            upstream: link.spec.name.clone(),
            what: format!("it did not finish connecting within {:?}", link.spec.connect_timeout),
            source: None,
        }),
    };
    if result.is_err() {
        link.count.live.fetch_sub(1, Ordering::AcqRel);
    }
    result
}
