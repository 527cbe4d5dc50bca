//! The cost of who-may-call-what: mcpgw with JWT auth (`[auth]` trusting the harness's own
//! token issuer, `serve-issuer`) and a 20-rule `[policy]`, against the same mcpgw without
//! either, on the built-in `echo`; and the cost of the audit log (one INFO line per tool call,
//! on by default), against the same mcpgw with it filtered out.
//!
//! The three servers run side by side and are measured in alternating rounds (the order
//! reversed every other round), so that the machine's drift falls on all of them alike: at
//! the rounds' size, `plan.rounds` rounds; at the plan's other sizes, one. Every client sends
//! the same token on every request; mcpgw verifies it once and then finds it in its cache of
//! verified tokens (by SHA-256, until it expires), which is the steady state of real clients.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::client::get_json;
use crate::launch::{builtin_config, mcpgw_config, start_mcpgw, start_mcpgw_with, start_self, target_of};
use crate::load::LoadResult;
use crate::procs::Proc;

use super::bench::{Bench, Profiles};

/// mcpgw with `[auth]` and `[policy]` (the configuration of [`auth_config`]).
pub(crate) const MCPGW_AUTH: &str = "mcpgw, JWT auth + 20-rule policy";
/// mcpgw without `[auth]`, its audit log filtered out.
pub(crate) const MCPGW_NO_AUDIT: &str = "mcpgw, audit log off";
/// The filter that turns the audit log off (docs/configuration.md, "[audit]").
pub(crate) const NO_AUDIT_LOG: &str = "info,rmcp=warn,mcpgw::audit=off";
/// The `resource` mcpgw is configured with, and the `aud` of the tokens.
const RESOURCE: &str = "http://127.0.0.1/mcp";
/// Who the benchmark's client is: these groups and scopes, subject `bench-user`.
const GROUPS: &str = "engineering,bench";
const SCOPES: &str = "mcp:tools files:read";

/// One transport at one size in one round: the three servers, same load.
#[derive(Serialize)]
pub(crate) struct AuthRound {
    pub(crate) round: usize,
    pub(crate) transport: String,
    pub(crate) sessions: usize,
    /// mcpgw on the built-in tools, no `[auth]` (audit log on: the default).
    pub(crate) plain: LoadResult,
    /// The same with JWT auth and the 20-rule policy.
    pub(crate) auth: LoadResult,
    /// `plain` with the audit log off (Streamable HTTP JSON only).
    pub(crate) audit_off: Option<LoadResult>,
}

/// mcpgw's configuration for the auth rows: the built-in upstream, JWT access tokens from
/// `issuer` (typed `at+jwt`, ES256, scope `mcp:tools` required) and twenty policy rules on
/// groups, subjects and scopes over the built-in tools, prompt and resource. Deny by default;
/// the benchmark's caller is matched by six of them (1-5 and 20), which let it call `echo`
/// under its own name (re-described).
pub(crate) fn auth_config(issuer: &str) -> String {
    let auth = format!(
        r#"[auth]
resource = "{RESOURCE}"
required_scopes = ["mcp:tools"]

[[auth.issuers]]
issuer = "{issuer}"
algorithms = ["ES256"]
access_token_type = true
"#
    );
    let rules: [&str; 20] = [
        r#"groups = ["engineering"]
tools = ["*"]"#,
        r#"anyone = true
tools = ["sleep"]
effect = "deny""#,
        r#"scopes = ["mcp:tools"]
tools = ["echo", "add"]"#,
        r#"groups = ["bench"]
tools = ["echo"]
description = "Return the given text unchanged (benchmark).""#,
        r#"subjects = ["bench-user"]
resources = ["mcpgw://*"]"#,
        r#"groups = ["support"]
tools = ["echo"]
rename = "say""#,
        r#"groups = ["finance"]
tools = ["add"]
pin = { a = 0 }"#,
        r#"groups = ["finance"]
tools = ["sleep"]
effect = "deny""#,
        r#"subjects = ["alice@example.com"]"#,
        r#"subjects = ["bob@example.com", "carol@example.com"]
tools = ["echo", "add"]"#,
        r#"scopes = ["admin"]"#,
        r#"groups = ["contractors"]
tools = ["add"]
effect = "deny""#,
        r#"groups = ["contractors"]
prompts = ["*"]
effect = "deny""#,
        r#"groups = ["ops"]
tools = ["sleep"]"#,
        r#"groups = ["ops"]
resources = ["mcpgw://about"]"#,
        r#"scopes = ["prompts:read"]
prompts = ["greeting"]"#,
        r#"groups = ["interns"]
tools = ["echo"]
description = "Repeat a text.""#,
        r#"subjects = ["svc-reporting"]
tools = ["add"]
rename = "sum""#,
        r#"groups = ["security"]
tools = ["*"]
effect = "deny""#,
        r#"scopes = ["files:read"]
prompts = ["greeting"]"#,
    ];
    let mut policy = String::from("[policy]\ndefault = \"deny\"\n");
    for rule in rules {
        policy.push_str(&format!("\n[[policy.rules]]\nupstream = \"builtin\"\n{rule}\n"));
    }
    mcpgw_config(&format!("[upstreams.builtin]\nkind = \"builtin\"\n\n{auth}\n{policy}"))
}

