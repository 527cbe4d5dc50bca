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
/// metadata names the JWKS's. The URL is parsed, not matched as text: in
/// `http://127.0.0.1:1@keys.example/` the loopback address is a user name and the host is
/// elsewhere.
pub(crate) fn secure_url(what: &str, url: &str) -> Result<(), String> {
    let refused = || Err(format!("{what} {url:?} must be an https URL (plain http only on loopback)"));
    let Ok(parsed) = reqwest::Url::parse(url) else { return refused() };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        _ => refused(),
    }
}

/// Whether `url` names a loopback host (and no user: a name there only hides the host).
fn is_loopback(url: &reqwest::Url) -> bool {
    let named = !url.username().is_empty() || url.password().is_some();
    // The parser gives an IPv6 host in brackets, and a domain in lower case.
    let host = url.host_str().unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>();
    let host = host == "localhost" || ip.is_ok_and(|ip| ip.is_loopback());
    host && !named
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
        let request =
            secure_url("the URL", url).map(|()| self.client.get(url).header(http::header::ACCEPT, "application/json"));
        Box::pin(async move {
            let mut response = request?.send().await?.error_for_status()?;
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

    #[test]
    fn only_https_or_plain_http_to_a_loopback_host_is_secure() {
        for url in [
            "https://issuer.example/jwks",
            "HTTPS://issuer.example/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://127.0.0.2/jwks",
            "http://localhost/jwks",
            "http://LOCALHOST:9000",
            "http://[::1]:9000/jwks",
            "http://[0:0:0:0:0:0:0:1]/jwks",
        ] {
            assert!(secure_url("url", url).is_ok(), "{url} is secure");
        }
        for url in [
            "http://issuer.example/jwks",
            "http://localhost.evil.example/jwks",
            "http://127.0.0.1@evil.example/jwks",
            "http://127.0.0.1:1@evil.example/jwks",
            "http://localhost:x@evil.example/",
            "http://[::1]:p@evil.example/",
            "http://user@localhost/jwks",
            "ftp://localhost/jwks",
            "not a url",
        ] {
            assert!(secure_url("url", url).is_err(), "{url} is refused");
        }
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
