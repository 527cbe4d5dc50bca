//! The tool-call series (`mcpgw_tool_calls_total`, `mcpgw_tool_call_duration_seconds`),
//! counted for every call that ends.
//!
//! A family's own lookup hashes and owns the labels on every call, and the cap on distinct
//! tools needs a set of its own: four allocations and two locks per call. The handles of a
//! pair's series are kept instead, found under a shared read lock with borrowed names; a
//! write lock is taken only the first time a pair is seen.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use mcpgw_core::audit::Outcome;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::{ToolCallLabels, UpstreamLabel};

/// Distinct (upstream, tool) pairs labelled at most; later ones are counted under the
/// tool [`OTHER_TOOL`], so an upstream that lists ever new tools cannot grow the series
/// without bound.
pub(super) const MAX_TOOL_LABELS: usize = 1000;
/// The tool label of calls past [`MAX_TOOL_LABELS`].
const OTHER_TOOL: &str = "_other";
/// The upstream and tool labels of a call that named no tool the caller has.
const UNKNOWN: &str = "_unknown";

/// The series of tool calls, and the handles of each pair's.
pub(super) struct ToolSeries {
    calls: Family<ToolCallLabels, Counter>,
    duration: Family<UpstreamLabel, Histogram>,
    known: RwLock<Known>,
}

#[derive(Default)]
struct Known {
    /// By upstream label, then tool label.
    pairs: HashMap<String, HashMap<String, Arc<Pair>>>,
    /// Pairs labelled with a tool of their own (not [`UNKNOWN`], not [`OTHER_TOOL`]).
    labelled: usize,
}

/// One (upstream, tool) label pair's series.
struct Pair {
    upstream: String,
    tool: String,
    duration: Histogram,
    /// A counter per outcome, made when that outcome first happens (an outcome that never
    /// happens has no series).
    calls: [OnceLock<Counter>; 6],
}

fn index(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Ok => 0,
        Outcome::ToolError => 1,
        Outcome::InputRequired => 2,
        Outcome::Error(_) => 3,
        Outcome::Cancelled => 4,
        Outcome::Timeout => 5,
    }
}

impl ToolSeries {
    pub(super) fn new(calls: Family<ToolCallLabels, Counter>, duration: Family<UpstreamLabel, Histogram>) -> Self {
        Self { calls, duration, known: RwLock::new(Known::default()) }
    }

    /// Counts a call of `tool` of `upstream` (`None`: the call named no tool the caller has).
    pub(super) fn record(&self, upstream: Option<&str>, tool: &str, outcome: Outcome, took: Duration) {
        let pair = match upstream {
            Some(upstream) => self.pair(upstream, tool),
            None => self.pair(UNKNOWN, UNKNOWN),
        };
        pair.duration.observe(took.as_secs_f64());
        let labels =
            || ToolCallLabels { upstream: pair.upstream.clone(), tool: pair.tool.clone(), outcome: outcome.as_str() };
        pair.calls[index(outcome)].get_or_init(|| self.calls.get_or_create(&labels()).clone()).inc();
    }

    /// The series of a pair, made on its first call.
    fn pair(&self, upstream: &str, tool: &str) -> Arc<Pair> {
        {
            let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
            let tools = known.pairs.get(upstream);
            if let Some(pair) = tools.and_then(|t| t.get(tool)) {
                return pair.clone();
            }
            if let Some(pair) = tools.and_then(|t| t.get(OTHER_TOOL)).filter(|_| known.labelled >= MAX_TOOL_LABELS) {
                return pair.clone();
            }
        }
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        let Known { pairs, labelled } = &mut *known;
        let own = upstream == UNKNOWN || pairs.get(upstream).is_some_and(|t| t.contains_key(tool));
        let label = if own || *labelled < MAX_TOOL_LABELS { tool } else { OTHER_TOOL };
        let tools = pairs.entry(upstream.to_owned()).or_default();
        if let Some(pair) = tools.get(label) {
            return pair.clone();
        }
        if label != OTHER_TOOL && upstream != UNKNOWN {
            *labelled += 1;
        }
        let duration = self.duration.get_or_create(&UpstreamLabel { upstream: upstream.to_owned() }).clone();
        let pair = Arc::new(Pair {
            upstream: upstream.to_owned(),
            tool: label.to_owned(),
            duration,
            calls: Default::default(),
        });
        tools.insert(label.to_owned(), pair.clone());
        pair
    }
}
