//! `[cluster]`: several instances behind a load balancer, sharing their sessions through a
//! Redis-protocol store (or, with `store = "none"`, only tagging their session ids for the
//! load balancer). Absent, mcpgw is a single node and needs no store.

use mcpgw_transport::NodeTag;
use serde::Deserialize;

/// `store = "none"`: affinity only, no store. Spelled out rather than implied by a missing
/// `store`, so that a forgotten line cannot silently turn takeovers off.
const NO_STORE: &str = "none";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    node: Option<String>,
    store: Option<String>,
    key_prefix: Option<String>,
}

/// A validated `[cluster]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterConfig {
    /// This instance's tag: the first 4 hex digits of every session id it mints, which the
    /// load balancer routes by.
    pub(crate) node: NodeTag,
    /// Whether `node` was derived from the host name rather than configured.
    pub(crate) node_derived: bool,
    /// The store's URL: `redis://`, or `unix://` for a local socket. `None` (`store = "none"`):
    /// the instances only tag their session ids for the load balancer's affinity and share
    /// nothing, so a session ends with its instance.
    pub(crate) store: Option<String>,
    /// What every key mcpgw writes in the store starts with.
    pub(crate) key_prefix: String,
}

impl RawCluster {
    pub(super) fn build(self) -> Result<ClusterConfig, String> {
        let store = self.store.ok_or(
            "cluster.store is required (\"redis://host:6379\", \"unix:///path\", or \"none\" to share nothing)",
        )?;
        let store = (store != NO_STORE).then_some(store);
        if let Some(url) = &store
            && let Err(e) = redis::IntoConnectionInfo::into_connection_info(url.as_str())
        {
            return Err(format!("cluster.store {url:?} is not a Redis URL (nor \"none\"): {e}"));
        }
        let key_prefix = self.key_prefix.unwrap_or_else(|| "mcpgw".to_owned());
        if key_prefix.is_empty() || !key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("cluster.key_prefix must be visible ASCII, not {key_prefix:?}"));
        }
        let (node, node_derived) = match self.node {
            Some(text) => (parse_node(&text)?, false),
            None => (derived_node()?, true),
        };
        Ok(ClusterConfig { node, node_derived, store, key_prefix })
    }
}

/// A node tag as configured (`cluster.node`, `--node`).
pub(crate) fn parse_node(text: &str) -> Result<NodeTag, String> {
    text.parse().map_err(|_| format!("cluster.node must be 4 hex digits (like \"0001\"), not {text:?}"))
}

/// A tag from the host name, for instances that each run on their own host: stable across
/// restarts, so a restarted instance gets its sessions' traffic back. Two hosts may hash
/// alike; the load balancer's server names must match anyway, so naming nodes is better.
fn derived_node() -> Result<NodeTag, String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let digest = mcpgw_transport::auth::digest_hex(host.trim());
    NodeTag::from_prefix(&digest).map_err(|e| format!("cluster.node from the host name: {e}"))
}
