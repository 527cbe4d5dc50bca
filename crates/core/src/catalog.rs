//! Merging what several upstreams list into what one session sees: tools, prompts,
//! resources and templates, with the names they are exposed under and the way back to the
//! upstream that owns each.
//!
//! Naming: an upstream's `prefix` goes in front of each of its tool and prompt names. A
//! name that two upstreams would both expose is exposed as `<upstream>_<name>` for each of
//! them, so both stay callable. Resources keep their URIs; when two upstreams list the same
//! URI the first one listed in the configuration serves it.

use std::collections::HashMap;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

use crate::upstream::spec::ToolFilter;

/// One upstream's listings, in configuration order.
#[derive(Debug, Default)]
pub struct Listing<'a> {
    /// The upstream's name.
    pub upstream: &'a str,
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
    tool_routes: HashMap<String, Route>,
    prompt_routes: HashMap<String, Route>,
    resource_owners: HashMap<String, usize>,
    template_owners: Vec<usize>,
}

impl Catalog {
    /// Merges the listings of every upstream.
    pub fn merge(listings: &[Listing<'_>]) -> Self {
        let mut catalog = Catalog::default();
        let tools = exposed_names(listings, |l| {
            l.tools.iter().filter(|t| l.filter.is_none_or(|f| f.allows(&t.name))).map(|t| t.name.to_string()).collect()
        });
        for (upstream, listing) in listings.iter().enumerate() {
            for tool in listing.tools {
                let original = tool.name.to_string();
                if let Some(exposed) = tools.get(&(upstream, original.clone())) {
                    catalog.tool_routes.insert(exposed.clone(), Route { upstream, name: original });
                    let mut tool = tool.clone();
                    tool.name = exposed.clone().into();
                    catalog.tools.push(tool);
                }
            }
        }
        let prompts = exposed_names(listings, |l| l.prompts.iter().map(|p| p.name.clone()).collect());
        for (upstream, listing) in listings.iter().enumerate() {
            for prompt in listing.prompts {
                if let Some(exposed) = prompts.get(&(upstream, prompt.name.clone())) {
                    catalog.prompt_routes.insert(exposed.clone(), Route { upstream, name: prompt.name.clone() });
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
        catalog
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
        owners
    }

    /// The upstream owning the resource template with this URI template.
    pub fn template_owner(&self, uri_template: &str) -> Option<usize> {
        self.templates.iter().position(|t| t.uri_template == uri_template).map(|i| self.template_owners[i])
    }
}

/// Exposed names, keyed by (upstream index, its own name).
fn exposed_names(
    listings: &[Listing<'_>],
    names: impl Fn(&Listing<'_>) -> Vec<String>,
) -> HashMap<(usize, String), String> {
    let mut wanted: Vec<(usize, String, String)> = Vec::new();
    for (upstream, listing) in listings.iter().enumerate() {
        for name in names(listing) {
            let exposed = format!("{}{name}", listing.prefix.unwrap_or(""));
            wanted.push((upstream, name, exposed));
        }
    }
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (_, _, exposed) in &wanted {
        *uses.entry(exposed.as_str()).or_default() += 1;
    }
    let colliding: std::collections::HashSet<String> =
        uses.into_iter().filter(|(_, n)| *n > 1).map(|(e, _)| e.to_owned()).collect();
    wanted
        .into_iter()
        .map(|(upstream, name, exposed)| {
            let exposed = if colliding.contains(&exposed) {
                format!("{}_{exposed}", listings[upstream].upstream)
            } else {
                exposed
            };
            ((upstream, name), exposed)
        })
        .collect()
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
    use std::sync::Arc;

    use super::*;

    fn tool(name: &str) -> Tool {
        Tool::new(name.to_owned(), "d", Arc::new(serde_json::Map::new()))
    }

    #[test]
    fn unique_names_pass_through_and_collisions_get_the_upstream_prefix() {
        let a = [tool("echo"), tool("read")];
        let b = [tool("echo"), tool("write")];
        let catalog = Catalog::merge(&[
            Listing { upstream: "a", tools: &a, ..Listing::default() },
            Listing { upstream: "b", tools: &b, ..Listing::default() },
        ]);
        let mut names: Vec<&str> = catalog.tools.iter().map(|t| t.name.as_ref()).collect();
        names.sort_unstable();
        assert_eq!(names, ["a_echo", "b_echo", "read", "write"]);
        assert_eq!(catalog.tool("a_echo"), Some(&Route { upstream: 0, name: "echo".into() }));
        assert_eq!(catalog.tool("b_echo"), Some(&Route { upstream: 1, name: "echo".into() }));
        assert_eq!(catalog.tool("write"), Some(&Route { upstream: 1, name: "write".into() }));
        assert_eq!(catalog.tool("echo"), None);
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
