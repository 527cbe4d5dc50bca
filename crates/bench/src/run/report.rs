//! What one `make bench` run found: the plan it followed and every measured row, as written to
//! `results.json` and read by the judging (`targets`) and the writing (`markdown`).

use std::time::Duration;

use serde::Serialize;

use crate::client::Transport;
use crate::load::{LoadResult, SetupResult};
use crate::machine::{Machine, Versions};
use crate::peers::{PeerDetail, PeerInfo};
use crate::rate::RateResult;

use super::auth::AuthRound;
use super::cluster::ClusterRows;

/// The servers on one tokio worker thread (`[server] worker_threads = 1`; `serve-rmcp --workers 1`).
pub(crate) const MCPGW_1: &str = "mcpgw, 1 thread";
pub(crate) const RMCP_STATELESS_1: &str = "rmcp stateless JSON, 1 thread";

/// The cluster's open-loop rate: about half what the cluster answers in the closed loop at
/// 16 sessions on the slowest transport here, so that neither it nor the three without the
/// store is near its limit.
const CLUSTER_RATE: f64 = 3_000.0;

/// Sizes and durations of one run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Plan {
    pub(crate) sizes: Vec<usize>,
    pub(crate) warmup_s: f64,
    pub(crate) duration_s: f64,
    pub(crate) rounds: usize,
    pub(crate) round_sessions: usize,
    pub(crate) setup_workers: usize,
    pub(crate) idle: Vec<usize>,
    pub(crate) overhead_sizes: Vec<usize>,
    pub(crate) idle_workers: usize,
    /// The open loop's rates (requests per second, all sessions together) and sessions.
    pub(crate) open_loop_rates: Vec<f64>,
    pub(crate) open_loop_sessions: usize,
    /// The cluster rows' sizes, and how many idle sessions the killed instance holds.
    pub(crate) cluster_sizes: Vec<usize>,
    pub(crate) takeover_sessions: usize,
    /// The cluster's open loop: requests per second, all sessions together, and sessions.
    pub(crate) cluster_rate: f64,
    pub(crate) cluster_rate_sessions: usize,
}

impl Plan {
    pub(crate) fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                sizes: vec![1, 64],
                warmup_s: 0.3,
                duration_s: 1.0,
                rounds: 1,
                round_sessions: 64,
                setup_workers: 64,
                idle: vec![200, 1_000],
                overhead_sizes: vec![1],
                idle_workers: 64,
                open_loop_rates: vec![1_000.0, 5_000.0, 10_000.0],
                open_loop_sessions: 64,
                cluster_sizes: vec![16, 64],
                takeover_sessions: 50,
                cluster_rate: CLUSTER_RATE,
                cluster_rate_sessions: 16,
            }
        } else {
            Plan {
                sizes: vec![1, 16, 64, 256],
                warmup_s: 1.0,
                duration_s: 5.0,
                rounds: 3,
                round_sessions: 64,
                setup_workers: 64,
                idle: vec![1_000, 10_000],
                overhead_sizes: vec![1, 16],
                idle_workers: 64,
                open_loop_rates: vec![1_000.0, 5_000.0, 10_000.0],
                open_loop_sessions: 64,
                cluster_sizes: vec![16, 64],
                takeover_sessions: 200,
                cluster_rate: CLUSTER_RATE,
                cluster_rate_sessions: 16,
            }
        }
    }

    pub(crate) fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup_s)
    }

    pub(crate) fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_s)
    }
}

#[derive(Serialize)]
pub(crate) struct Row {
    pub(crate) server: String,
    pub(crate) transport: String,
    pub(crate) accept: String,
    pub(crate) result: LoadResult,
}

#[derive(Serialize)]
pub(crate) struct Round {
    pub(crate) round: usize,
    pub(crate) mcpgw: LoadResult,
    pub(crate) rmcp_stateless: LoadResult,
}

/// One server at one rate of the open loop.
#[derive(Serialize)]
pub(crate) struct OpenLoopRow {
    pub(crate) server: String,
    pub(crate) transport: String,
    pub(crate) result: RateResult,
}

