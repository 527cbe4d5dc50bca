//! The listener: accepts connections, serves HTTP/1.1 (keep-alive) and HTTP/2 on each,
//! and shuts down in order: stop accepting, wait for the sessions to end, let connections
//! close within a deadline, then drop the rest.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::io::Counted;
use crate::own_wake::OwnWakes;
use crate::router::App;

/// How the listener runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeOptions {
    /// Time a client has to send its request headers.
    pub(crate) header_read_timeout: Duration,
    /// The largest request head accepted (431 past it).
    pub(crate) max_header_bytes: usize,
    /// How long connections may take to close once the sessions have ended.
    pub(crate) close_deadline: Duration,
}

/// Concurrent streams one HTTP/2 connection may have open.
const HTTP2_MAX_STREAMS: u32 = 200;

/// Serves `listener` until `stop_accepting` fires; then waits for `sessions_ended` and
/// closes the connections, within the deadline.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    options: ServeOptions,
    stop_accepting: CancellationToken,
    sessions_ended: CancellationToken,
    tasks: TaskTracker,
) {
    let mut builder = auto::Builder::new(Tracked(tasks.clone()));
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(options.max_header_bytes)
        .keep_alive(true);
    // Streams per HTTP/2 connection, set here rather than left to hyper's default: one client
    // multiplexes its calls, its GET stream and its sleeps on one connection
    // (tests/tests/http2.rs holds 128 open at once).
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(HTTP2_MAX_STREAMS);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: keep
                    // serving the connections we have, and give them a moment to free
                    // descriptors rather than spin on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop_accepting.cancelled() => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %peer, "could not set TCP_NODELAY");
        }
        let stream = Counted::new(stream, app.metrics().clone());
        let app = app.clone();
        let service = service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.route(request).await) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tasks.spawn(OwnWakes::new(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        }));
    }
    drop(listener);
    tracing::info!("stopped accepting connections");
    sessions_ended.cancelled().await;
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("all connections closed"),
        () = tokio::time::sleep(options.close_deadline) => {
            tracing::warn!(deadline = ?options.close_deadline, "connections still open at the deadline; dropping them");
        }
    }
}

/// Runs what hyper spawns (each HTTP/2 stream's handler) on the gateway's task tracker, so
/// that the wait for every task at exit covers them too.
#[derive(Clone)]
struct Tracked(TaskTracker);

impl<F> hyper::rt::Executor<F> for Tracked
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}
