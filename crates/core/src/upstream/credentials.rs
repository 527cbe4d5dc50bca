//! Per-caller upstream credentials: an upstream's environment, arguments or headers
//! written as templates that take values from the caller's identity, resolved once when a
//! session connects the upstream, so each person's child (or connection) carries their own
//! credential.
//!
//! A template is text with placeholders: `${claim:NAME}` (a claim of the caller's JWT, a
//! string, number or boolean), `${secret:NAME}` (the secret `NAME` of the caller in the
//! upstream's credentials, looked up by JWT subject or static token name); `$${` is a
//! literal `${`. A caller for whom a placeholder has no value does not get the upstream.
//!
//! Secrets are [`Secret`]s: their `Debug` shows nothing of them, and what says why a caller
//! has no credential ([`Missing`]) names the placeholder, never a value.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::caller::Attributes;

/// A secret value: kept out of every `Debug`, so no log or error can show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// One caller's named secrets.
pub type SecretSet = HashMap<String, Secret>;

/// The secrets of an upstream's callers: by JWT subject, and by static token name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// By the `sub` of the caller's JWT.
    pub subjects: HashMap<String, SecretSet>,
    /// By the configured name of the caller's static token (`[auth.tokens]`).
    pub tokens: HashMap<String, SecretSet>,
}

impl Secrets {
    /// The secrets of `caller`: its subject's, else its token name's.
    fn of(&self, caller: &dyn Attributes) -> Option<&SecretSet> {
        caller
            .subject()
            .and_then(|s| self.subjects.get(s))
            .or_else(|| caller.token_name().and_then(|t| self.tokens.get(t)))
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Claim(String),
    Secret(String),
}

/// A value with placeholders, parsed once at configuration load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

impl Template {
    /// Parses `text`; an unknown or unterminated placeholder is an error that names it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(after) = rest.strip_prefix("$${") {
                literal.push_str("${");
                rest = after;
            } else if let Some(after) = rest.strip_prefix("${") {
                let end = after.find('}').ok_or_else(|| format!("unterminated placeholder in {text:?}"))?;
                let inner = &after[..end];
                let part = match inner.split_once(':') {
                    Some(("claim", name)) if !name.is_empty() => Part::Claim(name.to_owned()),
                    Some(("secret", name)) if !name.is_empty() => Part::Secret(name.to_owned()),
                    _ => {
                        return Err(format!(
                            "unknown placeholder ${{{inner}}}: use ${{claim:NAME}} or ${{secret:NAME}} ($${{ for a literal ${{)"
                        ));
                    }
                };
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                parts.push(part);
                rest = &after[end + 1..];
            } else {
                literal.push('$');
                rest = &rest[1..];
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self(parts))
    }

    /// Whether it takes anything from the caller.
    pub fn is_per_caller(&self) -> bool {
        self.0.iter().any(|p| !matches!(p, Part::Text(_)))
    }

    /// Whether it reads a secret.
    pub fn uses_secrets(&self) -> bool {
        self.0.iter().any(|p| matches!(p, Part::Secret(_)))
    }

    /// Its text with nothing substituted (`$${` kept as `${`): the value of a template that
    /// takes nothing from the caller.
    pub fn literal(&self) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.as_str(),
                Part::Claim(_) | Part::Secret(_) => "",
            })
            .collect()
    }

    /// Its value for `caller`, with the caller's `secrets`.
    fn resolve(&self, caller: &dyn Attributes, secrets: Option<&SecretSet>) -> Result<String, Missing> {
        let mut value = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => value.push_str(t),
                Part::Claim(name) => match caller.claim(name) {
                    Some(serde_json::Value::String(s)) => value.push_str(s),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                        value.push_str(&v.to_string());
                    }
                    _ => return Err(Missing::Claim(name.clone())),
                },
                Part::Secret(name) => match secrets.and_then(|s| s.get(name)) {
                    Some(secret) => value.push_str(secret.expose()),
                    None => return Err(Missing::Secret(name.clone())),
                },
            }
        }
        Ok(value)
    }
}

/// Where a template's value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// The environment variable with this name (stdio).
    Env(String),
    /// The argument at this index (stdio).
    Arg(usize),
    /// The request header with this name (http, sse).
    Header(String),
}

/// What an upstream takes from each caller: its per-caller templates, and the secrets
/// they may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerCaller {
    /// Each template that reads the caller, and where its value goes.
    pub templates: Vec<(Slot, Template)>,
    /// The upstream's credentials (`None`: none configured; `${secret:…}` is then refused
    /// at configuration load).
    pub secrets: Option<Arc<Secrets>>,
}

