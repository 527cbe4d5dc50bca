//! Judging a run against the targets: each target becomes a [`Verdict`] saying what was
//! measured, whether it was met and by how much.

use crate::client::Transport;

use super::numbers::{median, pct};
use super::report::{MCPGW_1, Report, Round, Verdict};

/// The CPU-efficiency and wall-clock verdicts of one set of alternating rounds at `n` sessions;
/// `which` ends the target's wording (the configuration).
fn round_verdicts(rounds: &[Round], n: usize, which: &str) -> [Verdict; 2] {
    let cpu_ratios: Vec<f64> = rounds
        .iter()
        .filter_map(|r| Some(r.mcpgw.req_per_server_cpu_s? / r.rmcp_stateless.req_per_server_cpu_s?))
        .collect();
    let rps_ratios: Vec<f64> = rounds.iter().map(|r| r.mcpgw.rps / r.rmcp_stateless.rps).collect();
    let (cpu, rps) = (median(cpu_ratios.clone()), median(rps_ratios.clone()));
    let gw_us = median(rounds.iter().filter_map(|r| r.mcpgw.server_us_per_req).collect());
    let rmcp_us = median(rounds.iter().filter_map(|r| r.rmcp_stateless.server_us_per_req).collect());
    [
        Verdict {
            target: format!(
                "Streamable HTTP JSON, {n} sessions: ≥ 1.5× the requests per server-CPU-second of rmcp stateless JSON{which}"
            ),
            measured: format!(
                "{cpu:.2}× ({gw_us:.1} vs {rmcp_us:.1} CPU µs/req; median of {} alternating rounds: {})",
                cpu_ratios.len(),
                cpu_ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ")
            ),
            met: cpu >= 1.5,
            margin: format!("{} against 1.5×", pct(cpu / 1.5 - 1.0)),
        },
        Verdict {
            target: format!(
                "Streamable HTTP JSON, {n} sessions: no lower wall-clock throughput than rmcp stateless JSON{which}"
            ),
            measured: format!(
                "{rps:.2}× ({:.0} vs {:.0} req/s, medians; rounds: {})",
                median(rounds.iter().map(|r| r.mcpgw.rps).collect()),
                median(rounds.iter().map(|r| r.rmcp_stateless.rps).collect()),
                rps_ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ")
            ),
            met: rps >= 1.0,
            margin: format!("{} against 1.0×", pct(rps - 1.0)),
        },
    ]
}

/// p99 < 2 ms at 64 sessions for `server`: the median of its matrix run and its rounds' runs.
fn p99_verdict(report: &Report, server: &str, rounds: &[Round], target: &str) -> Option<Verdict> {
    let matrix = report.find(server, Transport::StreamableJson, 64)?;
    // Every JSON run of `server` at 64 sessions: the matrix's and the rounds'.
    let mut runs = vec![matrix.latency.p99_ms];
    if report.round_sessions_are(64) {
        runs.extend(rounds.iter().map(|round| round.mcpgw.latency.p99_ms));
    }
    let p99 = median(runs.clone());
    let others: Vec<String> = [Transport::StreamableSse, Transport::Legacy]
        .iter()
        .filter_map(|&t| report.find(server, t, 64).map(|r| format!("{}: {:.2} ms", t.label(), r.latency.p99_ms)))
        .collect();
    Some(Verdict {
        target: target.to_owned(),
        measured: format!(
            "{p99:.2} ms, median of {} runs ({}); {}",
            runs.len(),
            runs.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(", "),
            others.join("; ")
        ),
        met: p99 < 2.0,
        margin: if p99 < 2.0 {
            format!("{:.2} ms to spare", 2.0 - p99)
        } else {
            format!("{:.2} ms over ({})", p99 - 2.0, pct(p99 / 2.0 - 1.0))
        },
    })
}

