//! Prometheus metrics, served as text on `/metrics`.
//!
//! Counters and histograms are updated as things happen; live figures (open sessions,
//! upstream connections) are read from the registry and the upstreams at scrape time.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use mcpgw_core::audit::{CallObserver, CallRecord};
use mcpgw_core::upstream::set::UpstreamStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as PromRegistry;

mod tools;

use tools::ToolSeries;

/// The live figures a scrape reads, from whatever holds the sessions (the session
/// registry, which reports its events here; a trait, so this module needs nothing of it).
pub(crate) trait LiveFigures: Send + Sync {
    /// Sessions open now: (legacy, streamable).
    fn counts(&self) -> (usize, usize);
    /// Open sessions whose MCP server is parked now.
    fn parked(&self) -> usize;
    /// Stateless calls parked now, waiting for their clients' input.
    fn waiting_for_input(&self) -> usize;
    /// Listen streams open now, and those ended so far for not reading.
    fn listeners(&self) -> (usize, u64);
    /// The current upstreams' figures.
    fn upstream_stats(&self) -> Vec<UpstreamStats>;
    /// In a cluster, whether the session store answered its last check; `None`: no cluster.
    fn store_up(&self) -> Option<bool> {
        None
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    transport: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolCallLabels {
    upstream: String,
    tool: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

/// Every metric the gateway exports.
pub(crate) struct Metrics {
    tool_calls: ToolSeries,
    rate_limited: Family<LimitLabel, Counter>,
    registry: PromRegistry,
    sessions_created: Family<TransportLabel, Counter>,
    sessions_ended: Family<TransportLabel, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabel, Histogram>,
    messages: Family<MessageLabels, Counter>,
    takeovers: Family<ReasonLabel, Counter>,
    sessions_lost: Counter,
    store_errors: Family<OperationLabel, Counter>,
    bytes_in: Counter,
    bytes_out: Counter,
    live: Arc<Live>,
}

/// Figures read at scrape time from the session registry and the current upstreams.
#[derive(Default)]
struct Live {
    sessions: OnceLock<Weak<dyn LiveFigures>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Metrics {
    pub(crate) fn new() -> Arc<Self> {
        let mut registry = PromRegistry::with_prefix("mcpgw");
        let sessions_created = Family::<TransportLabel, Counter>::default();
        registry.register("sessions_created", "Sessions created, by transport", sessions_created.clone());
        let sessions_ended = Family::<TransportLabel, Counter>::default();
        registry.register("sessions_ended", "Sessions ended, by transport", sessions_ended.clone());
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            http_requests.clone(),
        );
        let http_duration = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            // 50 µs to ~1.6 s: in-process tools answer in tens of µs, upstream calls in ms.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head (for an event stream: until it opens), by route",
            http_duration.clone(),
        );
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages",
            "JSON-RPC messages received from clients, by transport and method",
            messages.clone(),
        );
        let takeovers = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "session_takeovers",
            "Cluster: sessions taken over from another instance (moved) or from an earlier run of this one (restarted)",
            takeovers.clone(),
        );
        let sessions_lost = Counter::default();
        registry.register(
            "sessions_lost",
            "Cluster: sessions this instance let go because another instance took them over",
            sessions_lost.clone(),
        );
        let store_errors = Family::<OperationLabel, Counter>::default();
        registry.register(
            "store_errors",
            "Cluster: operations on the session store that failed, by operation",
            store_errors.clone(),
        );
        let bytes_in = Counter::default();
        registry.register("received_bytes", "Bytes read from client connections", bytes_in.clone());
        let bytes_out = Counter::default();
        registry.register("sent_bytes", "Bytes written to client connections", bytes_out.clone());
        let tool_calls = Family::<ToolCallLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls ended, by upstream, tool (the upstream's name for it) and outcome (ok, tool_error, input_required, error, cancelled, timeout)",
            tool_calls.clone(),
        );
        let tool_duration = Family::<UpstreamLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 20))
        });
        registry.register(
            "tool_call_duration_seconds",
            "Time from a tool call's arrival at the proxy to its outcome, by upstream",
            tool_duration.clone(),
        );
        let rate_limited = Family::<LimitLabel, Counter>::default();
        registry.register(
            "rate_limited",
            "Tool calls refused by a rate limit, by limit (global, per-identity, per-tool)",
            rate_limited.clone(),
        );
        let live = Arc::new(Live::default());
        registry.register_collector(Box::new(live.clone()));
        Arc::new(Self {
            rate_limited,
            tool_calls: ToolSeries::new(tool_calls, tool_duration),
            registry,
            sessions_created,
            sessions_ended,
            http_requests,
            http_duration,
            messages,
            takeovers,
            sessions_lost,
            store_errors,
            bytes_in,
            bytes_out,
            live,
        })
    }

    /// Reads live figures from `source` from now on (held weakly: it reports here).
    pub(crate) fn watch(&self, source: Weak<dyn LiveFigures>) {
        let _ = self.live.sessions.set(source);
    }

    pub(crate) fn session_created(&self, transport: &'static str) {
        self.sessions_created.get_or_create(&TransportLabel { transport }).inc();
    }

    pub(crate) fn session_ended(&self, transport: &'static str) {
        self.sessions_ended.get_or_create(&TransportLabel { transport }).inc();
    }

    pub(crate) fn http_request(&self, route: &'static str, method: &http::Method, status: u16, elapsed: Duration) {
        // Only the methods MCP uses get their own label: any other is "other", so a client
        // cannot grow the label set.
        let method = match *method {
            http::Method::GET => "GET",
            http::Method::POST => "POST",
            http::Method::DELETE => "DELETE",
            http::Method::OPTIONS => "OPTIONS",
            _ => "other",
        };
        self.http_requests.get_or_create(&HttpLabels { route, method, status }).inc();
        self.http_duration.get_or_create(&RouteLabel { route }).observe(elapsed.as_secs_f64());
    }

    pub(crate) fn message(&self, transport: &'static str, method: &'static str) {
        self.messages.get_or_create(&MessageLabels { transport, method }).inc();
    }

    pub(crate) fn rate_limited(&self, limit: &'static str) {
        self.rate_limited.get_or_create(&LimitLabel { limit }).inc();
    }

    pub(crate) fn takeover(&self, reason: &'static str) {
        self.takeovers.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn session_lost(&self) {
        self.sessions_lost.inc();
    }

    pub(crate) fn store_error(&self, operation: &'static str) {
        self.store_errors.get_or_create(&OperationLabel { operation }).inc();
    }

    pub(crate) fn bytes(&self, read: u64, written: u64) {
        self.bytes_in.inc_by(read);
        self.bytes_out.inc_by(written);
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl CallObserver for Metrics {
    fn tool_call(&self, record: &CallRecord<'_>) {
        self.tool_calls.record(record.upstream, record.tool, record.outcome, record.duration);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
    kind: &'static str,
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(registry) = self.sessions.get().and_then(Weak::upgrade) else { return Ok(()) };
        let (legacy, streamable) = registry.counts();
        let gauge = ConstGauge::new(0i64);
        let mut family =
            encoder.encode_descriptor("sessions_open", "Sessions open now, by transport", None, gauge.metric_type())?;
        for (transport, n) in [("legacy", legacy), ("streamable", streamable)] {
            let value = ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
            value.encode(family.encode_family(&TransportLabel { transport })?)?;
        }
        let parked = ConstGauge::new(i64::try_from(registry.parked()).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "sessions_parked",
            "Open sessions whose MCP server is parked (quiet; restarted on their next message)",
            None,
            parked.metric_type(),
        )?;
        parked.encode(metric)?;
        let waiting = ConstGauge::new(i64::try_from(registry.waiting_for_input()).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "stateless_calls_waiting_for_input",
            "Stateless calls whose upstream asked the client something, parked until the client's retry",
            None,
            waiting.metric_type(),
        )?;
        waiting.encode(metric)?;
        let (open, slow) = registry.listeners();
        let listeners = ConstGauge::new(i64::try_from(open).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "listen_streams_open",
            "Open subscriptions/listen streams of stateless clients",
            None,
            listeners.metric_type(),
        )?;
        listeners.encode(metric)?;
        let slow = ConstCounter::new(slow);
        let metric = encoder.encode_descriptor(
            "listen_streams_ended_slow",
            "Listen streams ended because their client did not read them (their queue was full when a notification came)",
            None,
            slow.metric_type(),
        )?;
        slow.encode(metric)?;
        if let Some(up) = registry.store_up() {
            let value = ConstGauge::new(i64::from(up));
            let metric = encoder.encode_descriptor(
                "store_up",
                "Cluster: 1 when the session store answered its last check (every second), else 0",
                None,
                value.metric_type(),
            )?;
            value.encode(metric)?;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let tasks = ConstGauge::new(i64::try_from(runtime.metrics().num_alive_tasks()).unwrap_or(i64::MAX));
            let metric =
                encoder.encode_descriptor("tasks_alive", "Tasks alive in the runtime", None, tasks.metric_type())?;
            tasks.encode(metric)?;
        }
        let stats = registry.upstream_stats();
        let mut family = encoder.encode_descriptor(
            "upstream_connections",
            "Live connections to each upstream (for stdio: child processes)",
            None,
            gauge.metric_type(),
        )?;
        for s in &stats {
            let value = ConstGauge::new(i64::try_from(s.live).unwrap_or(i64::MAX));
            value.encode(family.encode_family(&UpstreamLabels { upstream: s.name.clone(), kind: s.kind })?)?;
        }
        let counter = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "upstream_restarts",
            "Upstream connections that ended on their own and were restarted",
            None,
            counter.metric_type(),
        )?;
        for s in &stats {
            ConstCounter::new(s.restarts)
                .encode(family.encode_family(&UpstreamLabels { upstream: s.name.clone(), kind: s.kind })?)?;
        }
        let mut family = encoder.encode_descriptor(
            "upstream_list_failures",
            "List requests (tools/list, prompts/list, resources/list, resources/templates/list) to each upstream that failed or passed their deadline; the upstream's list is left out meanwhile",
            None,
            counter.metric_type(),
        )?;
        for s in &stats {
            ConstCounter::new(s.list_failures)
                .encode(family.encode_family(&UpstreamLabels { upstream: s.name.clone(), kind: s.kind })?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mcpgw_core::audit::Outcome;

    use super::tools::MAX_TOOL_LABELS;
    use super::*;

    fn call(metrics: &Metrics, upstream: Option<&str>, tool: &str, outcome: Outcome) {
        let duration = Duration::from_millis(2);
        let (identity, session, called, arguments) = ("anonymous", "s1", None, None);
        metrics.tool_call(&CallRecord { identity, session, upstream, tool, called, outcome, duration, arguments });
    }

    #[test]
    fn tool_labels_are_bounded() {
        let metrics = Metrics::new();
        for i in 0..MAX_TOOL_LABELS + 5 {
            call(&metrics, Some("files"), &format!("tool{i}"), Outcome::Ok);
        }
        call(&metrics, Some("files"), "tool0", Outcome::Error(-32602));
        call(&metrics, None, "made-up", Outcome::Error(-32602));
        let text = metrics.render();
        assert!(text.contains(r#"mcpgw_tool_calls_total{upstream="files",tool="_other",outcome="ok"} 5"#), "{text}");
        assert!(text.contains(r#"mcpgw_tool_calls_total{upstream="files",tool="tool0",outcome="error"} 1"#));
        assert!(text.contains(r#"mcpgw_tool_calls_total{upstream="_unknown",tool="_unknown",outcome="error"} 1"#));
        assert!(!text.contains("made-up"), "a name the caller made up is no label");
        let series = text.lines().filter(|l| l.starts_with("mcpgw_tool_calls_total{")).count();
        assert_eq!(series, MAX_TOOL_LABELS + 3);
    }
}