/// Starts the harness's token issuer and gets the benchmark caller's access token from it.
pub(crate) async fn start_issuer() -> Result<(Proc, String)> {
    let issuer = start_self(
        "token issuer",
        &["serve-issuer", "--audience", RESOURCE, "--groups", GROUPS, "--scope", SCOPES, "--ttl-secs", "7200"],
    )?;
    let token = get_json(&target_of(&issuer)?, "/token").await.context("a token from the issuer")?;
    let token = token["access_token"].as_str().context("the issuer's answer has no access_token")?.to_owned();
    Ok((issuer, token))
}

/// The servers of the auth rows.
struct Servers {
    issuer: Proc,
    plain: Proc,
    auth: Proc,
    audit_off: Proc,
}

/// Measures the auth rows (module doc); the issuer and the three mcpgw are started here and
/// stopped at the end.
pub(crate) async fn auth(bench: &mut Bench, mcpgw: &Path, out_dir: &Path, p: &Profiles) -> Result<Vec<AuthRound>> {
    bench.clock.say("auth rows: starting the token issuer and three mcpgw");
    let (issuer, token) = start_issuer().await?;
    let plain_config = out_dir.join("mcpgw-builtin.toml");
    std::fs::write(&plain_config, builtin_config(None))?;
    let auth_path = out_dir.join("mcpgw-auth.toml");
    std::fs::write(&auth_path, auth_config(&issuer.base))?;
    let mut s = Servers {
        plain: start_mcpgw("mcpgw", mcpgw, &plain_config).await?,
        auth: start_mcpgw(MCPGW_AUTH, mcpgw, &auth_path).await?,
        audit_off: start_mcpgw_with(MCPGW_NO_AUDIT, mcpgw, &plain_config, &[("MCPGW_LOG", NO_AUDIT_LOG)]).await?,
        issuer,
    };
    let json_auth = p.json.clone().with_bearer(&token)?;
    let modern_auth = p.modern.clone().with_bearer(&token)?;
    let mut rows = Vec::new();
    for round in 1..=bench.plan.rounds {
        for sessions in bench.plan.sizes.clone() {
            if round > 1 && sessions != bench.plan.round_sessions {
                continue;
            }
            for (plain_profile, auth_profile, audit) in [(&p.json, &json_auth, true), (&p.modern, &modern_auth, false)]
            {
                // (which, profile): 0 plain, 1 auth, 2 audit off; reversed in even rounds.
                let mut order = vec![(0, plain_profile), (1, auth_profile)];
                if audit {
                    order.push((2, plain_profile));
                }
                if round % 2 == 0 {
                    order.reverse();
                }
                let mut found: [Option<LoadResult>; 3] = [None, None, None];
                for (which, profile) in order {
                    let (proc, name) = match which {
                        0 => (&mut s.plain, "mcpgw"),
                        1 => (&mut s.auth, MCPGW_AUTH),
                        _ => (&mut s.audit_off, MCPGW_NO_AUDIT),
                    };
                    found[which] = Some(bench.load_quiet(proc, name, profile, sessions).await?);
                }
                let [plain, auth, audit_off] = found;
                let (Some(plain), Some(auth)) = (plain, auth) else { bail!("an auth row was not measured") };
                rows.push(AuthRound {
                    round,
                    transport: plain_profile.transport.label().to_owned(),
                    sessions,
                    plain,
                    auth,
                    audit_off,
                });
            }
        }
    }
    let Servers { issuer, plain, auth, audit_off } = &mut s;
    for proc in [plain, auth, audit_off] {
        if !proc.stop() {
            bench.note(format!("{} did not exit 0 on SIGTERM after the auth rows", proc.name));
        }
    }
    issuer.stop();
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration is TOML with the issuer and twenty rules, each on the built-in
    /// upstream and saying whom it is for; the caller's groups, subject and scopes are what
    /// six of them name.
    #[test]
    fn the_policy_has_twenty_rules_and_matches_the_caller_by_six() {
        let config: toml::Table = toml::from_str(&auth_config("http://127.0.0.1:1")).expect("TOML");
        assert_eq!(config["auth"]["issuers"][0]["issuer"].as_str(), Some("http://127.0.0.1:1"));
        assert_eq!(config["auth"]["resource"].as_str(), Some(RESOURCE));
        let rules = config["policy"]["rules"].as_array().expect("rules");
        assert_eq!(rules.len(), 20);
        let names = |rule: &toml::Value, key: &str| -> Vec<String> {
            rule.get(key)
                .and_then(toml::Value::as_array)
                .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let groups: Vec<&str> = GROUPS.split(',').collect();
        let scopes: Vec<&str> = SCOPES.split(' ').collect();
        let mut matching = 0;
        for rule in rules {
            assert_eq!(rule["upstream"].as_str(), Some("builtin"));
            let who = ["groups", "subjects", "scopes", "anyone"].iter().filter(|k| rule.get(**k).is_some()).count();
            assert_eq!(who, 1, "{rule:?}");
            let matches = rule.get("anyone").is_some()
                || names(rule, "groups").iter().any(|g| groups.contains(&g.as_str()))
                || names(rule, "subjects").iter().any(|s| s == "bench-user")
                || names(rule, "scopes").iter().any(|s| scopes.contains(&s.as_str()));
            matching += usize::from(matches);
        }
        assert_eq!(matching, 6);
    }
}
