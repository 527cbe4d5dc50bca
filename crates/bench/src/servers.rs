//! The baseline servers, each run as a process of its own (so its CPU time and memory can be
//! read from `/proc`), on a multi-thread runtime with the same worker count as mcpgw's default
//! (one per core), hyper 1 through `hyper_util`'s auto (HTTP/1.1 + HTTP/2) builder with
//! `TCP_NODELAY`, as mcpgw's listener:
//!
//! - `serve-rmcp`: rmcp's own `StreamableHttpService` serving mcpgw's built-in tools
//!   (`mcpgw_core::upstream::builtin::Builtin`), in session mode (SSE replies) or stateless JSON
//!   mode; also the http upstream of the overhead runs;
//! - `serve-hyper`: a bare hyper server answering every request that has an `id` with a fixed
//!   `tools/call` result (this machine's ceiling), and anything else with 202.
//!
//! Each prints `listening on http://IP:PORT` on stderr and exits after `max_secs`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use mcpgw_core::upstream::builtin::Builtin;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    Ok(builder.enable_all().build()?)
}

/// Connections accepted so far (`GET /_bench/accepted` on `serve-rmcp`).
static ACCEPTED: AtomicU64 = AtomicU64::new(0);
/// The path that reports [`ACCEPTED`].
pub(crate) const ACCEPTED_PATH: &str = "/_bench/accepted";

/// Accepts connections on `listener` and serves each with `$service` until `$max` passes.
macro_rules! accept_loop {
    ($listener:expr, $service:expr, $max:expr) => {{
        let listener: TcpListener = $listener;
        eprintln!("listening on http://{}", listener.local_addr()?);
        let deadline = tokio::time::Instant::now() + $max;
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            ACCEPTED.fetch_add(1, Ordering::Relaxed);
            let _ = stream.set_nodelay(true);
            let service = $service.clone();
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
            });
        }
        eprintln!("stopping after {:?}", $max);
        Ok(())
    }};
}

/// rmcp's `StreamableHttpService` over `Builtin`: stateless JSON (`legacy_session_mode=false`,
/// `json_response=true`) or session mode (rmcp's defaults).
pub(crate) fn serve_rmcp(listen: SocketAddr, stateless: bool, workers: Option<usize>, max: Duration) -> Result<()> {
    runtime(workers)?.block_on(async move {
        let config =
            StreamableHttpServerConfig::default().with_legacy_session_mode(!stateless).with_json_response(stateless);
        let service: StreamableHttpService<Builtin, LocalSessionManager> =
            StreamableHttpService::new(|| Ok(Builtin::new()), Arc::new(LocalSessionManager::default()), config);
        let service = TowerToHyperService::new(service);
        // In front of rmcp: how many connections this server accepted, so a run can tell how
        // often its client (mcpgw's http upstream) opened a new one.
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let rmcp = service.clone();
            async move {
                if request.uri().path() == ACCEPTED_PATH {
                    let count = ACCEPTED.load(Ordering::Relaxed).to_string();
                    return Ok(Response::new(Full::new(Bytes::from(count)).boxed()));
                }
                hyper::service::Service::call(&rmcp, request).await
            }
        });
        accept_loop!(TcpListener::bind(listen).await?, service, max)
    })
}

const RESULT_HEAD: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
const RESULT_TAIL: &[u8] = br#","result":{"content":[{"type":"text","text":"hello"}],"isError":false}}"#;

/// The raw `id` value of a JSON-RPC message (`"id":` up to the next `,` or `}`), without parsing.
fn raw_id(body: &[u8]) -> Option<&[u8]> {
    let at = body.windows(5).position(|w| w == b"\"id\":")? + 5;
    let rest = &body[at..];
    let end = rest.iter().position(|&c| c == b',' || c == b'}')?;
    let id = rest[..end].trim_ascii();
    (!id.is_empty()).then_some(id)
}

pub(crate) async fn fixed_reply(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match Limited::new(request.into_body(), 1 << 20).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let response = match raw_id(&body) {
        Some(id) => {
            let mut out = Vec::with_capacity(RESULT_HEAD.len() + id.len() + RESULT_TAIL.len());
            out.extend_from_slice(RESULT_HEAD);
            out.extend_from_slice(id);
            out.extend_from_slice(RESULT_TAIL);
            Response::builder().header(header::CONTENT_TYPE, "application/json").body(Full::new(Bytes::from(out)))
        }
        None => Response::builder().status(StatusCode::ACCEPTED).body(Full::new(Bytes::new())),
    };
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

/// The bare hyper server.
pub(crate) fn serve_hyper(listen: SocketAddr, workers: Option<usize>, max: Duration) -> Result<()> {
    runtime(workers)?.block_on(async move {
        let service = hyper::service::service_fn(fixed_reply);
        accept_loop!(TcpListener::bind(listen).await?, service, max)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_id() {
        assert_eq!(raw_id(br#"{"jsonrpc":"2.0","id":42,"method":"x"}"#), Some(&b"42"[..]));
        assert_eq!(raw_id(br#"{"jsonrpc":"2.0","id": "a" }"#), Some(&br#""a""#[..]));
        assert_eq!(raw_id(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#), None);
    }
}
