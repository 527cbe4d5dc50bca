//! The `[policy]` section: who may see and call which tools, prompts and resources
//! (`[[policy.rules]]`), validated against the configured upstreams and compiled into the
//! core's [`Policy`] at load.

use std::sync::Arc;

use mcpgw_core::policy::{Effect, RuleSpec, Who};
use mcpgw_core::{Policy, PolicySpec};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawPolicy {
    default: RawEffect,
    groups_claim: Option<String>,
    rules: Vec<RawRule>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawEffect {
    #[default]
    Allow,
    Deny,
}

impl From<RawEffect> for Effect {
    fn from(e: RawEffect) -> Self {
        match e {
            RawEffect::Allow => Effect::Allow,
            RawEffect::Deny => Effect::Deny,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRule {
    anyone: bool,
    unauthenticated: bool,
    subjects: Vec<String>,
    tokens: Vec<String>,
    groups: Vec<String>,
    scopes: Vec<String>,
    upstream: Option<String>,
    tools: Vec<String>,
    prompts: Vec<String>,
    resources: Vec<String>,
    effect: RawEffect,
    rename: Option<String>,
    description: Option<String>,
    pin: serde_json::Map<String, serde_json::Value>,
}

impl RawPolicy {
    /// The compiled policy; `upstreams` are the configured names, `authenticated` whether
    /// `[auth]` is on (without it only `anyone` and `unauthenticated` rules can match),
    /// `tokens` the names of the named static tokens (a rule naming another is a typo).
    pub(super) fn build(
        self,
        upstreams: &[&str],
        authenticated: bool,
        tokens: &[String],
    ) -> Result<Arc<Policy>, String> {
        for (i, rule) in self.rules.iter().enumerate() {
            let named = !(rule.subjects.is_empty()
                && rule.tokens.is_empty()
                && rule.groups.is_empty()
                && rule.scopes.is_empty());
            if named && !authenticated {
                return Err(format!(
                    "rule {}: names subjects, tokens, groups or scopes, but [auth] is off (every caller is \
                     unauthenticated)",
                    i + 1
                ));
            }
            if let Some(name) = rule.tokens.iter().find(|t| !tokens.contains(t)) {
                return Err(format!("rule {}: token {name:?} is not named in [auth.tokens]", i + 1));
            }
            if let Some(name) = &rule.upstream
                && !name.contains(['*', '?'])
                && !upstreams.contains(&name.as_str())
            {
                return Err(format!("rule {}: upstream {name:?} is not configured", i + 1));
            }
        }
        let spec = PolicySpec {
            default: self.default.into(),
            groups_claim: self.groups_claim,
            rules: self
                .rules
                .into_iter()
                .map(|r| RuleSpec {
                    who: Who {
                        anyone: r.anyone,
                        unauthenticated: r.unauthenticated,
                        subjects: r.subjects,
                        tokens: r.tokens,
                        groups: r.groups,
                        scopes: r.scopes,
                    },
                    upstream: r.upstream,
                    tools: r.tools,
                    prompts: r.prompts,
                    resources: r.resources,
                    effect: r.effect.into(),
                    rename: r.rename,
                    description: r.description,
                    pin: r.pin,
                })
                .collect(),
        };
        Policy::compile(spec).map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(text: &str, authenticated: bool) -> Result<Arc<Policy>, String> {
        let tokens = ["bob".to_owned()];
        toml::from_str::<RawPolicy>(text).map_err(|e| e.to_string())?.build(&["builtin", "fs"], authenticated, &tokens)
    }

    #[test]
    fn rules_compile_and_name_what_is_wrong() {
        let ok = build(
            "default = \"deny\"\n[[rules]]\ntokens = [\"bob\"]\nupstream = \"builtin\"\ntools = [\"add\"]\nrename = \"plus\"\npin = { a = 40 }\n",
            true,
        )
        .expect("valid");
        assert_eq!(ok.len(), 1);
        assert!(!ok.is_open());
        assert!(build("", false).expect("valid").is_open(), "no policy");
        let unknown = build("[[rules]]\nanyone = true\nupstream = \"nope\"\n", true).expect_err("refused");
        assert!(unknown.contains("\"nope\" is not configured"), "{unknown}");
        assert!(build("[[rules]]\nanyone = true\nupstream = \"f*\"\n", true).is_ok(), "a pattern may match none");
        let off = build("[[rules]]\ntokens = [\"bob\"]\n", false).expect_err("refused");
        assert!(off.contains("[auth] is off"), "{off}");
        assert!(build("[[rules]]\nanyone = true\neffect = \"maybe\"\n", true).is_err());
        let typo = build("[[rules]]\ntokens = [\"bobb\"]\n", true).expect_err("refused");
        assert!(typo.contains("\"bobb\" is not named in [auth.tokens]"), "{typo}");
        assert!(build("[[rules]]\nanyone = true\ntool = \"x\"\n", true).is_err(), "unknown key");
    }
}
