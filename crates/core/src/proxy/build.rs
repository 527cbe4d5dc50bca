//! A session's catalog: what every upstream lists now, each list under its upstream's
//! deadline, merged into one (a failed list is left out and named), and the union of the
//! upstreams' capabilities that the session advertises.

use std::sync::Arc;

use futures::future::join_all;
use rmcp::model::{PromptsCapability, ResourcesCapability, ServerCapabilities, ToolsCapability};

use super::Member;
use crate::catalog::{Catalog, Listing};
use crate::upstream::link::Listed;
use crate::upstream::set::Upstreams;

/// A session's catalog and what it was built from.
pub(super) struct Built {
    pub(super) catalog: Arc<Catalog>,
    /// Each member's generation when its lists were asked for.
    pub(super) generations: Vec<u64>,
    /// The members whose lists could not be had (failed or past their deadline), and why.
    pub(super) missing: Vec<String>,
}

/// What one member lists, fetched for a catalog.
#[derive(Default)]
struct Lists {
    tools: Vec<rmcp::model::Tool>,
    prompts: Vec<rmcp::model::Prompt>,
    resources: Vec<rmcp::model::Resource>,
    templates: Vec<rmcp::model::ResourceTemplate>,
}

/// Builds a session's catalog from what every member lists now; with `wait`, once those
/// still starting are up (or past their connect timeout).
pub(super) async fn build(members: Vec<Member>, upstreams: Arc<Upstreams>, wait: bool) -> Arc<Built> {
    if wait {
        join_all(members.iter().filter_map(|m| match m {
            Member::Remote { spec, link } => Some(link.ready(spec.connect_timeout)),
            Member::Builtin(_) | Member::Absent => None,
        }))
        .await;
    }
    let generations = members.iter().map(Member::generation).collect();
    let listed = join_all(members.iter().map(list_member)).await;
    let specs = upstreams.specs();
    let listings: Vec<Listing<'_>> = members
        .iter()
        .zip(specs)
        .zip(&listed)
        .map(|((member, spec), (l, _))| Listing {
            upstream: member.spec_name(spec),
            builtin: matches!(member, Member::Builtin(_)),
            prefix: spec.prefix.as_deref(),
            filter: Some(&spec.tools),
            tools: &l.tools,
            prompts: &l.prompts,
            resources: &l.resources,
            templates: &l.templates,
        })
        .collect();
    let catalog = Arc::new(Catalog::merge(&listings));
    let missing = listed.into_iter().flat_map(|(_, failed)| failed).collect();
    Arc::new(Built { catalog, generations, missing })
}

/// What a member lists now, and why what it could not list is missing. Its lists are asked
/// for at once, each under the upstream's list deadline.
async fn list_member(member: &Member) -> (Lists, Vec<String>) {
    match member {
        Member::Absent => (Lists::default(), Vec::new()),
        Member::Builtin(b) => {
            let lists =
                Lists { tools: b.tools(), prompts: b.prompts(), resources: b.resources(), templates: Vec::new() };
            (lists, Vec::new())
        }
        Member::Remote { link, .. } => {
            let Some(caps) = link.capabilities() else { return Default::default() };
            let (tools, prompts, resources, templates) = futures::join!(
                async { if caps.tools.is_some() { Some(link.tools().await) } else { None } },
                async { if caps.prompts.is_some() { Some(link.prompts().await) } else { None } },
                async { if caps.resources.is_some() { Some(link.resources().await) } else { None } },
                async { if caps.resources.is_some() { Some(link.templates().await) } else { None } },
            );
            let mut failed = Vec::new();
            let lists = Lists {
                tools: take(tools, &mut failed),
                prompts: take(prompts, &mut failed),
                resources: take(resources, &mut failed),
                templates: take(templates, &mut failed),
            };
            failed.dedup();
            (lists, failed)
        }
    }
}

/// The items of a list that was asked for; a failure is noted in `failed` and lists nothing.
fn take<T: Clone>(listed: Option<Listed<T>>, failed: &mut Vec<String>) -> Vec<T> {
    match listed {
        Some(Ok(items)) => items.as_ref().clone(),
        Some(Err(e)) => {
            failed.push(e.message.into_owned());
            Vec::new()
        }
        None => Vec::new(),
    }
}

/// The union of the members' capabilities: exactly what the session serves, since rmcp
/// (and a careful client) treat a method whose capability is not advertised as unknown.
/// List changes are always announced: upstreams restart and come back with other lists.
pub(super) fn merged_capabilities(members: &[Member]) -> ServerCapabilities {
    let mut merged = ServerCapabilities::default();
    for caps in members.iter().map(Member::capabilities) {
        if caps.tools.is_some() {
            let mut tools = ToolsCapability::default();
            tools.list_changed = Some(true);
            merged.tools = Some(tools);
        }
        if caps.prompts.is_some() {
            let mut prompts = PromptsCapability::default();
            prompts.list_changed = Some(true);
            merged.prompts = Some(prompts);
        }
        if let Some(resources) = &caps.resources {
            let subscribe = resources.subscribe == Some(true)
                || merged.resources.as_ref().is_some_and(|r| r.subscribe == Some(true));
            let mut r = ResourcesCapability::default();
            r.list_changed = Some(true);
            r.subscribe = subscribe.then_some(true);
            merged.resources = Some(r);
        }
        if caps.logging.is_some() {
            merged.logging = caps.logging.clone();
        }
        if caps.completions.is_some() {
            merged.completions = caps.completions.clone();
        }
    }
    merged
}