/// Why a caller gets no value for an upstream's template. Names the placeholder, never a
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    /// The request has no caller: authentication is off, or it is stateless.
    #[error("no caller identity (authentication is off, or the request is stateless)")]
    NoCaller,
    /// The caller's token has no such claim, or not as a string, number or boolean.
    #[error("the caller's token has no claim '{0}' (a string, number or boolean)")]
    Claim(String),
    /// The credentials hold no such secret for the caller.
    #[error("no secret '{0}' for this caller in the upstream's credentials")]
    Secret(String),
}

impl PerCaller {
    /// Each slot's value for `caller`, or why the caller has none.
    pub fn resolve(&self, caller: Option<&dyn Attributes>) -> Result<Vec<(&Slot, String)>, Missing> {
        let caller = caller.ok_or(Missing::NoCaller)?;
        let secrets = self.secrets.as_deref().and_then(|s| s.of(caller));
        self.templates.iter().map(|(slot, t)| Ok((slot, t.resolve(caller, secrets)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    struct Who {
        subject: Option<&'static str>,
        token: Option<&'static str>,
        claims: Value,
    }

    impl Attributes for Who {
        fn subject(&self) -> Option<&str> {
            self.subject
        }
        fn token_name(&self) -> Option<&str> {
            self.token
        }
        fn has_scope(&self, _scope: &str) -> bool {
            false
        }
        fn claim(&self, name: &str) -> Option<&Value> {
            self.claims.get(name)
        }
    }

    fn secrets() -> Arc<Secrets> {
        let set = |v: &str| SecretSet::from([("token".to_owned(), Secret::new(v))]);
        Arc::new(Secrets {
            subjects: HashMap::from([("u-1".to_owned(), set("s3cret-u1"))]),
            tokens: HashMap::from([("alice".to_owned(), set("s3cret-alice"))]),
        })
    }

    #[test]
    fn templates_parse_placeholders_and_escapes() {
        let t = Template::parse("Bearer ${secret:token} for ${claim:login}, $${HOME} costs $5").expect("parses");
        assert!(t.is_per_caller() && t.uses_secrets());
        assert_eq!(t.literal(), "Bearer  for , ${HOME} costs $5");
        assert!(!Template::parse("plain $${x}").expect("parses").is_per_caller());
        assert!(Template::parse("${HOME}").is_err_and(|e| e.contains("${HOME}")));
        assert!(Template::parse("${secret:}").is_err());
        assert!(Template::parse("${claim:login").is_err_and(|e| e.contains("unterminated")));
    }

    #[test]
    fn a_caller_gets_its_own_secret_and_claims_by_subject_or_token_name() {
        let per = PerCaller {
            templates: vec![
                (Slot::Env("T".into()), Template::parse("${secret:token}").expect("parses")),
                (Slot::Arg(0), Template::parse("--user=${claim:login}/${claim:id}").expect("parses")),
            ],
            secrets: Some(secrets()),
        };
        let jwt = Who { subject: Some("u-1"), token: None, claims: json!({"login": "ann", "id": 7}) };
        let values: Vec<String> = per.resolve(Some(&jwt)).expect("resolved").into_iter().map(|(_, v)| v).collect();
        assert_eq!(values, ["s3cret-u1", "--user=ann/7"]);

        let per = PerCaller { templates: vec![per.templates[0].clone()], secrets: Some(secrets()) };
        let alice = Who { subject: None, token: Some("alice"), claims: json!({}) };
        assert_eq!(per.resolve(Some(&alice)).expect("resolved")[0].1, "s3cret-alice");
        let carol = Who { subject: None, token: Some("carol"), claims: json!({}) };
        assert_eq!(per.resolve(Some(&carol)).err(), Some(Missing::Secret("token".into())));
        assert_eq!(per.resolve(None).err(), Some(Missing::NoCaller));
    }

    #[test]
    fn a_missing_claim_is_named_and_no_debug_shows_a_secret() {
        let per = PerCaller {
            templates: vec![(Slot::Header("X".into()), Template::parse("${claim:login}").expect("parses"))],
            secrets: Some(secrets()),
        };
        let who = Who { subject: Some("u-1"), token: None, claims: json!({"login": ["not", "text"]}) };
        let missing = per.resolve(Some(&who)).expect_err("no usable claim");
        assert_eq!(missing.to_string(), "the caller's token has no claim 'login' (a string, number or boolean)");
        let shown = format!("{per:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
