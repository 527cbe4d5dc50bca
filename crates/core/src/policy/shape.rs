//! A catalog as one caller sees it: the items the policy denies them left out, renamed and
//! re-described items under their new names and descriptions, pinned arguments gone from
//! the tools' schemas (their values ride on the route, for the call). The result is an
//! ordinary [`Catalog`], so the proxy routes by it exactly as by the unshaped one.
//!
//! A shaped catalog keeps no hints: "did you mean …" could name what the caller may not
//! see, so a name it does not list is simply unknown.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::{Kind, Matched, Policy};
use crate::catalog::{Catalog, Route, UriGate};

/// What `matched` (the rules for one caller) lets through of `base`; `upstreams` names
/// the upstreams by index.
pub(crate) fn shape(policy: &Arc<Policy>, matched: &Matched, base: &Catalog, upstreams: &Arc<[String]>) -> Catalog {
    let name_of = |i: usize| upstreams.get(i).map_or("", String::as_str);
    let mut out = Catalog::default();
    let mut taken = HashSet::new();
    for tool in &base.tools {
        let Some(route) = base.tool(&tool.name) else { continue };
        let Some(shape) = policy.decide(matched, Kind::Tool, name_of(route.upstream), &route.name) else { continue };
        let mut tool = tool.clone();
        if let Some(name) = shape.rename {
            tool.name = name.into();
        }
        if let Some(description) = shape.description {
            tool.description = Some(description.into());
        }
        if let Some(pins) = &shape.pins {
            let mut schema = tool.input_schema.as_ref().clone();
            if let Some(Value::Object(properties)) = schema.get_mut("properties") {
                properties.retain(|k, _| !pins.contains_key(k));
            }
            if let Some(Value::Array(required)) = schema.get_mut("required") {
                required.retain(|k| k.as_str().is_none_or(|k| !pins.contains_key(k)));
            }
            tool.input_schema = Arc::new(schema);
        }
        if !taken.insert(tool.name.to_string()) {
            tracing::warn!(tool = %tool.name, "a policy rename gives two tools one name; the first listed keeps it");
            continue;
        }
        let route = Route { upstream: route.upstream, name: route.name.clone(), pins: shape.pins };
        out.tool_routes.insert(tool.name.to_string(), route);
        out.tools.push(tool);
    }
    taken.clear();
    for prompt in &base.prompts {
        let Some(route) = base.prompt(&prompt.name) else { continue };
        let Some(shape) = policy.decide(matched, Kind::Prompt, name_of(route.upstream), &route.name) else {
            continue;
        };
        let mut prompt = prompt.clone();
        if let Some(name) = shape.rename {
            prompt.name = name;
        }
        if let Some(description) = shape.description {
            prompt.description = Some(description);
        }
        if !taken.insert(prompt.name.clone()) {
            tracing::warn!(prompt = %prompt.name, "a policy rename gives two prompts one name; the first listed keeps it");
            continue;
        }
        out.prompt_routes
            .insert(prompt.name.clone(), Route { upstream: route.upstream, name: route.name.clone(), pins: None });
        out.prompts.push(prompt);
    }
    let allows = {
        let (policy, matched, upstreams) = (policy.clone(), matched.clone(), upstreams.clone());
        move |owner: usize, uri: &str| {
            let upstream = upstreams.get(owner).map_or("", String::as_str);
            policy.decide(&matched, Kind::Resource, upstream, uri).is_some()
        }
    };
    for resource in &base.resources {
        if let Some(&owner) = base.resource_owners.get(&resource.uri)
            && allows(owner, &resource.uri)
        {
            out.resource_owners.insert(resource.uri.clone(), owner);
            out.resources.push(resource.clone());
        }
    }
    for (template, &owner) in base.templates.iter().zip(&base.template_owners) {
        if allows(owner, &template.uri_template) {
            out.templates.push(template.clone());
            out.template_owners.push(owner);
        }
    }
    // A URI no resource lists may still be read through a template's upstream: the gate
    // asks the policy about the URI itself.
    out.uri_gate = Some(UriGate::new(allows));
    out
}
