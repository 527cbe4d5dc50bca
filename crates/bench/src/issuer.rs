//! `serve-issuer`: a minimal OAuth authorization server for the auth rows of `make bench`, on
//! loopback only. It makes an ES256 key when it starts and serves what mcpgw's `[auth]` reads
//! from a real identity provider (its metadata and its JWKS), plus a token endpoint the harness
//! takes its access token from:
//!
//! - `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`:
//!   `issuer`, `jwks_uri`, `token_endpoint`;
//! - `GET /jwks`: the public key (P-256, by `kid`);
//! - `POST` (or `GET`) `/token`: `{"access_token", "token_type": "Bearer", "expires_in"}`, a JWT
//!   with the claims given on the command line. No client authentication: it is a benchmark
//!   fixture, never a server to expose.
//!
//! The issuer identifier is `http://<its address>`, known once it has bound its port. Like the
//! other baseline servers it prints `listening on http://IP:PORT` and exits after `max_secs`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, ensure};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the tokens say about their holder (the command line of `serve-issuer`).
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Grant {
    /// The `aud` of every token: the `resource` (or an `audience`) mcpgw is configured with.
    #[arg(long)]
    pub(crate) audience: String,
    #[arg(long, default_value = "bench-user")]
    pub(crate) subject: String,
    /// The `groups` claim, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "")]
    pub(crate) groups: Vec<String>,
    /// The `scope` claim (space-separated scopes).
    #[arg(long, default_value = "mcp:tools")]
    pub(crate) scope: String,
    /// Lifetime of a token, seconds.
    #[arg(long, default_value_t = 3600)]
    pub(crate) ttl_secs: u64,
}

/// The signing key and what it signs for.
pub(crate) struct Issuer {
    /// `http://IP:PORT`: the `iss` of its tokens and the base of its URLs.
    pub(crate) url: String,
    kid: String,
    key: EncodingKey,
    /// The public point's coordinates, base64url (the JWK's `x` and `y`).
    x: String,
    y: String,
    grant: Grant,
}

impl Issuer {
    /// A fresh P-256 key for the issuer at `url`.
    pub(crate) fn new(url: String, grant: Grant) -> Result<Issuer> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow!("generating an ES256 key"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| anyhow!("reading the ES256 key back"))?;
        // An uncompressed point: 0x04, then x and y, 32 bytes each.
        let point = pair.public_key().as_ref();
        ensure!(point.len() == 65 && point[0] == 4, "unexpected public key encoding");
        Ok(Issuer {
            url,
            kid: "bench-1".to_owned(),
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            x: URL_SAFE_NO_PAD.encode(&point[1..33]),
            y: URL_SAFE_NO_PAD.encode(&point[33..]),
            grant,
        })
    }

    /// The issuer's metadata (OpenID Connect discovery and RFC 8414 alike).
    pub(crate) fn metadata(&self) -> Value {
        json!({
            "issuer": self.url,
            "jwks_uri": format!("{}/jwks", self.url),
            "token_endpoint": format!("{}/token", self.url),
            "grant_types_supported": ["client_credentials"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "kid": self.kid, "x": self.x, "y": self.y,
        }] })
    }

    /// A signed access token for the grant, valid from now for its `ttl_secs`.
    pub(crate) fn mint(&self) -> Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let g = &self.grant;
        let claims = json!({
            "iss": self.url, "sub": g.subject, "aud": g.audience, "iat": now, "nbf": now,
            "exp": now + g.ttl_secs, "scope": g.scope, "groups": g.groups,
        });
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key).context("signing a token")
    }

    fn token_response(&self) -> Result<Value> {
        Ok(json!({ "access_token": self.mint()?, "token_type": "Bearer", "expires_in": self.grant.ttl_secs }))
    }

    fn answer(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        let document = match (method, path) {
            (&Method::GET, "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server") => {
                Ok(self.metadata())
            }
            (&Method::GET, "/jwks") => Ok(self.jwks()),
            (&Method::GET | &Method::POST, "/token") => self.token_response(),
            _ => return status(StatusCode::NOT_FOUND),
        };
        match document {
            Ok(document) => Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CACHE_CONTROL, "no-store")
                .body(Full::new(Bytes::from(document.to_string())))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
            Err(e) => {
                eprintln!("serve-issuer: {e:#}");
                status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

/// Serves the issuer on `listen` (loopback) on one thread until `max` passes.
pub(crate) fn serve_issuer(listen: SocketAddr, grant: Grant, max: Duration) -> Result<()> {
    ensure!(listen.ip().is_loopback(), "serve-issuer listens on loopback only");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let issuer = Arc::new(Issuer::new(format!("http://{addr}"), grant)?);
        eprintln!("listening on http://{addr}");
        let deadline = tokio::time::Instant::now() + max;
        // Connections are served on this task's runtime; they end with it when `max` passes.
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        eprintln!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
                _ = tokio::time::sleep_until(deadline) => break,
            };
            let issuer = issuer.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = issuer.answer(request.method(), request.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(async move {
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
        eprintln!("stopping after {max:?}");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    fn issuer() -> Issuer {
        let grant = Grant {
            audience: "http://127.0.0.1/mcp".into(),
            subject: "bench-user".into(),
            groups: vec!["engineering".into(), "bench".into()],
            scope: "mcp:tools files:read".into(),
            ttl_secs: 600,
        };
        Issuer::new("http://127.0.0.1:9".into(), grant).expect("issuer")
    }

    /// The token verifies against the served JWKS with jsonwebtoken, as mcpgw checks it:
    /// ES256 by `kid`, issuer, audience, expiry, and the claims the policy reads.
    #[test]
    fn its_tokens_verify_against_its_jwks() {
        let issuer = issuer();
        let token = issuer.mint().expect("token");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!((header.alg, header.typ.as_deref()), (Algorithm::ES256, Some("at+jwt")));
        let jwks: JwkSet = serde_json::from_value(issuer.jwks()).expect("a JWKS");
        let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("the key by kid");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&["http://127.0.0.1:9"]);
        validation.set_audience(&["http://127.0.0.1/mcp"]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let key = DecodingKey::from_jwk(jwk).expect("key");
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("verifies");
        assert_eq!(data.claims["sub"], "bench-user");
        assert_eq!(data.claims["groups"], json!(["engineering", "bench"]));
        assert_eq!(data.claims["scope"], "mcp:tools files:read");
        assert_eq!(issuer.metadata()["jwks_uri"], "http://127.0.0.1:9/jwks");

        // Another key (another run's issuer) does not verify it.
        let other: JwkSet = serde_json::from_value(super::tests::issuer().jwks()).expect("a JWKS");
        let other = DecodingKey::from_jwk(&other.keys[0]).expect("key");
        assert!(jsonwebtoken::decode::<Value>(&token, &other, &validation).is_err());
    }

    #[test]
    fn serves_metadata_keys_and_tokens() {
        let issuer = issuer();
        let ok = |method, path| issuer.answer(&method, path).status();
        assert_eq!(ok(Method::GET, "/.well-known/openid-configuration"), StatusCode::OK);
        assert_eq!(ok(Method::GET, "/.well-known/oauth-authorization-server"), StatusCode::OK);
        assert_eq!(ok(Method::GET, "/jwks"), StatusCode::OK);
        assert_eq!(ok(Method::POST, "/token"), StatusCode::OK);
        assert_eq!(ok(Method::GET, "/other"), StatusCode::NOT_FOUND);
        let answer = issuer.token_response().expect("token");
        assert_eq!((answer["token_type"].as_str(), answer["expires_in"].as_u64()), (Some("Bearer"), Some(600)));
    }
}
