//! The HTTP GET the transport's JWT verification asks for (an issuer's metadata and its
//! JWKS): reqwest, with a deadline, no more than a few redirects, and a cap on the size of
//! the answer; over https only (plain http on loopback), redirects and the `jwks_uri` an
//! issuer's metadata names included.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use mcpgw_transport::auth::{Fetch, FetchError};

/// The largest document accepted (a JWKS of a few dozen RSA keys is a few tens of KiB).
const MAX_BYTES: usize = 1024 * 1024;
/// Redirects followed for one fetch.
const MAX_REDIRECTS: usize = 3;

/// Keys fetched over plain HTTP could be swapped by anyone on the path: https, except on
/// the loopback interface (a local identity provider, tests). The configuration checks the
/// URLs it is given; every fetch checks its own, and every redirect's, since an issuer's
/// metadata names the JWKS's.
pub(crate) fn secure_url(what: &str, url: &str) -> Result<(), String> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])));
    if url.starts_with("https://") || loopback {
        Ok(())
    } else {
        Err(format!("{what} {url:?} must be an https URL (plain http only on loopback)"))
    }
}

/// At most [`MAX_REDIRECTS`], each to a secure URL.
fn secure_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if let Err(e) = secure_url("a redirect to", attempt.url().as_str()) {
            attempt.error(e)
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// Fetches JSON documents for the JWT verifier.
pub(crate) struct HttpFetch {
    client: reqwest::Client,
}

impl HttpFetch {
    /// A fetcher whose requests end after `timeout`.
    pub(crate) fn new(timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(secure_redirects())
            .user_agent(concat!("mcpgw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the HTTP client for JWKS: {e}"))?;
        Ok(Self { client })
    }
}

impl Fetch for HttpFetch {
    fn get(&self, url: &str) -> Pin<Box<dyn Future<Output = Result<Bytes, FetchError>> + Send + '_>> {
        let request = self.client.get(url).header(http::header::ACCEPT, "application/json");
        let secure = secure_url("the URL", url);
        Box::pin(async move {
            secure?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one request on loopback with `head` (a status line and headers) and no body.
    async fn answer_once(head: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/.well-known/openid-configuration", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(head.as_bytes()).await;
        });
        url
    }

    #[tokio::test]
    async fn keys_named_over_plain_http_off_loopback_are_not_fetched() {
        let fetch = HttpFetch::new(Duration::from_secs(5)).expect("client");
        // What an issuer's metadata may name: refused before any connection is made.
        let refused = fetch.get("http://keys.example/jwks").await.expect_err("refused");
        assert!(refused.to_string().contains("must be an https URL"), "{refused}");
        // A redirect from loopback to plain http elsewhere is not followed either.
        let url =
            answer_once("HTTP/1.1 302 Found\r\nlocation: http://keys.example/jwks\r\ncontent-length: 0\r\n\r\n").await;
        let refused = fetch.get(&url).await.expect_err("refused");
        let chain = format!("{refused:?}");
        assert!(chain.contains("must be an https URL"), "{chain}");
    }
}