#[derive(Serialize)]
pub(crate) struct SetupRow {
    pub(crate) server: String,
    pub(crate) transport: String,
    pub(crate) result: SetupResult,
    /// Sessions `/healthz` still listed 15 s after the run (mcpgw only).
    pub(crate) left_after: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct MemPoint {
    pub(crate) sessions: usize,
    pub(crate) opened: usize,
    pub(crate) rss: u64,
    pub(crate) bytes_per_session: f64,
    /// The server's own count (mcpgw `/healthz`).
    pub(crate) live: Option<u64>,
    pub(crate) open_secs: f64,
}

#[derive(Serialize)]
pub(crate) struct MemoryRow {
    pub(crate) server: String,
    pub(crate) transport: String,
    pub(crate) baseline_rss: u64,
    pub(crate) points: Vec<MemPoint>,
    /// Between the last two points.
    pub(crate) marginal_bytes_per_session: Option<f64>,
    pub(crate) open_errors: usize,
    pub(crate) failed_checks: usize,
    pub(crate) first_error: Option<String>,
    /// Seconds until `/healthz` showed no legacy session after the event streams closed.
    pub(crate) released_secs: Option<f64>,
    /// SIGTERM with the sessions live: a clean exit, and how long it took.
    pub(crate) stop_clean: bool,
    pub(crate) stop_secs: f64,
}

#[derive(Serialize)]
pub(crate) struct OverheadRow {
    pub(crate) upstream: String,
    pub(crate) path: String,
    pub(crate) result: LoadResult,
    /// New connections the http upstream accepted per call (warm-up included; the load
    /// generator's own connections to it not counted).
    pub(crate) upstream_connections_per_call: Option<f64>,
    /// A run through a competing gateway (crate::peers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) peer: Option<PeerDetail>,
}

#[derive(Serialize)]
pub(crate) struct Verdict {
    pub(crate) target: String,
    pub(crate) measured: String,
    pub(crate) met: bool,
    pub(crate) margin: String,
}

#[derive(Serialize)]
pub(crate) struct Report {
    pub(crate) generated_utc: String,
    pub(crate) quick: bool,
    pub(crate) command: String,
    pub(crate) elapsed_s: f64,
    pub(crate) machine: Machine,
    pub(crate) versions: Versions,
    pub(crate) plan: Plan,
    pub(crate) throughput: Vec<Row>,
    pub(crate) rounds: Vec<Round>,
    /// The same rounds between [`MCPGW_1`] and [`RMCP_STATELESS_1`].
    pub(crate) rounds_one_thread: Vec<Round>,
    /// Requests at fixed rates, latency from when each was due.
    pub(crate) open_loop: Vec<OpenLoopRow>,
    pub(crate) setup: Vec<SetupRow>,
    pub(crate) memory: Vec<MemoryRow>,
    pub(crate) overhead: Vec<OverheadRow>,
    /// The competing gateways of the stdio overhead rows.
    pub(crate) peers: Vec<PeerInfo>,
    /// mcpgw with JWT auth and a 20-rule policy, without, and with the audit log off.
    pub(crate) auth: Vec<AuthRound>,
    /// Three instances behind HAProxy with Redis against the same three without it, and one.
    pub(crate) cluster: ClusterRows,
    pub(crate) targets: Vec<Verdict>,
    pub(crate) observations: Vec<String>,
}

impl Report {
    pub(crate) fn round_sessions_are(&self, n: usize) -> bool {
        self.plan.round_sessions == n
    }

    /// The round-trip run of `server` over `transport` at `sessions`.
    pub(crate) fn find(&self, server: &str, transport: Transport, sessions: usize) -> Option<&LoadResult> {
        self.throughput
            .iter()
            .find(|r| r.server == server && r.transport == transport.label() && r.result.sessions == sessions)
            .map(|r| &r.result)
    }

    /// The open-loop run of `server` at `rate` requests per second.
    pub(crate) fn open_loop(&self, server: &str, rate: f64) -> Option<&RateResult> {
        self.open_loop.iter().find(|r| r.server == server && r.result.rate == rate).map(|r| &r.result)
    }

    /// A stdio overhead run at `sessions` whose path starts with `path` ("direct", "through mcpgw").
    pub(crate) fn stdio(&self, path: &str, sessions: usize) -> Option<&LoadResult> {
        self.overhead
            .iter()
            .find(|o| o.upstream.starts_with("stdio") && o.path.starts_with(path) && o.result.sessions == sessions)
            .map(|o| &o.result)
    }
}

/// Reports built by hand for the judging and writing tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use crate::machine::{Machine, Versions};

