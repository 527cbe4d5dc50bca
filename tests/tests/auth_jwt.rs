//! mcpgw as an OAuth 2.1 resource server, against a real authorization server on loopback
//! (oidc-provider, tests/auth/server.mjs: JWT access tokens by the client credentials grant,
//! with resource indicators) and a minter beside it for the tokens no authorization server
//! issues (expired, badly signed, `alg: none`, under an unpublished key). Over both
//! transports: the 401 and 403 challenges, the protected resource metadata, and sessions
//! bound to their subject.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use mcpgw_tests::{Gateway, Http, POST_HEADERS, Reply, SseReader, initialize, request};
use serde_json::{Value, json};

/// The resource mcpgw is configured as (the audience of its tokens).
const RESOURCE: &str = "http://mcpgw.test/mcp";
const METADATA: &str = "http://mcpgw.test/.well-known/oauth-protected-resource/mcp";

/// The authorization server and the minter, for as long as the test holds it.
struct AuthServer {
    child: Child,
    issuer: String,
    minter: String,
}

impl AuthServer {
    fn start() -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/auth");
        let node = format!("{dir}/node_modules/.bin/node");
        assert!(
            std::path::Path::new(&node).exists(),
            "{node} is missing: run `make deps-auth` (npm ci in tests/auth) first"
        );
        let mut child = Command::new(node)
            .arg(format!("{dir}/server.mjs"))
            .arg(RESOURCE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the authorization server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("the authorization server starts within 60 s");
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let field = |k: &str| ready[k].as_str().expect("url").to_owned();
        Self { issuer: field("issuer"), minter: field("minter"), child }
    }

