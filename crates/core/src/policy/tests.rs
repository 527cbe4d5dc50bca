//! The policy's decisions, and a catalog shaped by them.

use std::sync::Arc;

use rmcp::model::Tool;
use serde_json::json;

use super::*;
use crate::catalog::{Catalog, Listing};

struct Person {
    subject: Option<&'static str>,
    token: Option<&'static str>,
    scopes: &'static [&'static str],
    claims: Map<String, Value>,
    serial: Option<u64>,
}

impl Attributes for Person {
    fn subject(&self) -> Option<&str> {
        self.subject
    }
    fn token_name(&self) -> Option<&str> {
        self.token
    }
    fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(&scope)
    }
    fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }
    fn serial(&self) -> Option<u64> {
        self.serial
    }
}

fn token(name: &'static str) -> Caller {
    Caller::new(Person { subject: None, token: Some(name), scopes: &[], claims: Map::new(), serial: None })
}

fn jwt(subject: &'static str, claims: Value) -> Caller {
    let claims = claims.as_object().cloned().unwrap_or_default();
    Caller::new(Person { subject: Some(subject), token: None, scopes: &["tools"], claims, serial: None })
}

/// A JWT caller with a serial (as the gateway's callers have), in `groups`.
fn member(subject: &'static str, groups: &[&str], serial: u64) -> Caller {
    let claims = json!({"groups": groups}).as_object().cloned().unwrap_or_default();
    Caller::new(Person { subject: Some(subject), token: None, scopes: &[], claims, serial: Some(serial) })
}

fn who_tokens(names: &[&str]) -> Who {
    Who { tokens: names.iter().map(|s| (*s).to_owned()).collect(), ..Who::default() }
}

fn rule(who: Who, upstream: &str, tools: &[&str], effect: Effect) -> RuleSpec {
    RuleSpec {
        who,
        upstream: Some(upstream.to_owned()),
        tools: tools.iter().map(|s| (*s).to_owned()).collect(),
        effect,
        ..RuleSpec::default()
    }
}

fn allowed(policy: &Policy, caller: Option<&Caller>, upstream: &str, tool: &str) -> bool {
    policy.decide(&policy.matching(caller), Kind::Tool, upstream, tool).is_some()
}

#[test]
fn deny_wins_and_the_default_decides_the_rest() {
    let policy = Policy::compile(PolicySpec {
        rules: vec![
            rule(who_tokens(&["alice"]), "fs", &["*"], Effect::Allow),
            rule(Who { anyone: true, ..Who::default() }, "fs", &["delete_*"], Effect::Deny),
        ],
        default: Effect::Deny,
        ..PolicySpec::default()
    })
    .expect("valid");
    let alice = token("alice");
    assert!(allowed(&policy, Some(&alice), "fs", "read"));
    assert!(!allowed(&policy, Some(&alice), "fs", "delete_all"), "deny wins over allow");
    assert!(!allowed(&policy, Some(&alice), "other", "read"), "the default");
    assert!(!allowed(&policy, Some(&token("bob")), "fs", "read"));
    assert!(!allowed(&policy, None, "fs", "read"));
}

#[test]
fn groups_come_from_the_configured_claim_arrays_or_strings() {
    let spec = |claim: Option<&str>| PolicySpec {
        rules: vec![rule(Who { groups: vec!["admins".into()], ..Who::default() }, "*", &["*"], Effect::Allow)],
        default: Effect::Deny,
        groups_claim: claim.map(str::to_owned),
    };
    let policy = Policy::compile(spec(None)).expect("valid");
    assert!(allowed(&policy, Some(&jwt("a", json!({"groups": ["users", "admins"]}))), "x", "t"));
    assert!(allowed(&policy, Some(&jwt("a", json!({"groups": "users admins"}))), "x", "t"));
    assert!(!allowed(&policy, Some(&jwt("a", json!({"groups": ["users"]}))), "x", "t"));
    assert!(!allowed(&policy, Some(&token("admins")), "x", "t"), "a token name is not a group");
    let nested = Policy::compile(spec(Some("realm_access.roles"))).expect("valid");
    assert!(allowed(&nested, Some(&jwt("a", json!({"realm_access": {"roles": ["admins"]}}))), "x", "t"));
    assert!(Policy::compile(spec(Some("a..b"))).is_err());
}

