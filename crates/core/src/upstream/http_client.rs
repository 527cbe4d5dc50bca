//! The one HTTP client every remote upstream connection uses.
//!
//! rmcp's default client for Streamable HTTP turns connection pooling off, so every POST
//! to an upstream would pay a TCP (and TLS) handshake. rmcp drains a POST's event stream
//! after the response it was waiting for, so a pooled connection comes back clean; one
//! process-wide client lets every session and every reconnect reuse the same keep-alive
//! connections (reqwest pools per origin).
//!
//! It also holds how a reply stream that ends early is resumed. An upstream may close a
//! request's SSE reply before the result (SEP-1699, MCP 2025-11-25) after an event with an id
//! and a `retry:`; rmcp's client then waits `retry` and asks for the rest with `GET` and
//! `Last-Event-ID`, and the result reaches the call once. rmcp retries failed resumptions
//! forever by default; [`resume_policy`] bounds them (and `resume` bounds the resumes that
//! succeed but bring nothing).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rmcp::transport::common::client_side_sse::{ExponentialBackoff, SseRetryPolicy};

/// Idle pooled connections kept per upstream origin.
const IDLE_PER_HOST: usize = 64;
/// How long an idle pooled connection is kept (below common server keep-alive timeouts,
/// so the gateway closes first and never writes into a connection the server just closed).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed for one request, all same-origin 307/308.
const MAX_REDIRECTS: usize = 5;
/// Failed attempts to reopen an event stream (a `GET` with `Last-Event-ID` that errors)
/// before it is given up; the call waiting on it then fails at once.
const RESUME_ATTEMPTS: usize = 5;
/// The wait before resuming when the upstream sent no `retry:`, doubled after each failure
/// (then 0.5 + 1 + 2 + 4 s between the attempts: an upstream that cannot serve the rest
/// for that long has lost it, and the call should fail rather than wait for its deadline).
const RESUME_FIRST_WAIT: Duration = Duration::from_millis(250);
/// The longest wait between two failed resumptions.
const RESUME_MAX_WAIT: Duration = Duration::from_secs(5);

/// The shared client (built on first use; cheap to clone).
pub(crate) fn shared() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(build).clone()
}

/// How rmcp's Streamable HTTP client resumes an event stream: the upstream's `retry:` when
/// it sent one (rmcp honours it), else 250 ms doubling to 5 s, at most [`RESUME_ATTEMPTS`]
/// failures in a row. A reply stream that ends cleanly is resumed again each time; the
/// `resume` module bounds that.
pub(crate) fn resume_policy() -> Arc<dyn SseRetryPolicy> {
    // The struct is non-exhaustive: start from its default and set the fields.
    let mut policy = ExponentialBackoff::default();
    policy.max_times = Some(RESUME_ATTEMPTS);
    policy.base_duration = RESUME_FIRST_WAIT;
    policy.max_delay = Some(RESUME_MAX_WAIT);
    Arc::new(policy)
}

fn build() -> reqwest::Client {
    let built = reqwest::Client::builder()
        .pool_max_idle_per_host(IDLE_PER_HOST)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .redirect(same_origin_redirects())
        .build();
    // Building fails only when the TLS backend cannot start; a plain client still reaches
    // http:// upstreams, and an https:// one reports the failure on its first request.
    built.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot build the pooled HTTP client; using a plain one");
        reqwest::Client::new()
    })
}

/// Follows a 307 or 308 to the same origin only: those keep the method and body (a POST
/// stays a POST), and the session id and configured headers never leave the origin they
/// were configured for. Anything else comes back to the caller as the redirect response.
/// Frameworks redirect `/mcp` to `/mcp/`, which is why redirects are followed at all.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let keeps_body = matches!(
            attempt.status(),
            reqwest::StatusCode::TEMPORARY_REDIRECT | reqwest::StatusCode::PERMANENT_REDIRECT
        );
        let same_origin = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
        if !keeps_body || !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_resumptions_are_bounded_and_spaced() {
        let policy = resume_policy();
        let waits: Vec<_> = (0..=RESUME_ATTEMPTS).map(|n| policy.retry(n)).collect();
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(waits, [ms(250), ms(500), ms(1000), ms(2000), ms(4000), None]);
        assert!(waits.iter().flatten().all(|w| *w <= RESUME_MAX_WAIT));
    }
}
