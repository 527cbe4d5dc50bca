//! Who may see and call what: per-identity rules over the upstreams' tools, prompts and
//! resources, compiled once when the configuration loads.
//!
//! A rule says who it is for (a [`Who`]), what it covers (an upstream and name patterns
//! per kind) and what it does: allow, deny, or allow with a shape (a tool or prompt
//! renamed or re-described, a tool's arguments pinned). For one caller and one item the
//! rules that match both decide: any deny wins; else any allow allows (the first shaping
//! rule shapes; pins of several rules merge, the first rule's value winning); else the
//! policy's default decides. No rules and an `allow` default is no policy at all, and
//! costs nothing per request.
//!
//! Which rules are for a caller is worked out once per caller and policy (`memo`; a
//! caller whose attributes have no [`Attributes::serial`] pays one pass over the rules per
//! request); what a given set of matching rules lets through is worked out once per
//! catalog (`shape`) and kept by the session's server.
//!
//! # Layout
//! - `glob`: the name patterns.
//! - `memo`: which rules match a caller, remembered per policy.
//! - `shape`: a catalog as one caller sees it.
//! - `slot`: the policy in force, replaced by a reload, and the sessions told about it.

mod glob;
mod memo;
pub(crate) mod shape;
mod slot;

pub use crate::caller::{Attributes, Caller};
pub use slot::Policies;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use glob::Glob;
use memo::Memo;

/// Allow or deny.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Effect {
    /// Visible and callable.
    #[default]
    Allow,
    /// Absent from lists, and answered as unknown when called.
    Deny,
}

impl Effect {
    /// `allow` or `deny`, as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

/// Whom a rule is for. `anyone` matches every caller, authenticated or not;
/// `unauthenticated` only requests without credentials (authentication off). Otherwise
/// each field given must match (any one of its values), and at least one must be given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    /// Every caller.
    pub anyone: bool,
    /// Callers without credentials.
    pub unauthenticated: bool,
    /// JWT subjects (`sub`), exactly.
    pub subjects: Vec<String>,
    /// Names of static tokens.
    pub tokens: Vec<String>,
    /// Values of the groups claim (see [`PolicySpec::groups_claim`]).
    pub groups: Vec<String>,
    /// Scopes the credential was granted.
    pub scopes: Vec<String>,
}

/// One rule, as configured.
#[derive(Debug, Clone, Default)]
pub struct RuleSpec {
    /// Whom it is for.
    pub who: Who,
    /// The upstream it covers (a pattern; `None`: every upstream).
    pub upstream: Option<String>,
    /// Tool name patterns (the upstream's own names).
    pub tools: Vec<String>,
    /// Prompt name patterns (the upstream's own names).
    pub prompts: Vec<String>,
    /// Resource URI patterns (resources and resource templates).
    pub resources: Vec<String>,
    /// Allow or deny.
    pub effect: Effect,
    /// The name the one tool or prompt it names is exposed under.
    pub rename: Option<String>,
    /// The description the one tool or prompt it names is listed with.
    pub description: Option<String>,
    /// Tool arguments set by the gateway, removed from the schema the client sees.
    pub pin: Map<String, Value>,
}

/// The `[policy]` configuration.
#[derive(Debug, Clone, Default)]
pub struct PolicySpec {
    /// What applies when no rule covers an item for the caller.
    pub default: Effect,
    /// The claim holding a JWT caller's groups; dots walk into objects
    /// (`realm_access.roles`). `None`: `groups`.
    pub groups_claim: Option<String>,
    /// The rules, in order.
    pub rules: Vec<RuleSpec>,
}

/// The kinds of item a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tool,
    Prompt,
    Resource,
}

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    default: Effect,
    groups_claim: Vec<String>,
    rules: Vec<Rule>,
    /// Tells two loads apart (shaped catalogs are kept per policy).
    generation: u64,
    /// The rules for requests without credentials.
    unauthenticated: Matched,
    /// The rules for each caller with a serial seen lately.
    memo: Memo,
}

#[derive(Debug, PartialEq)]
struct Rule {
    who: Who,
    what: What,
}

/// What a rule covers and does.
#[derive(Debug, PartialEq)]
struct What {
    upstream: Glob,
    /// `None`: the rule does not cover the kind.
    tools: Option<Vec<Glob>>,
    prompts: Option<Vec<Glob>>,
    resources: Option<Vec<Glob>>,
    effect: Effect,
    rename: Option<String>,
    description: Option<String>,
    pins: Option<Arc<Map<String, Value>>>,
}

