//! Merging what several upstreams list into what one session sees: tools, prompts,
//! resources and templates, with the names they are exposed under and the way back to the
//! upstream that owns each.
//!
//! Naming (`names`): an upstream's `prefix` goes in front of each of its tool and prompt
//! names; a name two upstreams would both expose is kept by the built-in upstream if it is
//! one of them, and otherwise exposed as `<upstream>_<name>`, so every one stays callable.
//! Resources keep their URIs; when two upstreams list the same URI the first one listed in
//! the configuration serves it.

mod names;

use std::collections::HashMap;
use std::sync::Arc;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use serde_json::{Map, Value};

use crate::upstream::spec::ToolFilter;
use names::Own;

/// One upstream's listings, in configuration order.
#[derive(Debug, Default)]
pub struct Listing<'a> {
    /// The upstream's name.
    pub upstream: &'a str,
    /// Whether it is mcpgw's built-in upstream, whose names are kept on a collision.
    pub builtin: bool,
    /// Its configured name prefix.
    pub prefix: Option<&'a str>,
    /// Which of its tools are exposed.
    pub filter: Option<&'a ToolFilter>,
    /// Its tools.
    pub tools: &'a [Tool],
    /// Its prompts.
    pub prompts: &'a [Prompt],
    /// Its resources.
    pub resources: &'a [Resource],
    /// Its resource templates.
    pub templates: &'a [ResourceTemplate],
}

/// Where an exposed name leads: the upstream's index and its own name for the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Index of the upstream in configuration order.
    pub upstream: usize,
    /// The upstream's own name for the tool or prompt.
    pub name: String,
    /// Tool arguments the caller's policy sets (`None`: none).
    pub pins: Option<Arc<Map<String, Value>>>,
}

/// Whether a caller may read a URI of an upstream (by index): a shaped catalog's check
/// for URIs no resource lists (read through a template's upstream).
#[derive(Clone)]
pub struct UriGate(Arc<Allows>);

/// The check of a [`UriGate`]: upstream index and URI.
type Allows = dyn Fn(usize, &str) -> bool + Send + Sync;

impl UriGate {
    /// The gate of this check.
    pub fn new(allows: impl Fn(usize, &str) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(allows))
    }
}

impl std::fmt::Debug for UriGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UriGate")
    }
}

/// What one session sees.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Tools, under their exposed names.
    pub tools: Vec<Tool>,
    /// Prompts, under their exposed names.
    pub prompts: Vec<Prompt>,
    /// Resources.
    pub resources: Vec<Resource>,
    /// Resource templates.
    pub templates: Vec<ResourceTemplate>,
    pub(crate) tool_routes: HashMap<String, Route>,
    pub(crate) prompt_routes: HashMap<String, Route>,
    tool_hints: HashMap<String, String>,
    prompt_hints: HashMap<String, String>,
    pub(crate) resource_owners: HashMap<String, usize>,
    pub(crate) template_owners: Vec<usize>,
    /// Set on a caller's shaped catalog: the URIs it may read.
    pub(crate) uri_gate: Option<UriGate>,
}