#[test]
fn who_fields_must_all_match_and_anyone_includes_the_unauthenticated() {
    let both = Who { subjects: vec!["a".into()], scopes: vec!["admin".into()], ..Who::default() };
    let policy = Policy::compile(PolicySpec {
        rules: vec![rule(both, "*", &["*"], Effect::Allow)],
        default: Effect::Deny,
        ..PolicySpec::default()
    })
    .expect("valid");
    assert!(!allowed(&policy, Some(&jwt("a", json!({}))), "x", "t"), "subject without the scope");
    let anyone = Policy::compile(PolicySpec {
        rules: vec![rule(Who { anyone: true, ..Who::default() }, "*", &["t"], Effect::Deny)],
        ..PolicySpec::default()
    })
    .expect("valid");
    assert!(!allowed(&anyone, None, "x", "t"));
    assert!(allowed(&anyone, None, "x", "u"));
}

#[test]
fn bad_rules_are_refused_with_their_number() {
    let refused =
        |r: RuleSpec| Policy::compile(PolicySpec { rules: vec![r], ..PolicySpec::default() }).expect_err("refused");
    let nobody = rule(Who::default(), "x", &["t"], Effect::Allow);
    assert!(refused(nobody).starts_with("rule 1: says for whom"));
    let mut glob_rename = rule(who_tokens(&["a"]), "x", &["t*"], Effect::Allow);
    glob_rename.rename = Some("u".into());
    assert!(refused(glob_rename).contains("without patterns"));
    let mut deny_pin = rule(who_tokens(&["a"]), "x", &["t"], Effect::Deny);
    deny_pin.pin.insert("k".into(), json!(1));
    assert!(refused(deny_pin).contains("cannot rename, describe or pin"));
}

#[test]
fn a_shaped_catalog_renames_describes_pins_and_leaves_out() {
    let schema = json!({"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a", "b"]});
    let tools = [
        Tool::new("add", "adds", Arc::new(schema.as_object().cloned().unwrap_or_default())),
        Tool::new("echo", "echoes", Arc::new(Map::new())),
        Tool::new("secret", "hidden", Arc::new(Map::new())),
    ];
    let base = Catalog::merge(&[Listing { upstream: "b", tools: &tools, ..Listing::default() }]);
    let mut renamed = rule(who_tokens(&["bob"]), "b", &["add"], Effect::Allow);
    renamed.rename = Some("plus".into());
    renamed.description = Some("adds to 40".into());
    renamed.pin.insert("a".into(), json!(40));
    let policy = Arc::new(
        Policy::compile(PolicySpec {
            rules: vec![renamed, rule(who_tokens(&["bob"]), "b", &["secret"], Effect::Deny)],
            ..PolicySpec::default()
        })
        .expect("valid"),
    );
    let names: Arc<[String]> = Arc::from(vec!["b".to_owned()]);
    let shaped = shape::shape(&policy, &policy.matching(Some(&token("bob"))), &base, &names);
    let listed: Vec<&str> = shaped.tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(listed, ["plus", "echo"]);
    let plus = &shaped.tools[0];
    assert_eq!(plus.description.as_deref(), Some("adds to 40"));
    assert_eq!(plus.input_schema.get("properties"), Some(&json!({"b": {}})));
    assert_eq!(plus.input_schema.get("required"), Some(&json!(["b"])));
    let route = shaped.tool("plus").expect("routed");
    assert_eq!(route.name, "add");
    assert_eq!(route.pins.as_deref(), Some(json!({"a": 40}).as_object().expect("object")));
    assert!(shaped.tool("add").is_none() && shaped.tool("secret").is_none());
    assert!(shaped.tool_hint("secret").is_none(), "no hint names what the caller may not see");
    let alice = shape::shape(&policy, &policy.matching(Some(&token("alice"))), &base, &names);
    assert_eq!(alice.tools.len(), 3, "the rules are bob's");
}