    /// An access token from the authorization server, by the client credentials grant.
    async fn token(&self, http: &Http, client: &str, scope: &str, resource: &str) -> String {
        let form = format!(
            "grant_type=client_credentials&client_id={client}&client_secret={client}-secret&scope={scope}&resource={resource}"
        );
        let reply = http
            .send(
                Method::POST,
                &format!("{}/token", self.issuer),
                &[("content-type", "application/x-www-form-urlencoded")],
                form,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A token from the minter: `claims` over valid defaults for the minter's issuer
    /// (a `null` removes one), signed as `how` says (`key`, `kid`, `alg`).
    async fn mint(&self, http: &Http, claims: Value, how: Value) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        let mut all = json!({ "iss": self.minter, "sub": "carol", "aud": RESOURCE, "iat": now, "exp": now + 300, "scope": "mcp:tools" });
        for (k, v) in claims.as_object().expect("object") {
            all[k] = v.clone();
        }
        let mut body = how;
        body["claims"] = all;
        let reply = http.send(Method::POST, &format!("{}/mint", self.minter), &[], body.to_string()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["token"].as_str().expect("token").to_owned()
    }

    /// How often each JWKS was fetched: (the authorization server's, the minter's).
    async fn jwks_fetches(&self, http: &Http) -> (u64, u64) {
        let stats = http.send(Method::GET, &format!("{}/stats", self.minter), &[], Bytes::new()).await.json();
        (stats["issuer_jwks"].as_u64().expect("count"), stats["minter_jwks"].as_u64().expect("count"))
    }

    /// A gateway trusting both issuers, requiring `mcp:tools`, with one static token too;
    /// the authorization server's tokens must be typed `at+jwt` (as oidc-provider types them).
    /// One refetch for an unknown key per hour: whatever the load, a test sees at most one.
    fn gateway(&self) -> Gateway {
        Gateway::start_with(&format!(
            "[auth]\nresource = \"{RESOURCE}\"\nrequired_scopes = [\"mcp:tools\"]\njwks_refetch_secs = 3600\ntoken_sha256 = [\"{}\"]\n\
             [[auth.issuers]]\nissuer = \"{}\"\naccess_token_type = true\n[[auth.issuers]]\nissuer = \"{}\"\n",
            mcpgw_transport::auth::digest_hex("static-token"),
            self.issuer,
            self.minter,
        ))
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `initialize` on `/mcp` with this Authorization header value (none: `None`).
async fn post_mcp(http: &Http, gw: &Gateway, auth: Option<&str>, body: &Value, sid: Option<&str>) -> Reply {
    let mut headers: Vec<(&str, &str)> = POST_HEADERS.to_vec();
    if let Some(auth) = auth {
        headers.push(("authorization", auth));
    }
    if let Some(sid) = sid {
        headers.push(("mcp-session-id", sid));
    }
    http.send(Method::POST, &gw.url("/mcp"), &headers, body.to_string()).await
}

/// `GET /sse` with this Authorization header value, read in full when refused.
async fn get_sse(http: &Http, gw: &Gateway, auth: Option<&str>) -> (StatusCode, Option<String>) {
    let mut headers = vec![("accept", "text/event-stream")];
    if let Some(auth) = auth {
        headers.push(("authorization", auth));
    }
    let response = http.open(Method::GET, &gw.url("/sse"), &headers, Bytes::new()).await;
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().expect("ascii").to_owned());
    (response.status(), challenge)
}

/// Both transports refuse `auth` (a token that is `what`) with `status` and exactly `challenge`.
async fn refused_on_both(
    http: &Http,
    gw: &Gateway,
    (what, auth): (&str, Option<&str>),
    status: StatusCode,
    challenge: &str,
) {
    let mcp = post_mcp(http, gw, auth, &initialize("2025-11-25"), None).await;
    assert_eq!(mcp.status, status, "{what} on /mcp: {}", mcp.text());
    assert_eq!(mcp.header("www-authenticate"), Some(challenge), "{what} on /mcp");
    assert!(mcp.header("mcp-session-id").is_none(), "{what}: nothing was created");
    assert_eq!(mcp.json()["id"], 0, "{what}: the refusal answers the request it refuses");
    let (sse, sse_challenge) = get_sse(http, gw, auth).await;
    assert_eq!(sse, status, "{what} on /sse");
    assert_eq!(sse_challenge.as_deref(), Some(challenge), "{what} on /sse");
}

#[tokio::test]
async fn without_a_token_both_transports_answer_401_naming_the_metadata_and_scope() {
    let server = AuthServer::start();
    let gw = server.gateway();
    let http = Http::new();
    let challenge = format!(r#"Bearer resource_metadata="{METADATA}", scope="mcp:tools""#);
    refused_on_both(&http, &gw, ("no token", None), StatusCode::UNAUTHORIZED, &challenge).await;
    let messages =
        http.send(Method::POST, &gw.url("/messages?sessionId=00"), &[("content-type", "application/json")], "{}").await;
    assert_eq!(messages.status, StatusCode::UNAUTHORIZED);
    assert_eq!(messages.header("www-authenticate"), Some(challenge.as_str()));
}

#[tokio::test]
async fn the_protected_resource_metadata_names_the_resource_its_issuers_and_scopes() {
    let server = AuthServer::start();
    let gw = server.gateway();
    let http = Http::new();
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let reply = http.send(Method::GET, &gw.url(path), &[], Bytes::new()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let doc = reply.json();
        assert_eq!(doc["resource"], RESOURCE);
        assert_eq!(doc["authorization_servers"], json!([server.issuer, server.minter]));
        assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    // The authorization server it names is a real one: its metadata is where clients go next.
    let issuer = http
        .send(Method::GET, &format!("{}/.well-known/openid-configuration", server.issuer), &[], Bytes::new())
        .await
        .json();
    assert_eq!(issuer["issuer"], server.issuer.as_str());
}

#[tokio::test]
async fn the_metadata_is_not_served_without_jwt_auth() {
    let gw = Gateway::start_with(&format!("[auth]\ntoken_sha256 = [\"{}\"]\n", mcpgw_transport::auth::digest_hex("t")));
    let reply =
        Http::new().send(Method::GET, &gw.url("/.well-known/oauth-protected-resource/mcp"), &[], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_token_from_the_authorization_server_opens_sessions_on_both_transports() {
    let server = AuthServer::start();
    let gw = server.gateway();
    let http = Http::new();
    let token = bearer(&server.token(&http, "alice", "mcp:tools", RESOURCE).await);
    let init = post_mcp(&http, &gw, Some(&token), &initialize("2025-11-25"), None).await;
    assert_eq!(init.status, StatusCode::OK, "{}", init.text());
    let sid = init.header("mcp-session-id").expect("a session").to_owned();
    let listed = post_mcp(&http, &gw, Some(&token), &request(1, "tools/list", json!({})), Some(&sid)).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(listed.messages()[0]["result"]["tools"].is_array(), "{}", listed.text());
    let (sse, _) = get_sse(&http, &gw, Some(&token)).await;
    assert_eq!(sse, StatusCode::OK);
    // A static token still works beside them.
    let fixed = post_mcp(&http, &gw, Some("Bearer static-token"), &initialize("2025-11-25"), None).await;
    assert_eq!(fixed.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_tokens_get_401_invalid_token_on_both_transports() {
    let server = AuthServer::start();
    let gw = server.gateway();
    let http = Http::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let bad = [
        ("expired", server.mint(&http, json!({ "exp": now - 600, "iat": now - 900 }), json!({})).await),
        ("wrong audience", server.token(&http, "alice", "mcp:tools", "http://other.test/").await),
        ("wrong issuer", server.mint(&http, json!({ "iss": "https://untrusted.example" }), json!({})).await),
        ("bad signature", server.mint(&http, json!({}), json!({ "key": "unknown", "kid": "minted-1" })).await),
        ("alg none", server.mint(&http, json!({}), json!({ "alg": "none" })).await),
        ("unknown kid", server.mint(&http, json!({}), json!({ "key": "unknown" })).await),
        ("not a JWT", "opaque-garbage".to_owned()),
    ];
    let challenge = format!(r#"Bearer error="invalid_token", resource_metadata="{METADATA}", scope="mcp:tools""#);
    for (what, token) in bad {
        refused_on_both(&http, &gw, (what, Some(&bearer(&token))), StatusCode::UNAUTHORIZED, &challenge).await;
    }
    // A valid minted token passes: the refusals above are for what each one changed.
    let good = server.mint(&http, json!({}), json!({})).await;
    assert_eq!(
        post_mcp(&http, &gw, Some(&bearer(&good)), &initialize("2025-11-25"), None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unknown_key_id_fetches_the_jwks_again_once() {
    let server = AuthServer::start();
    let gw = server.gateway();
    let http = Http::new();
    let good = server.mint(&http, json!({}), json!({})).await;
    assert_eq!(
        post_mcp(&http, &gw, Some(&bearer(&good)), &initialize("2025-11-25"), None).await.status,
        StatusCode::OK
    );
    assert_eq!(server.jwks_fetches(&http).await, (0, 1), "the minter's keys, fetched on first use");
    let rotated = server.mint(&http, json!({}), json!({ "key": "unknown", "kid": "rotated-1" })).await;
    let refused = post_mcp(&http, &gw, Some(&bearer(&rotated)), &initialize("2025-11-25"), None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.jwks_fetches(&http).await, (0, 2), "an unknown kid fetches the keys again");
    for kid in ["rotated-2", "rotated-3", "rotated-4"] {
        let made_up = server.mint(&http, json!({}), json!({ "key": "unknown", "kid": kid })).await;
        let refused = post_mcp(&http, &gw, Some(&bearer(&made_up)), &initialize("2025-11-25"), None).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(server.jwks_fetches(&http).await, (0, 2), "at most once per refetch interval");
    // The known key still verifies without another fetch.
    let again = server.mint(&http, json!({ "sub": "dave" }), json!({})).await;
    assert_eq!(
        post_mcp(&http, &gw, Some(&bearer(&again)), &initialize("2025-11-25"), None).await.status,
        StatusCode::OK
    );
    assert_eq!(server.jwks_fetches(&http).await, (0, 2));
}

#[tokio::test]
async fn a_token_without_the_required_scope_gets_403_insufficient_scope_on_both_transports() {
    let server = AuthServer::start();
    let gw = server.gateway();
    let http = Http::new();
    let read_only = server.token(&http, "alice", "mcp:read", RESOURCE).await;
    let challenge = format!(r#"Bearer error="insufficient_scope", resource_metadata="{METADATA}", scope="mcp:tools""#);
    let read_only = bearer(&read_only);
    refused_on_both(&http, &gw, ("scope mcp:read only", Some(&read_only)), StatusCode::FORBIDDEN, &challenge).await;
}

#[tokio::test]
async fn a_refreshed_token_keeps_its_streamable_session_and_another_subject_gets_404() {
    let server = AuthServer::start();
    let gw = server.gateway();
    let http = Http::new();
    let first = bearer(&server.token(&http, "alice", "mcp:tools", RESOURCE).await);
    let init = post_mcp(&http, &gw, Some(&first), &initialize("2025-11-25"), None).await;
    let sid = init.header("mcp-session-id").expect("a session").to_owned();
    let refreshed = bearer(&server.token(&http, "alice", "mcp:tools", RESOURCE).await);
    assert_ne!(first, refreshed, "a second token of the same subject");
    let mine = post_mcp(&http, &gw, Some(&refreshed), &request(1, "tools/list", json!({})), Some(&sid)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text());
    let bob = bearer(&server.token(&http, "bob", "mcp:tools", RESOURCE).await);
    let theirs = post_mcp(&http, &gw, Some(&bob), &request(2, "tools/list", json!({})), Some(&sid)).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    // The same subject from another issuer is another caller.
    let carol = bearer(&server.mint(&http, json!({ "sub": "alice" }), json!({})).await);
    let other_issuer = post_mcp(&http, &gw, Some(&carol), &request(3, "tools/list", json!({})), Some(&sid)).await;
    assert_eq!(other_issuer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_refreshed_token_keeps_its_legacy_session_and_another_subject_gets_404() {
    let server = AuthServer::start();
    let gw = server.gateway();
    let http = Http::new();
    let first = bearer(&server.token(&http, "alice", "mcp:tools", RESOURCE).await);
    let headers = [("accept", "text/event-stream"), ("authorization", first.as_str())];
    let mut stream = SseReader::new(http.open(Method::GET, &gw.url("/sse"), &headers, Bytes::new()).await);
    let endpoint = gw.url(&stream.next().await.expect("endpoint").data);
    let post = |auth: String| {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        async move {
            let headers = [("content-type", "application/json"), ("authorization", auth.as_str())];
            http.send(Method::POST, &endpoint, &headers, initialize("2024-11-05").to_string()).await
        }
    };
    let bob = bearer(&server.token(&http, "bob", "mcp:tools", RESOURCE).await);
    assert_eq!(post(bob).await.status, StatusCode::NOT_FOUND);
    let refreshed = bearer(&server.token(&http, "alice", "mcp:tools", RESOURCE).await);
    assert_ne!(first, refreshed);
    assert_eq!(post(refreshed).await.status, StatusCode::ACCEPTED);
    assert_eq!(stream.next_message().await["id"], 0);
}

#[tokio::test]
async fn the_policy_reads_the_groups_claim_of_the_authorization_servers_tokens() {
    let server = AuthServer::start();
    let gw = Gateway::start_with(&format!(
        "[auth]\nresource = \"{RESOURCE}\"\n[[auth.issuers]]\nissuer = \"{}\"\naccess_token_type = true\n\
         [upstreams.builtin]\nkind = \"builtin\"\n\
         [[policy.rules]]\ngroups = [\"support\"]\nupstream = \"builtin\"\ntools = [\"sleep\", \"add\"]\neffect = \"deny\"\n",
        server.issuer,
    ));
    let http = Http::new();
    // The authorization server puts alice in engineering and bob in support.
    for (client, sees_everything) in [("alice", true), ("bob", false)] {
        let token = bearer(&server.token(&http, client, "mcp:tools", RESOURCE).await);
        let init = post_mcp(&http, &gw, Some(&token), &initialize("2025-11-25"), None).await;
        assert_eq!(init.status, StatusCode::OK, "{}", init.text());
        let sid = init.header("mcp-session-id").expect("a session").to_owned();
        let listed = post_mcp(&http, &gw, Some(&token), &request(1, "tools/list", json!({})), Some(&sid)).await;
        let tools = listed.messages()[0]["result"]["tools"].clone();
        let names: Vec<&str> = tools.as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
        assert!(names.contains(&"echo"), "{client}: {names:?}");
        assert_eq!(names.contains(&"sleep"), sees_everything, "{client}: {names:?}");
        assert_eq!(names.contains(&"add"), sees_everything, "{client}: {names:?}");
    }
}

/// Rate limits and the audit know a caller by its subject: another token of the same
/// subject (refreshed, or for another session) draws on the same bucket, and the audit
/// names it `SUBJECT (ISSUER)`.
#[tokio::test]
async fn a_subject_has_one_rate_limit_bucket_whatever_its_token_and_is_audited_by_name() {
    let server = AuthServer::start();
    let config = format!(
        "[auth]\nresource = \"{RESOURCE}\"\njwks_refetch_secs = 3600\n[[auth.issuers]]\nissuer = \"{}\"\n\
         [rate_limits]\nper_identity = {{ rate = 0.1, burst = 2 }}\n",
        server.minter,
    );
    let gw = Gateway::start_args(&config, &["--log-format", "json"]);
    let http = Http::new();
    let carol_1 = bearer(&server.mint(&http, json!({"jti": "one"}), json!({})).await);
    let carol_2 = bearer(&server.mint(&http, json!({"jti": "two"}), json!({})).await);
    assert_ne!(carol_1, carol_2);
    let dave = bearer(&server.mint(&http, json!({"sub": "dave"}), json!({})).await);
    let echo = |id| request(id, "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}));
    let session = |auth: String| {
        let (http, gw) = (http.clone(), &gw);
        async move {
            let init = post_mcp(&http, gw, Some(&auth), &initialize("2025-11-25"), None).await;
            assert_eq!(init.status, StatusCode::OK, "{}", init.text());
            init.header("mcp-session-id").expect("a session").to_owned()
        }
    };
    let first = session(carol_1.clone()).await;
    for id in 1..=2 {
        let reply = post_mcp(&http, &gw, Some(&carol_1), &echo(id), Some(&first)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    let second = session(carol_2.clone()).await;
    let refused = post_mcp(&http, &gw, Some(&carol_2), &echo(3), Some(&second)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "the same subject, the same bucket: {}", refused.text());
    assert!(refused.header("retry-after").is_some());
    let other = session(dave.clone()).await;
    let passed = post_mcp(&http, &gw, Some(&dave), &echo(4), Some(&other)).await;
    assert_eq!(passed.status, StatusCode::OK, "another subject: {}", passed.text());

    let audited = |gw: &Gateway| -> Vec<Value> {
        let log = gw.log.lock().expect("log lock");
        log.iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["target"] == "mcpgw::audit")
            .map(|l| l["fields"].clone())
            .collect()
    };
    mcpgw_tests::eventually("three audit lines", || async { audited(&gw).len() >= 3 }).await;
    let lines = audited(&gw);
    let carol = format!("carol ({})", server.minter);
    assert_eq!(lines.iter().filter(|l| l["identity"] == carol.as_str()).count(), 2, "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l["identity"] == format!("dave ({})", server.minter)).count(), 1);
}

/// Per-user upstream credentials from a JWT: a `share = "session"` stdio upstream gets the
/// caller's `login` claim in its arguments and the secret of its subject (from the
/// credentials file) in its environment; a subject with no secret does not see it.
#[tokio::test]
async fn a_session_upstream_takes_a_claim_and_the_subjects_secret_from_the_callers_token() {
    use std::os::unix::fs::PermissionsExt;
    let server = AuthServer::start();
    let credentials = std::env::temp_dir().join(format!("mcpgw-jwt-credentials-{}.toml", std::process::id()));
    std::fs::write(&credentials, "[subjects.carol]\ntoken = \"carol-upstream-secret-5e1d\"\n").expect("write");
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let gw = Gateway::start_with(&format!(
        "[auth]\nresource = \"{RESOURCE}\"\njwks_refetch_secs = 3600\n[[auth.issuers]]\nissuer = \"{}\"\n\
         [upstreams.builtin]\nkind = \"builtin\"\n\
         [upstreams.gh]\nkind = \"stdio\"\ncommand = \"{}\"\nargs = [\"--credential-tool\", \"--user=${{claim:login}}\"]\n\
         env = {{ MCPGW_FIXTURE_CREDENTIAL = \"${{secret:token}}\" }}\ncredentials = \"{}\"\n",
        server.minter,
        env!("CARGO_BIN_EXE_mcpgw-fixture"),
        credentials.display(),
    ));
    let http = Http::new();
    let session = |auth: String| {
        let (http, gw) = (http.clone(), &gw);
        async move {
            let init = post_mcp(&http, gw, Some(&auth), &initialize("2025-11-25"), None).await;
            assert_eq!(init.status, StatusCode::OK, "{}", init.text());
            init.header("mcp-session-id").expect("a session").to_owned()
        }
    };
    let carol = bearer(&server.mint(&http, json!({"login": "carol-gh"}), json!({})).await);
    let sid = session(carol.clone()).await;
    let call = request(1, "tools/call", json!({"name": "credential_seen", "arguments": {}}));
    let seen = post_mcp(&http, &gw, Some(&carol), &call, Some(&sid)).await;
    // The fixture answers each value reversed (so its answer is no secret in a log).
    let rev = |s: &str| s.chars().rev().collect::<String>();
    let text = seen.messages()[0]["result"]["content"][0]["text"].clone();
    assert_eq!(text, format!("env={} user={}", rev("carol-upstream-secret-5e1d"), rev("carol-gh")), "{}", seen.text());

    let dave = bearer(&server.mint(&http, json!({"sub": "dave", "login": "dave-gh"}), json!({})).await);
    let sid = session(dave.clone()).await;
    let listed = post_mcp(&http, &gw, Some(&dave), &request(2, "tools/list", json!({})), Some(&sid)).await;
    let tools = listed.messages()[0]["result"]["tools"].clone();
    let names: Vec<&str> = tools.as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"echo") && !names.contains(&"credential_seen"), "{names:?}");
    gw.wait_for_log("no secret 'token' for this caller");
    assert!(!gw.logged("carol-upstream-secret-5e1d"));
    let _ = std::fs::remove_file(&credentials);
}