impl Catalog {
    /// Merges the listings of every upstream. A name collision is logged the first time any
    /// session meets it.
    pub fn merge(listings: &[Listing<'_>]) -> Self {
        let mut catalog = Catalog::default();
        let tools = names::resolve(listings, "tool", |l| {
            let allowed = |name: &str| l.filter.is_none_or(|f| f.allows(name));
            l.tools.iter().map(|t| Own { name: t.name.to_string(), allowed: allowed(&t.name) }).collect()
        });
        for (upstream, listing) in listings.iter().enumerate() {
            for tool in listing.tools {
                let original = tool.name.to_string();
                if let Some(exposed) = tools.exposed.get(&(upstream, original.clone())) {
                    catalog.tool_routes.insert(exposed.clone(), Route { upstream, name: original, pins: None });
                    let mut tool = tool.clone();
                    tool.name = exposed.clone().into();
                    catalog.tools.push(tool);
                }
            }
        }
        let prompts = names::resolve(listings, "prompt", |l| {
            l.prompts.iter().map(|p| Own { name: p.name.clone(), allowed: true }).collect()
        });
        for (upstream, listing) in listings.iter().enumerate() {
            for prompt in listing.prompts {
                if let Some(exposed) = prompts.exposed.get(&(upstream, prompt.name.clone())) {
                    catalog
                        .prompt_routes
                        .insert(exposed.clone(), Route { upstream, name: prompt.name.clone(), pins: None });
                    let mut prompt = prompt.clone();
                    prompt.name = exposed.clone();
                    catalog.prompts.push(prompt);
                }
            }
        }
        for (upstream, listing) in listings.iter().enumerate() {
            for resource in listing.resources {
                if !catalog.resource_owners.contains_key(&resource.uri) {
                    catalog.resource_owners.insert(resource.uri.clone(), upstream);
                    catalog.resources.push(resource.clone());
                }
            }
            for template in listing.templates {
                catalog.templates.push(template.clone());
                catalog.template_owners.push(upstream);
            }
        }
        names::announce(&tools.collisions);
        names::announce(&prompts.collisions);
        catalog.tool_hints = tools.hints;
        catalog.prompt_hints = prompts.hints;
        catalog
    }

    /// Why no tool is exposed as `name` though an upstream offers something close (a
    /// collision or a prefix renamed it, a filter left it out), and what to call instead.
    pub fn tool_hint(&self, name: &str) -> Option<&str> {
        self.tool_hints.get(name).map(String::as_str)
    }

    /// Why no prompt is exposed as `name` though an upstream offers something close.
    pub fn prompt_hint(&self, name: &str) -> Option<&str> {
        self.prompt_hints.get(name).map(String::as_str)
    }

    /// The upstream and original name behind an exposed tool name.
    pub fn tool(&self, exposed: &str) -> Option<&Route> {
        self.tool_routes.get(exposed)
    }

    /// The upstream and original name behind an exposed prompt name.
    pub fn prompt(&self, exposed: &str) -> Option<&Route> {
        self.prompt_routes.get(exposed)
    }

    /// The upstreams that may serve this URI, most likely first: the one that listed it,
    /// then those whose templates match it, then the other upstreams with templates.
    pub fn resource_owners(&self, uri: &str) -> Vec<usize> {
        let mut owners: Vec<usize> = self.resource_owners.get(uri).copied().into_iter().collect();
        let matching =
            self.templates.iter().zip(&self.template_owners).filter(|(t, _)| template_matches(&t.uri_template, uri));
        let others = self.template_owners.iter();
        for owner in matching.map(|(_, o)| o).chain(others) {
            if !owners.contains(owner) {
                owners.push(*owner);
            }
        }
        if let Some(UriGate(allows)) = &self.uri_gate {
            owners.retain(|&o| allows(o, uri));
        }
        owners
    }

    /// The upstream owning the resource template with this URI template.
    pub fn template_owner(&self, uri_template: &str) -> Option<usize> {
        self.templates.iter().position(|t| t.uri_template == uri_template).map(|i| self.template_owners[i])
    }
}

/// Whether `uri` fits an RFC 6570 level-1 template (`{var}` matches one or more
/// characters other than `/`).
fn template_matches(template: &str, uri: &str) -> bool {
    let mut rest = uri;
    let mut parts = template.split('{');
    let Some(head) = parts.next() else { return false };
    let Some(after) = rest.strip_prefix(head) else { return false };
    rest = after;
    for part in parts {
        let Some((_, literal)) = part.split_once('}') else { return false };
        let end = if literal.is_empty() {
            rest.find('/').unwrap_or(rest.len())
        } else {
            match rest.find(literal) {
                Some(i) => i,
                None => return false,
            }
        };
        if end == 0 {
            return false;
        }
        rest = &rest[end..];
        let Some(after) = rest.strip_prefix(literal) else { return false };
        rest = after;
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Tool {
        Tool::new(name.to_owned(), "d", Arc::new(serde_json::Map::new()))
    }

    fn names(catalog: &Catalog) -> Vec<&str> {
        let mut names: Vec<&str> = catalog.tools.iter().map(|t| t.name.as_ref()).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn unique_names_pass_through_and_collisions_get_the_upstream_prefix() {
        let a = [tool("echo"), tool("read")];
        let b = [tool("echo"), tool("write")];
        let catalog = Catalog::merge(&[
            Listing { upstream: "a", tools: &a, ..Listing::default() },
            Listing { upstream: "b", tools: &b, ..Listing::default() },
        ]);
        assert_eq!(names(&catalog), ["a_echo", "b_echo", "read", "write"]);
        assert_eq!(catalog.tool("a_echo"), Some(&Route { upstream: 0, name: "echo".into(), pins: None }));
        assert_eq!(catalog.tool("b_echo"), Some(&Route { upstream: 1, name: "echo".into(), pins: None }));
        assert_eq!(catalog.tool("write"), Some(&Route { upstream: 1, name: "write".into(), pins: None }));
        assert_eq!(catalog.tool("echo"), None);
        assert_eq!(
            catalog.tool_hint("echo"),
            Some(
                "did you mean a_echo or b_echo? 'echo' is offered by upstreams 'a' and 'b', so each is exposed \
                 with its upstream's name in front"
            )
        );
        assert_eq!(catalog.tool_hint("read"), None, "an exposed name needs no hint");
    }

    #[test]
    fn the_builtin_upstream_keeps_its_names_wherever_it_is_listed() {
        let everything = [tool("echo"), tool("get-sum")];
        let builtin = [tool("echo"), tool("add")];
        let catalog = Catalog::merge(&[
            Listing { upstream: "everything", tools: &everything, ..Listing::default() },
            Listing { upstream: "builtin", builtin: true, tools: &builtin, ..Listing::default() },
        ]);
        assert_eq!(names(&catalog), ["add", "echo", "everything_echo", "get-sum"]);
        assert_eq!(catalog.tool("echo"), Some(&Route { upstream: 1, name: "echo".into(), pins: None }));
        assert_eq!(catalog.tool("everything_echo"), Some(&Route { upstream: 0, name: "echo".into(), pins: None }));
        assert_eq!(
            catalog.tool_hint("builtin_echo"),
            Some(
                "did you mean echo? the built-in 'echo' keeps its name when another upstream offers one too; \
                 upstream 'everything' exposes its own as everything_echo"
            )
        );
    }

    #[test]
    fn two_builtin_upstreams_are_both_prefixed() {
        let tools = [tool("echo")];
        let catalog = Catalog::merge(&[
            Listing { upstream: "one", builtin: true, tools: &tools, ..Listing::default() },
            Listing { upstream: "two", builtin: true, tools: &tools, ..Listing::default() },
        ]);
        assert_eq!(names(&catalog), ["one_echo", "two_echo"]);
    }

    #[test]
    fn hints_name_the_prefix_and_the_filter() {
        let files = [tool("read_file"), tool("write_file")];
        let filter = ToolFilter { allow: None, deny: vec!["write_file".into()] };
        let catalog = Catalog::merge(&[Listing {
            upstream: "files",
            prefix: Some("fs_"),
            filter: Some(&filter),
            tools: &files,
            ..Listing::default()
        }]);
        assert_eq!(
            catalog.tool_hint("read_file"),
            Some(
                "did you mean fs_read_file? upstream 'files' exposes its 'read_file' under that name (its prefix is 'fs_')"
            )
        );
        let denied = "upstream 'files' has a tool 'write_file', but its tools_allow or tools_deny leave it out";
        assert_eq!(catalog.tool_hint("write_file"), Some(denied));
        assert_eq!(catalog.tool_hint("fs_write_file"), Some(denied));
        assert_eq!(catalog.tool_hint("nothing"), None);
    }

    #[test]
    fn prompts_collide_by_the_same_rule() {
        let prompt = |name: &str| Prompt::new(name, None::<String>, None);
        let a = [prompt("greeting")];
        let b = [prompt("greeting")];
        let catalog = Catalog::merge(&[
            Listing { upstream: "a", prompts: &a, ..Listing::default() },
            Listing { upstream: "b", prompts: &b, ..Listing::default() },
        ]);
        assert!(catalog.prompt("greeting").is_none());
        assert_eq!(catalog.prompt("b_greeting"), Some(&Route { upstream: 1, name: "greeting".into(), pins: None }));
        assert!(
            catalog.prompt_hint("greeting").is_some_and(|h| h.starts_with("did you mean a_greeting or b_greeting?"))
        );
    }

    #[test]
    fn prefixes_and_filters_apply() {
        let a = [tool("read"), tool("delete")];
        let filter = ToolFilter { allow: None, deny: vec!["delete".into()] };
        let catalog = Catalog::merge(&[Listing {
            upstream: "fs",
            prefix: Some("fs_"),
            filter: Some(&filter),
            tools: &a,
            ..Listing::default()
        }]);
        let names: Vec<&str> = catalog.tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, ["fs_read"]);
        assert_eq!(catalog.tool("fs_read").map(|r| r.name.as_str()), Some("read"));
    }

    #[test]
    fn templates_match_level_one_uris() {
        assert!(template_matches("test://template/{id}/data", "test://template/123/data"));
        assert!(template_matches("file:///{path}", "file:///x"));
        assert!(!template_matches("test://template/{id}/data", "test://template//data"));
        assert!(!template_matches("test://template/{id}/data", "test://other/1/data"));
    }
}
