//! Routing by path: the two MCP transports, and the operational endpoints.

use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};
use mcpgw_transport::Body;
use mcpgw_transport::edge::{Edge, Route};

use crate::config::Paths;
use crate::registry::Registry;

/// Everything a connection needs to answer requests.
pub(crate) struct App {
    edge: Edge<Registry>,
    paths: Paths,
    registry: Arc<Registry>,
}

impl App {
    /// An app serving `edge` on `paths`.
    pub(crate) fn new(edge: Edge<Registry>, paths: Paths, registry: Arc<Registry>) -> Self {
        Self { edge, paths, registry }
    }

    /// The session registry.
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Answers one request.
    pub(crate) async fn route<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = request.uri().path();
        let route = if is(path, &self.paths.mcp) {
            Some(Route::Streamable)
        } else if is(path, &self.paths.sse) {
            Some(Route::LegacyStream)
        } else if is(path, &self.paths.messages) {
            Some(Route::LegacyMessages)
        } else {
            None
        };
        if let Some(route) = route {
            return self.edge.handle(route, request).await;
        }
        match path {
            "/healthz" => self.health(),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

impl App {
    /// `/healthz`: the process is alive and serving; with the live session counts.
    fn health(&self) -> Response<Body> {
        let (legacy, streamable) = self.registry.counts();
        let body = format!(r#"{{"status":"ok","sessions":{{"legacy":{legacy},"streamable":{streamable}}}}}"#);
        let mut response = Response::new(Body::full(body));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
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
