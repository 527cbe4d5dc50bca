//! [`Edge::handle`]: one request to an MCP endpoint, from the Host and Origin checks and
//! authentication through reading a POST body to the handler of its route, and every
//! refusal turned into its response.

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};

use crate::auth::Identity;
use crate::body::Body;
use crate::checks;
use crate::edge::{Edge, Route, Sessions};
use crate::error::Error;
use crate::{legacy, message, streamable};

impl<S: Sessions> Edge<S> {
    /// Answers one request routed to an MCP endpoint. Host and Origin are checked before
    /// anything else; every answer, errors included, carries the CORS headers.
    pub async fn handle<B>(&self, route: Route, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let mut response = match self.config.hosts.check(&parts) {
            // A refused Host or Origin gets no CORS headers: its page may not read the answer.
            Err(e) => return e.into_response(),
            Ok(()) if parts.method == Method::OPTIONS => {
                let mut response = Response::new(Body::Empty);
                *response.status_mut() = StatusCode::NO_CONTENT;
                checks::add_preflight(&parts.headers, response.headers_mut());
                return response;
            }
            Ok(()) => match self.authenticate(&parts).await {
                Err(e) => self.refuse(e, &parts, body).await,
                Ok(owner) => self.read_and_serve(route, &parts, body, owner).await,
            },
        };
        checks::add_cors(&parts.headers, response.headers_mut());
        response
    }

    /// Reads a POST body, then serves the request. Reading comes before any refusal: an
    /// HTTP/1.1 answer sent before the body was read makes hyper close the connection, and
    /// clients that reuse it (a fallback `initialize` right after a refused 2026 probe) then
    /// fail. A refusal after that carries the id of the request it answers, when the body
    /// names one.
    async fn read_and_serve<B>(&self, route: Route, parts: &Parts, body: B, owner: Option<Identity>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let bytes = if parts.method == Method::POST && route != Route::LegacyStream {
            match message::read_body(body, self.config.max_body).await {
                Ok(bytes) => bytes,
                Err(e) => return e.into_response(),
            }
        } else {
            Bytes::new()
        };
        match self.serve(route, parts, &bytes, owner).await {
            Ok(response) => response,
            Err(e) => e.answering(message::request_id(&bytes).as_ref()),
        }
    }

    /// Serves a request whose body (for a POST) has been read.
    async fn serve(
        &self,
        route: Route,
        parts: &Parts,
        body: &[u8],
        owner: Option<Identity>,
    ) -> Result<Response<Body>, Error> {
        match route {
            Route::LegacyStream if parts.method == Method::GET => legacy::connect(self, parts, owner).await,
            Route::LegacyStream => Err(Error::MethodNotAllowed("GET, OPTIONS")),
            Route::LegacyMessages if parts.method == Method::POST => legacy::post(self, parts, body, owner).await,
            Route::LegacyMessages => Err(Error::MethodNotAllowed("POST, OPTIONS")),
            Route::Streamable => streamable::handle(self, parts, body, owner).await,
        }
    }

    /// `GET /.well-known/oauth-protected-resource[/…]`: the protected resource metadata
    /// (RFC 9728), when JWTs are accepted; `None` otherwise (the path is not served). Any
    /// page may read it: it is public by design, and browser clients discover from it.
    pub fn resource_metadata(&self) -> Option<Response<Body>> {
        let resource = self.config.auth.as_ref()?.resource()?;
        let mut response = Response::new(Body::full(resource.document()));
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, http::HeaderValue::from_static("*"));
        headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("max-age=300"));
        Some(response)
    }

    /// The caller: `None` when authentication is off.
    async fn authenticate(&self, parts: &Parts) -> Result<Option<Identity>, Error> {
        match &self.config.auth {
            Some(auth) => auth.authenticate(&parts.headers).await.map(Some),
            None => Ok(None),
        }
    }

    /// The answer to a request refused by authentication: with JWTs on, its challenge
    /// names the protected resource metadata and the scopes to ask for. A POST body is read
    /// first, as for every refusal (see `read_and_serve`): the 401 is the first answer every
    /// OAuth client gets, and it goes on over the same connection to discover where to get
    /// a token.
    async fn refuse<B>(&self, refusal: Error, parts: &Parts, body: B) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let bytes = if parts.method == Method::POST {
            message::read_body(body, self.config.max_body).await.unwrap_or_default()
        } else {
            Bytes::new()
        };
        let challenge = self.config.auth.as_ref().and_then(|auth| auth.challenge(&refusal));
        let mut response = refusal.answering(message::request_id(&bytes).as_ref());
        if let Some(challenge) = challenge {
            response.headers_mut().insert(http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

#[cfg(test)]
mod tests;