/// The targets, judged on mcpgw's default configuration; after the round and p99 targets, the
/// same judged on one worker thread.
pub(crate) fn verdicts(report: &Report) -> Vec<Verdict> {
    let mut out = Vec::new();
    let n = report.plan.round_sessions;

    // 1. CPU efficiency and wall-clock throughput against rmcp stateless JSON.
    let [cpu, rps] = round_verdicts(&report.rounds, n, "");
    let [cpu1, rps1] = round_verdicts(&report.rounds_one_thread, n, ", with worker_threads = 1 on both servers");
    out.extend([cpu, cpu1, rps, rps1]);

    // 2. p99 at 64 sessions.
    out.extend(p99_verdict(
        report,
        "mcpgw",
        &report.rounds,
        "p99 < 2 ms at 64 sessions (mcpgw, Streamable HTTP JSON, built-in echo)",
    ));
    out.extend(p99_verdict(
        report,
        MCPGW_1,
        &report.rounds_one_thread,
        "p99 < 2 ms at 64 sessions, mcpgw with worker_threads = 1 (Streamable HTTP JSON, built-in echo)",
    ));

    // 3. memory per idle session, and 10,000 held without error.
    for row in report.memory.iter().filter(|m| m.server == "mcpgw") {
        if let Some(last) = row.points.last() {
            let per = last.bytes_per_session;
            out.push(Verdict {
                target: format!("≤ 16 KiB RSS per idle session, {}", row.transport),
                measured: format!(
                    "{:.1} KiB at {} sessions ({:.1} KiB marginal)",
                    per / 1024.0,
                    last.opened,
                    row.marginal_bytes_per_session.unwrap_or(f64::NAN) / 1024.0
                ),
                met: per <= 16384.0,
                margin: format!("{} against 16 KiB", pct(per / 16384.0 - 1.0)),
            });
            let clean = row.open_errors == 0 && row.failed_checks == 0 && last.opened == last.sessions;
            out.push(Verdict {
                target: format!("{} idle sessions held with no error, {}", last.sessions, row.transport),
                measured: format!(
                    "{} opened, {} open errors, {} failed their call afterwards, /healthz {}",
                    last.opened,
                    row.open_errors,
                    row.failed_checks,
                    last.live.map(|l| l.to_string()).unwrap_or_else(|| "-".into())
                ),
                met: clean,
                margin: if clean {
                    "no error".into()
                } else {
                    format!("{} errors", row.open_errors + row.failed_checks)
                },
            });
        }
    }

    // 4. session set-up rate.
    for row in report.setup.iter().filter(|s| s.server == "mcpgw") {
        let rate = row.result.per_second;
        out.push(Verdict {
            target: format!("≥ 5,000 sessions set up per second, {}", row.transport),
            measured: format!("{rate:.0}/s ({} workers, {} errors)", row.result.workers, row.result.errors),
            met: rate >= 5000.0 && row.result.errors == 0,
            margin: format!("{} against 5,000/s", pct(rate / 5000.0 - 1.0)),
        });
    }

    // 5. a shared stdio upstream against a direct stdio round trip.
    if let (Some(direct), Some(via)) = (report.stdio("direct", 1), report.stdio("through mcpgw", 1)) {
        let added = via.latency.p50_ms / direct.latency.p50_ms - 1.0;
        out.push(Verdict {
            target: "a shared stdio upstream adds ≤ 10% over a direct stdio round trip (p50, 1 session)".into(),
            measured: format!(
                "{:.3} ms through mcpgw vs {:.3} ms direct: {} (+{:.3} ms)",
                via.latency.p50_ms,
                direct.latency.p50_ms,
                pct(added),
                via.latency.p50_ms - direct.latency.p50_ms
            ),
            met: added <= 0.10,
            margin: format!("{} against +10%", pct(added - 0.10).replace('%', " points")),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::fake;

    #[test]
    fn one_thread_targets_follow_the_default_ones() {
        let v = verdicts(&fake::one_thread_report());
        let one_thread = |i: usize| v[i].target.contains("worker_threads = 1");
        assert_eq!(v.len(), 6);
        assert_eq!((0..6).map(one_thread).collect::<Vec<_>>(), [false, true, false, true, false, true]);
        // CPU: 50/35 = 1.43× missed, 40/25 = 1.6× met; wall clock: 0.97× missed, 1.2× met.
        assert_eq!(v.iter().map(|v| v.met).collect::<Vec<_>>(), [false, true, false, true, false, true]);
        assert!(v[1].measured.starts_with("1.60×"), "{}", v[1].measured);
        assert_eq!(v[1].margin, "+7% against 1.5×");
        // p99 medians of the matrix run and the round: (4 + 3) / 2 and (1.5 + 1.9) / 2.
        assert!(v[4].measured.starts_with("3.50 ms, median of 2 runs"), "{}", v[4].measured);
        assert!(v[5].measured.starts_with("1.70 ms, median of 2 runs"), "{}", v[5].measured);
        assert_eq!(v[5].margin, "0.30 ms to spare");
    }
}