impl What {
    fn patterns(&self, kind: Kind) -> Option<&[Glob]> {
        match kind {
            Kind::Tool => self.tools.as_deref(),
            Kind::Prompt => self.prompts.as_deref(),
            Kind::Resource => self.resources.as_deref(),
        }
    }

    fn covers(&self, kind: Kind, upstream: &str, name: &str) -> bool {
        self.patterns(kind).is_some_and(|p| p.iter().any(|g| g.matches(name))) && self.upstream.matches(upstream)
    }
}

/// How an allowed tool or prompt is shown.
#[derive(Debug, Default, Clone)]
pub(crate) struct Shape {
    pub(crate) rename: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) pins: Option<Arc<Map<String, Value>>>,
}

/// The indices of the rules whose [`Who`] matches one caller; shared by every request of
/// that caller.
pub(crate) type Matched = Arc<[u32]>;

static GENERATIONS: AtomicU64 = AtomicU64::new(1);

impl Policy {
    /// Compiles `spec`; an error names the rule (counted from 1) and what is wrong.
    pub fn compile(spec: PolicySpec) -> Result<Self, String> {
        let rules = spec
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| Rule::compile(rule).map_err(|e| format!("rule {}: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        if rules.len() > u32::MAX as usize {
            return Err("too many rules".into());
        }
        let claim = spec.groups_claim.unwrap_or_else(|| "groups".to_owned());
        if claim.is_empty() || claim.split('.').any(str::is_empty) {
            return Err(format!("groups_claim {claim:?} is not a claim name (dots separate nested names)"));
        }
        let mut policy = Self {
            default: spec.default,
            groups_claim: claim.split('.').map(str::to_owned).collect(),
            rules,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
            unauthenticated: Matched::default(),
            memo: Memo::default(),
        };
        policy.unauthenticated = policy.work_out(None);
        Ok(policy)
    }

    /// No rules, everything allowed: no policy at all.
    pub fn allow_all() -> Self {
        Self {
            default: Effect::Allow,
            groups_claim: Vec::new(),
            rules: Vec::new(),
            generation: 0,
            unauthenticated: Matched::default(),
            memo: Memo::default(),
        }
    }

    /// Whether it lets everything through to everyone (nothing to apply).
    pub fn is_open(&self) -> bool {
        self.rules.is_empty() && self.default == Effect::Allow
    }

    /// What applies to an item no rule covers for the caller.
    pub fn default_effect(&self) -> Effect {
        self.default
    }

    /// How many rules it has.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether it has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The rules that are for `caller` (`None`: an unauthenticated request): remembered
    /// for a caller with a serial, else worked out.
    pub(crate) fn matching(&self, caller: Option<&Caller>) -> Matched {
        let Some(caller) = caller else { return self.unauthenticated.clone() };
        match caller.attributes().serial() {
            Some(serial) => self.memo.get_or(serial, || self.work_out(Some(caller))),
            None => self.work_out(Some(caller)),
        }
    }

    /// One pass over the rules: those that are for `caller`.
    fn work_out(&self, caller: Option<&Caller>) -> Matched {
        let mut matched = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if self.is_for(&rule.who, caller) {
                matched.push(i as u32);
            }
        }
        matched.into()
    }

    fn is_for(&self, who: &Who, caller: Option<&Caller>) -> bool {
        if who.anyone {
            return true;
        }
        let Some(caller) = caller.map(Caller::attributes) else { return who.unauthenticated };
        let any = |values: &[String], test: &dyn Fn(&str) -> bool| values.is_empty() || values.iter().any(|v| test(v));
        let named =
            !(who.subjects.is_empty() && who.tokens.is_empty() && who.groups.is_empty() && who.scopes.is_empty());
        named
            && any(&who.subjects, &|s| caller.subject() == Some(s))
            && any(&who.tokens, &|t| caller.token_name() == Some(t))
            && any(&who.scopes, &|s| caller.has_scope(s))
            && (who.groups.is_empty() || self.in_groups(caller, &who.groups))
    }