    /// A full run's plan with nothing measured.
    pub(crate) fn report() -> Report {
        let unknown = || "unknown".to_owned();
        Report {
            generated_utc: unknown(),
            quick: false,
            command: unknown(),
            elapsed_s: 0.0,
            machine: Machine {
                nproc: 2,
                cpu_model: unknown(),
                memory_gib: 0.0,
                kernel: unknown(),
                open_files_limit: 0,
                load_average_at_start: unknown(),
            },
            versions: Versions {
                rustc: unknown(),
                mcpgw: unknown(),
                mcpgw_commit: unknown(),
                rmcp: unknown(),
                hyper: unknown(),
                tokio: unknown(),
            },
            plan: Plan::new(false),
            throughput: Vec::new(),
            rounds: Vec::new(),
            rounds_one_thread: Vec::new(),
            open_loop: Vec::new(),
            setup: Vec::new(),
            memory: Vec::new(),
            overhead: Vec::new(),
            peers: Vec::new(),
            auth: Vec::new(),
            cluster: ClusterRows::default(),
            targets: Vec::new(),
            observations: Vec::new(),
        }
    }

    /// 64 sessions at `rps`, with `us` server CPU µs per request and a p99 of `p99` ms.
    pub(crate) fn run(rps: f64, us: f64, p99: f64) -> LoadResult {
        let mut result = LoadResult { sessions: 64, rps, ..LoadResult::default() };
        result.server_us_per_req = Some(us);
        result.req_per_server_cpu_s = Some(1e6 / us);
        result.latency.p99_ms = p99;
        result
    }

    /// A Streamable HTTP JSON round-trip row.
    pub(crate) fn row(server: &str, result: LoadResult) -> Row {
        Row {
            server: server.into(),
            transport: Transport::StreamableJson.label().into(),
            accept: String::new(),
            result,
        }
    }

    /// An open-loop row of `server` at `rate`: p50 and p99 in ms, requests over 10 ms of 50,000.
    pub(crate) fn open(server: &str, rate: f64, p50: f64, p99: f64, over: usize) -> OpenLoopRow {
        let mut result = RateResult { rate, sessions: 64, due: 50_000, answered: 50_000, ..RateResult::default() };
        result.latency.p50_ms = p50;
        result.latency.p99_ms = p99;
        result.latency.p999_ms = p99 * 2.0;
        result.latency.max_ms = if over > 0 { 12.0 } else { p99 * 3.0 };
        result.over_10ms = over;
        result.over_10ms_share = over as f64 / 50_000.0;
        OpenLoopRow { server: server.into(), transport: Transport::StreamableJson.label().into(), result }
    }

    /// The one-thread report with open-loop rows at 5,000 and 10,000 req/s.
    pub(crate) fn open_loop_report() -> Report {
        let mut report = one_thread_report();
        report.open_loop = vec![
            open("mcpgw", 5_000.0, 0.2, 0.8, 0),
            open(MCPGW_1, 5_000.0, 0.15, 0.5, 0),
            open("rmcp stateless JSON", 5_000.0, 0.3, 1.2, 0),
            open("bare hyper", 5_000.0, 0.1, 0.3, 0),
            open("mcpgw", 10_000.0, 0.3, 2.0, 3),
            open(MCPGW_1, 10_000.0, 0.2, 0.9, 0),
            open("bare hyper", 10_000.0, 0.1, 0.4, 0),
        ];
        report
    }

    /// The report of the one-thread test: rounds and matrix rows for both configurations.
    pub(crate) fn one_thread_report() -> Report {
        let mut report = report();
        report.throughput = vec![row("mcpgw", run(30_000.0, 35.0, 4.0)), row(MCPGW_1, run(36_000.0, 25.0, 1.5))];
        report.rounds =
            vec![Round { round: 1, mcpgw: run(30_000.0, 35.0, 3.0), rmcp_stateless: run(31_000.0, 50.0, 4.0) }];
        report.rounds_one_thread =
            vec![Round { round: 1, mcpgw: run(36_000.0, 25.0, 1.9), rmcp_stateless: run(30_000.0, 40.0, 3.0) }];
        report
    }
}
