//! Routing by path: the two MCP transports, and the operational endpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderValue, Request, Response, StatusCode, header};
use mcpgw_transport::Body;
use mcpgw_transport::auth::metadata::is_metadata_path;
use mcpgw_transport::edge::{Edge, Route};

use crate::activity::Activity;
use crate::config::Paths;
use crate::metrics::Metrics;
use crate::registry::Registry;

/// Everything a connection needs to answer requests.
pub(crate) struct App {
    edge: Edge<Registry>,
    paths: Paths,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    /// In a cluster, when the last client request came (its stop waits for them to stop);
    /// nothing is kept per request without one.
    activity: Option<Arc<Activity>>,
    /// Listening, upstreams started, not draining: what `/readyz` reports.
    ready: AtomicBool,
}

impl App {
    /// An app serving `edge` on `paths`; `clustered`, an instance of a cluster.
    pub(crate) fn new(
        edge: Edge<Registry>,
        paths: Paths,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        clustered: bool,
    ) -> Self {
        let activity = clustered.then(Activity::new);
        Self { edge, paths, registry, metrics, activity, ready: AtomicBool::new(false) }
    }

    /// In a cluster, when the last client request came.
    pub(crate) fn activity(&self) -> Option<&Arc<Activity>> {
        self.activity.as_ref()
    }

    /// The metrics.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Sets what `/readyz` answers.
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Answers one request, and counts it.
    pub(crate) async fn route<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = tokio::time::Instant::now();
        let method = request.method().clone();
        let path = request.uri().path();
        let root = path == "/" && (method == http::Method::GET || method == http::Method::HEAD);
        let (label, route) = if is(path, &self.paths.mcp) {
            ("mcp", Some(Route::Streamable))
        } else if is(path, &self.paths.sse) {
            ("sse", Some(Route::LegacyStream))
        } else if is(path, &self.paths.messages) {
            ("messages", Some(Route::LegacyMessages))
        } else {
            match path {
                "/healthz" => ("healthz", None),
                "/readyz" => ("readyz", None),
                "/metrics" => ("metrics", None),
                _ if is_metadata_path(path) => ("oauth_metadata", None),
                _ => ("other", None),
            }
        };
        // Probes go on after the load balancer has stopped sending clients' requests.
        if let Some(activity) = &self.activity
            && !matches!(label, "healthz" | "readyz" | "metrics")
        {
            activity.requested();
        }
        let response = match (route, label) {
            // Boxed: hyper keeps room for a connection's request future as long as the
            // connection lives, and the MCP handlers make it KiBs; an idle legacy event
            // stream should not hold that.
            (Some(route), _) => Box::pin(self.edge.handle(route, request)).await,
            (None, "other") if root => self.index(),
            (None, "healthz") => self.health(),
            (None, "readyz") if self.ready.load(Ordering::SeqCst) => text(StatusCode::OK, "ready\n"),
            (None, "readyz") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
            (None, "metrics") => self.render_metrics(),
            (None, "oauth_metadata") if method == http::Method::GET || method == http::Method::HEAD => {
                self.edge.resource_metadata().unwrap_or_else(|| text(StatusCode::NOT_FOUND, "not found\n"))
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        };
        self.metrics.http_request(label, &method, response.status().as_u16(), started.elapsed());
        response
    }

    fn render_metrics(&self) -> Response<Body> {
        let mut response = Response::new(Body::full(self.metrics.render()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        response
    }
}

impl App {
    /// `/healthz`: the process is alive and serving; with the live session counts (and, in
    /// a cluster, whether the session store answers).
    fn health(&self) -> Response<Body> {
        let (legacy, streamable) = self.registry.counts();
        let parked = self.registry.parked();
        // In a cluster, the store's state too (an instance serves its own sessions either way).
        let store = match self.registry.store_up() {
            None => "",
            Some(true) => r#","store":"up""#,
            Some(false) => r#","store":"down""#,
        };
        let body = format!(
            r#"{{"status":"ok","sessions":{{"legacy":{legacy},"streamable":{streamable},"parked":{parked}}}{store}}}"#
        );
        let mut response = Response::new(Body::full(body));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

impl App {
    /// `GET /`: a short page for whoever opens the address in a browser or with curl,
    /// saying where the MCP endpoints are (the root itself serves no MCP).
    fn index(&self) -> Response<Body> {
        let Paths { mcp, sse, messages } = &self.paths;
        let body = format!(
            "mcpgw {}: an MCP gateway.\n\n\
             Streamable HTTP: {mcp}\n\
             Legacy HTTP+SSE: {sse} (its clients POST to {messages})\n\
             Health: /healthz (readiness: /readyz, metrics: /metrics)\n",
            env!("CARGO_PKG_VERSION")
        );
        let mut response = Response::new(Body::full(body));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        response
    }
}

/// `path` is the endpoint, with or without one trailing slash (served directly: a redirect
/// breaks strict clients and proxies).
fn is(path: &str, endpoint: &str) -> bool {
    path.strip_suffix('/').unwrap_or(path) == endpoint
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
