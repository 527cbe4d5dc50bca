//! The HTTP GET the transport's JWT verification asks for (an issuer's metadata and its
//! JWKS): reqwest, with a deadline, no more than a few redirects, and a cap on the size of
//! the answer.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use mcpgw_transport::auth::{Fetch, FetchError};

/// The largest document accepted (a JWKS of a few dozen RSA keys is a few tens of KiB).
const MAX_BYTES: usize = 1024 * 1024;

/// Fetches JSON documents for the JWT verifier.
pub(crate) struct HttpFetch {
    client: reqwest::Client,
}

impl HttpFetch {
    /// A fetcher whose requests end after `timeout`.
    pub(crate) fn new(timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("mcpgw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the HTTP client for JWKS: {e}"))?;
        Ok(Self { client })
    }
}

impl Fetch for HttpFetch {
    fn get(&self, url: &str) -> Pin<Box<dyn Future<Output = Result<Bytes, FetchError>> + Send + '_>> {
        let request = self.client.get(url).header(http::header::ACCEPT, "application/json");
        Box::pin(async move {
            let mut response = request.send().await?.error_for_status()?;
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_BYTES {
                    return Err(format!("the answer is over {MAX_BYTES} bytes").into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Bytes::from(body))
        })
    }
}