#[test]
fn a_reload_differs_only_for_the_callers_and_kinds_it_touches() {
    let old = Policy::compile(PolicySpec {
        rules: vec![rule(who_tokens(&["alice"]), "b", &["echo"], Effect::Deny)],
        ..PolicySpec::default()
    })
    .expect("valid");
    let new = Policy::compile(PolicySpec {
        rules: vec![rule(who_tokens(&["alice"]), "b", &["echo", "add"], Effect::Deny)],
        ..PolicySpec::default()
    })
    .expect("valid");
    assert!(old.differs_for(&new, Some(&token("alice")), Kind::Tool));
    assert!(!old.differs_for(&new, Some(&token("alice")), Kind::Prompt));
    assert!(!old.differs_for(&new, Some(&token("bob")), Kind::Tool));
}

#[test]
fn a_uri_read_through_a_template_is_checked_itself() {
    let templates = [rmcp::model::ResourceTemplate::new("file:///{path}", "files")];
    let base = Catalog::merge(&[Listing { upstream: "fs", templates: &templates, ..Listing::default() }]);
    let mut deny = rule(who_tokens(&["bob"]), "fs", &[], Effect::Deny);
    deny.resources = vec!["file:///secret*".into()];
    let policy = Arc::new(Policy::compile(PolicySpec { rules: vec![deny], ..PolicySpec::default() }).expect("valid"));
    let names: Arc<[String]> = Arc::from(vec!["fs".to_owned()]);
    let shaped = shape::shape(&policy, &policy.matching(Some(&token("bob"))), &base, &names);
    assert_eq!(shaped.resource_owners("file:///notes"), [0]);
    assert!(shaped.resource_owners("file:///secret.txt").is_empty());
    assert_eq!(base.resource_owners("file:///secret.txt"), [0], "unshaped, anyone reads it");
}

#[test]
fn callers_with_serials_get_their_own_rules_remembered_per_policy() {
    let in_group =
        |group: &str, effect| rule(Who { groups: vec![group.into()], ..Who::default() }, "b", &["t"], effect);
    let spec = |rules| PolicySpec { rules, default: Effect::Deny, ..PolicySpec::default() };
    let policy =
        Policy::compile(spec(vec![in_group("ops", Effect::Allow), in_group("dev", Effect::Allow)])).expect("valid");
    let (ops, dev, stranger) = (member("o", &["ops"], 1), member("d", &["dev"], 2), member("s", &[], 3));
    assert_eq!(&*policy.matching(Some(&ops)), &[0]);
    assert_eq!(&*policy.matching(Some(&dev)), &[1], "another serial, its own rules");
    assert!(policy.matching(Some(&stranger)).is_empty());
    assert!(Arc::ptr_eq(&policy.matching(Some(&ops)), &policy.matching(Some(&ops))), "remembered");
    assert!(allowed(&policy, Some(&dev), "b", "t") && !allowed(&policy, Some(&stranger), "b", "t"));
    // A caller without a serial is matched every time, and not remembered.
    let before = policy.memo.len();
    assert_eq!(&*policy.matching(Some(&jwt("o", json!({"groups": ["ops"]})))), &[0]);
    assert_eq!(policy.memo.len(), before);

    // A reload puts a new policy in force: the same caller's next request is judged by it.
    let policies = Policies::new(Arc::new(policy));
    assert!(allowed(&policies.current(), Some(&ops), "b", "t"));
    let reloaded =
        Policy::compile(spec(vec![in_group("dev", Effect::Allow), in_group("ops", Effect::Deny)])).expect("valid");
    policies.replace(Arc::new(reloaded), &tokio_util::task::TaskTracker::new());
    assert_eq!(&*policies.current().matching(Some(&ops)), &[1]);
    assert!(!allowed(&policies.current(), Some(&ops), "b", "t"));
    assert!(allowed(&policies.current(), Some(&dev), "b", "t"));
}
