//! The names tools and prompts are exposed under, and what to tell a client that asks for
//! a name that is not exposed.
//!
//! An upstream's `prefix` goes in front of each of its names first. Where two upstreams
//! would then expose the same name:
//! - when exactly one of them is mcpgw's built-in upstream, the built-in keeps the name and
//!   each other one is exposed as `<upstream>_<name>`. The built-in names are a documented
//!   contract that clients and scripts are written against, and the built-in upstream is
//!   always present, so adding an upstream never renames them and the bare name never
//!   moves to another server;
//! - otherwise each of them is exposed as `<upstream>_<name>`. No remote upstream is always
//!   present: had the first one listed kept the bare name, that name would pass to the next
//!   one while the first restarts, and calls meant for one server would reach another.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

use super::Listing;

/// One of an upstream's own names, and whether its filter exposes it.
pub(super) struct Own {
    pub(super) name: String,
    pub(super) allowed: bool,
}

/// The outcome of naming one kind of item (tools or prompts) across every upstream.
#[derive(Debug, Default)]
pub(super) struct Names {
    /// (upstream index, its own name) → the exposed name, for every exposed item.
    pub(super) exposed: HashMap<(usize, String), String>,
    /// A name a client may ask for that is not exposed → why, and what to ask instead.
    pub(super) hints: HashMap<String, String>,
    /// One line per collision, for the log.
    pub(super) collisions: Vec<String>,
}

/// One item an upstream wants to expose.
struct Wanted {
    upstream: usize,
    own: String,
    /// After the upstream's prefix.
    name: String,
}

/// Names the items of one kind (`what`: "tool" or "prompt") that `own` lists per upstream.
pub(super) fn resolve(listings: &[Listing<'_>], what: &str, own: impl Fn(&Listing<'_>) -> Vec<Own>) -> Names {
    let mut names = Names::default();
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut filtered: Vec<Wanted> = Vec::new();
    for (upstream, listing) in listings.iter().enumerate() {
        let prefix = listing.prefix.unwrap_or("");
        for Own { name, allowed } in own(listing) {
            let item = Wanted { upstream, name: format!("{prefix}{name}"), own: name };
            if allowed { wanted.push(item) } else { filtered.push(item) }
        }
    }
    // Groups by wanted name, in the order the names first appear (so the log is stable).
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<&Wanted>> = HashMap::new();
    for item in &wanted {
        let group = groups.entry(item.name.as_str()).or_default();
        if group.is_empty() {
            order.push(&item.name);
        }
        group.push(item);
    }
    for name in order {
        let group = &groups[name];
        if let [only] = group.as_slice() {
            names.exposed.insert((only.upstream, only.own.clone()), name.to_owned());
            continue;
        }
        let builtins: Vec<usize> = group.iter().map(|w| w.upstream).filter(|u| listings[*u].builtin).collect();
        let keeper = match builtins.as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        let mut renamed: Vec<(&str, String)> = Vec::new();
        for item in group {
            let upstream = listings[item.upstream].upstream;
            let exposed = if Some(item.upstream) == keeper {
                name.to_owned()
            } else {
                let prefixed = format!("{upstream}_{name}");
                renamed.push((upstream, prefixed.clone()));
                prefixed
            };
            names.exposed.insert((item.upstream, item.own.clone()), exposed);
        }
        let offered_by = and_list(group.iter().map(|w| format!("'{}'", listings[w.upstream].upstream)));
        let renamed_list = and_list(renamed.iter().map(|(u, e)| format!("{u}'s as {e}")));
        match keeper {
            Some(k) => {
                let builtin = listings[k].upstream;
                names.collisions.push(format!(
                    "{what} '{name}' is offered by upstreams {offered_by}: the built-in '{name}' keeps its name; \
                     exposed {renamed_list}"
                ));
                let others = and_list(renamed.iter().map(|(u, e)| format!("upstream '{u}' exposes its own as {e}")));
                names.hints.entry(format!("{builtin}_{name}")).or_insert_with(|| {
                    format!("did you mean {name}? the built-in '{name}' keeps its name when another upstream offers one too; {others}")
                });
            }
            None => {
                names.collisions.push(format!(
                    "{what} '{name}' is offered by upstreams {offered_by}, so none keeps that name: exposed {renamed_list}"
                ));
                let choices = or_list(renamed.iter().map(|(_, e)| e.clone()));
                names.hints.entry(name.to_owned()).or_insert_with(|| {
                    format!(
                        "did you mean {choices}? '{name}' is offered by upstreams {offered_by}, so each is exposed \
                         with its upstream's name in front"
                    )
                });
            }
        }
    }
    // An upstream's own name, where its prefix or a collision changed it.
    for item in &wanted {
        let Some(exposed) = names.exposed.get(&(item.upstream, item.own.clone())) else { continue };
        if *exposed != item.own {
            let upstream = listings[item.upstream].upstream;
            let why = match listings[item.upstream].prefix {
                Some(prefix) if !prefix.is_empty() => format!(" (its prefix is '{prefix}')"),
                _ => String::new(),
            };
            let hint = format!(
                "did you mean {exposed}? upstream '{upstream}' exposes its '{}' under that name{why}",
                item.own
            );
            names.hints.entry(item.own.clone()).or_insert(hint);
        }
    }
    for item in &filtered {
        let upstream = listings[item.upstream].upstream;
        let hint = format!(
            "upstream '{upstream}' has a {what} '{}', but its tools_allow or tools_deny leave it out",
            item.own
        );
        names.hints.entry(item.name.clone()).or_insert_with(|| hint.clone());
        names.hints.entry(item.own.clone()).or_insert(hint);
    }
    names
}

/// Collisions already logged. Process-wide, so that each is said once and not for every
/// session that lists its tools; it holds one line per distinct collision of the
/// configurations loaded, and stops growing at a bound all the same.
static ANNOUNCED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
const ANNOUNCED_MAX: usize = 4096;

/// Logs each collision the first time any session meets it.
pub(super) fn announce(collisions: &[String]) {
    if collisions.is_empty() {
        return;
    }
    let mut announced = ANNOUNCED.lock().unwrap_or_else(PoisonError::into_inner);
    for line in collisions {
        if announced.len() < ANNOUNCED_MAX && announced.insert(line.clone()) {
            tracing::info!("name collision: {line}");
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: impl Iterator<Item = String>) -> String {
    join(items, "and")
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: impl Iterator<Item = String>) -> String {
    join(items, "or")
}

fn join(items: impl Iterator<Item = String>, last: &str) -> String {
    let items: Vec<String> = items.collect();
    match items.split_last() {
        None => String::new(),
        Some((only, [])) => only.clone(),
        Some((tail, head)) => format!("{} {last} {tail}", head.join(", ")),
    }
}