    /// Whether the caller's groups claim holds any of `groups`: an array of strings, or
    /// one string of space-separated names.
    fn in_groups(&self, caller: &dyn Attributes, groups: &[String]) -> bool {
        let Some((first, rest)) = self.groups_claim.split_first() else { return false };
        let mut value = caller.claim(first);
        for key in rest {
            value = value.and_then(|v| v.get(key));
        }
        match value {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).any(|g| groups.iter().any(|w| w == g)),
            Some(Value::String(s)) => s.split_whitespace().any(|g| groups.iter().any(|w| w == g)),
            _ => false,
        }
    }

    /// What the rules in `matched` decide for one item of `upstream`: `None` denies it.
    pub(crate) fn decide(&self, matched: &[u32], kind: Kind, upstream: &str, name: &str) -> Option<Shape> {
        let mut allowed = false;
        let mut shape = Shape::default();
        for what in matched.iter().filter_map(|&i| self.rules.get(i as usize)).map(|r| &r.what) {
            if !what.covers(kind, upstream, name) {
                continue;
            }
            if what.effect == Effect::Deny {
                return None;
            }
            allowed = true;
            if shape.rename.is_none() {
                shape.rename.clone_from(&what.rename);
            }
            if shape.description.is_none() {
                shape.description.clone_from(&what.description);
            }
            if let Some(pins) = &what.pins {
                shape.pins = Some(match shape.pins.take() {
                    None => pins.clone(),
                    Some(mut merged) => {
                        let into = Arc::make_mut(&mut merged);
                        for (k, v) in pins.iter() {
                            into.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                        merged
                    }
                });
            }
        }
        (allowed || self.default == Effect::Allow).then_some(shape)
    }

    /// Whether what `caller` may see of `kind` differs between two policies: the rules
    /// for it that cover the kind, or the default, changed. (It may say so when nothing
    /// the caller sees changed: a rule about an item no upstream offers.)
    pub(crate) fn differs_for(&self, other: &Policy, caller: Option<&Caller>, kind: Kind) -> bool {
        self.default != other.default || self.view(caller, kind) != other.view(caller, kind)
    }

    /// The rules for `caller` that cover `kind`.
    fn view(&self, caller: Option<&Caller>, kind: Kind) -> Vec<&What> {
        self.matching(caller)
            .iter()
            .filter_map(|&i| self.rules.get(i as usize))
            .map(|r| &r.what)
            .filter(|w| w.patterns(kind).is_some())
            .collect()
    }
}

impl Rule {
    fn compile(spec: RuleSpec) -> Result<Self, String> {
        let who = spec.who;
        let named =
            !(who.subjects.is_empty() && who.tokens.is_empty() && who.groups.is_empty() && who.scopes.is_empty());
        if !(who.anyone || who.unauthenticated || named) {
            return Err(
                "says for whom: subjects, tokens, groups, scopes, anyone = true or unauthenticated = true".into()
            );
        }
        if who.anyone && (who.unauthenticated || named) {
            return Err("anyone = true is every caller: give no other who field with it".into());
        }
        if who.unauthenticated && named {
            return Err("unauthenticated = true has no subject, token, groups or scopes to match".into());
        }
        let globs = |v: &[String]| v.iter().map(|p| Glob::new(p)).collect::<Vec<_>>();
        let every = spec.tools.is_empty() && spec.prompts.is_empty() && spec.resources.is_empty();
        let kind = |v: &[String]| {
            if every {
                Some(vec![Glob::new("*")])
            } else if v.is_empty() {
                None
            } else {
                Some(globs(v))
            }
        };
        let shaped = spec.rename.is_some() || spec.description.is_some();
        if spec.effect == Effect::Deny && (shaped || !spec.pin.is_empty()) {
            return Err("a deny rule cannot rename, describe or pin".into());
        }
        let upstream = Glob::new(spec.upstream.as_deref().unwrap_or("*"));
        if shaped {
            let one = match (spec.tools.as_slice(), spec.prompts.as_slice(), spec.resources.is_empty()) {
                ([one], [], true) | ([], [one], true) => Glob::new(one).is_literal(),
                _ => false,
            };
            if !one || !upstream.is_literal() {
                return Err("rename and description name one upstream and one tool or prompt, without patterns".into());
            }
            if spec.rename.as_deref().is_some_and(|r| r.is_empty() || r.chars().any(char::is_whitespace)) {
                return Err("rename must be a name without spaces".into());
            }
        }
        if !spec.pin.is_empty() && (spec.tools.is_empty() || !spec.prompts.is_empty() || !spec.resources.is_empty()) {
            return Err("pin applies to tools: name them with tools (patterns allowed), and nothing else".into());
        }
        Ok(Self {
            who,
            what: What {
                upstream,
                tools: kind(&spec.tools),
                prompts: kind(&spec.prompts),
                resources: kind(&spec.resources),
                effect: spec.effect,
                rename: spec.rename,
                description: spec.description,
                pins: (!spec.pin.is_empty()).then(|| Arc::new(spec.pin)),
            },
        })
    }
}

#[cfg(test)]
mod tests;
