//! The one HTTP client every remote upstream connection uses.
//!
//! rmcp's default client for Streamable HTTP turns connection pooling off, so every POST
//! to an upstream would pay a TCP (and TLS) handshake. rmcp drains a POST's event stream
//! after the response it was waiting for, so a pooled connection comes back clean; one
//! process-wide client lets every session and every reconnect reuse the same keep-alive
//! connections (reqwest pools per origin).

use std::sync::OnceLock;
use std::time::Duration;

/// Idle pooled connections kept per upstream origin.
const IDLE_PER_HOST: usize = 64;
/// How long an idle pooled connection is kept (below common server keep-alive timeouts,
/// so the gateway closes first and never writes into a connection the server just closed).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed for one request, all same-origin 307/308.
const MAX_REDIRECTS: usize = 5;

/// The shared client (built on first use; cheap to clone).
pub(crate) fn shared() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(build).clone()
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
