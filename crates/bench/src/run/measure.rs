//! The measurements on the built-in `echo`: closed-loop round trips of every server and
//! transport, the alternating rounds of mcpgw against rmcp stateless JSON, the open loop at
//! fixed rates, and the session set-up rate. The servers are started once for all of them.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::client::Profile;
use crate::launch::{start_mcpgw, start_self, target_of, wait_sessions};
use crate::load;
use crate::procs::Proc;

use super::bench::{Bench, Profiles};
use super::report::{MCPGW_1, OpenLoopRow, RMCP_STATELESS_1, Round, Row, SetupRow};

/// The servers of the round-trip runs, each its own process.
pub(crate) struct Servers {
    pub(crate) gw: Proc,
    pub(crate) gw1: Proc,
    pub(crate) stateless: Proc,
    pub(crate) stateless1: Proc,
    pub(crate) session: Proc,
    pub(crate) bare: Proc,
}

impl Servers {
    /// mcpgw on `builtin` and on `one_thread` (the same with one worker), and the baselines.
    pub(crate) async fn start(mcpgw: &Path, builtin: &Path, one_thread: &Path) -> Result<Servers> {
        Ok(Servers {
            gw: start_mcpgw("mcpgw", mcpgw, builtin).await?,
            gw1: start_mcpgw(MCPGW_1, mcpgw, one_thread).await?,
            stateless: start_self("rmcp stateless JSON", &["serve-rmcp", "--stateless"])?,
            stateless1: start_self(RMCP_STATELESS_1, &["serve-rmcp", "--stateless", "--workers", "1"])?,
            session: start_self("rmcp session mode", &["serve-rmcp"])?,
            bare: start_self("bare hyper", &["serve-hyper"])?,
        })
    }

    /// SIGTERM to each; an mcpgw that does not exit 0 is noted.
    pub(crate) fn stop(mut self, bench: &mut Bench) {
        let Servers { gw, gw1, stateless, stateless1, session, bare } = &mut self;
        for proc in [gw, gw1, stateless, stateless1, session, bare] {
            if !proc.stop() && proc.name.starts_with("mcpgw") {
                bench.note(format!("{} did not exit 0 on SIGTERM after the round-trip runs", proc.name));
            }
        }
    }
}

/// Every server and transport at every size of the plan.
pub(crate) async fn round_trips(bench: &mut Bench, s: &mut Servers, p: &Profiles) -> Result<Vec<Row>> {
    let mut throughput = Vec::new();
    for size in bench.plan.sizes.clone() {
        for (which, server, profile) in [
            (0, "mcpgw", &p.json),
            (0, "mcpgw", &p.sse),
            (0, "mcpgw", &p.legacy),
            (0, "mcpgw", &p.modern),
            (1, MCPGW_1, &p.json),
            (1, MCPGW_1, &p.legacy),
            (2, "rmcp stateless JSON", &p.rmcp_json),
            (2, "rmcp stateless JSON", &p.modern),
            (3, RMCP_STATELESS_1, &p.rmcp_json),
            (4, "rmcp session mode", &p.rmcp_sse),
            (5, "bare hyper", &p.json),
        ] {
            let proc = match which {
                0 => &mut s.gw,
                1 => &mut s.gw1,
                2 => &mut s.stateless,
                3 => &mut s.stateless1,
                4 => &mut s.session,
                _ => &mut s.bare,
            };
            let result = bench.load_quiet(proc, server, profile, size).await?;
            throughput.push(Row {
                server: server.to_owned(),
                transport: profile.transport.label().to_owned(),
                accept: profile.accept.to_str().unwrap_or("").to_owned(),
                result,
            });
        }
    }
    for proc in [&s.gw, &s.gw1] {
        let left = wait_sessions(&target_of(proc)?, Duration::from_secs(15), |c| c == (0, 0)).await;
        if left != Some((0, 0)) {
            bench.note(format!(
                "after the round-trip runs (every session closed), {} /healthz still shows {left:?} (legacy, streamable)",
                proc.name
            ));
        }
    }
    Ok(throughput)
}

/// The alternating rounds: each measures the default pair, then the one-thread pair, with the
/// same sessions. (default rounds, one-thread rounds)
pub(crate) async fn rounds(bench: &mut Bench, s: &mut Servers, p: &Profiles) -> Result<(Vec<Round>, Vec<Round>)> {
    let (mut rounds, mut rounds_one_thread) = (Vec::new(), Vec::new());
    let n = bench.plan.round_sessions;
    for round in 1..=bench.plan.rounds {
        let mcpgw = bench.load_quiet(&mut s.gw, "mcpgw", &p.json, n).await?;
        let rmcp = bench.load_quiet(&mut s.stateless, "rmcp stateless JSON", &p.rmcp_json, n).await?;
        rounds.push(Round { round, mcpgw, rmcp_stateless: rmcp });
        let mcpgw = bench.load_quiet(&mut s.gw1, MCPGW_1, &p.json, n).await?;
        let rmcp = bench.load_quiet(&mut s.stateless1, RMCP_STATELESS_1, &p.rmcp_json, n).await?;
        rounds_one_thread.push(Round { round, mcpgw, rmcp_stateless: rmcp });
    }
    Ok((rounds, rounds_one_thread))
}

/// Sessions set up back to back: mcpgw on both transports, rmcp's session mode.
pub(crate) async fn setup(bench: &mut Bench, s: &mut Servers, p: &Profiles) -> Result<Vec<SetupRow>> {
    let mut setup = Vec::new();
    let runs: [(&str, &Profile); 3] = [("mcpgw", &p.json), ("mcpgw", &p.legacy), ("rmcp session mode", &p.rmcp_sse)];
    for (server, profile) in runs {
        let proc = if server == "mcpgw" { &mut s.gw } else { &mut s.session };
        let target = target_of(proc)?;
        let plan = &bench.plan;
        let result =
            load::setup_rate(&target, profile, plan.setup_workers, plan.warmup(), plan.duration(), Some(proc.pid))
                .await?;
        bench.report_setup(server, profile, &result);
        bench.check_alive(proc)?;
        let mut left_after = None;
        if server == "mcpgw" {
            let left = wait_sessions(&target, Duration::from_secs(15), |c| c == (0, 0)).await;
            left_after = left.map(|(l, s)| l + s);
            if left_after != Some(0) {
                bench.note(format!(
                    "15 s after the {} set-up run, mcpgw /healthz still shows {left:?} (legacy, streamable)",
                    profile.transport.label()
                ));
            }
        }
        setup.push(SetupRow {
            server: server.to_owned(),
            transport: profile.transport.label().to_owned(),
            result,
            left_after,
        });
    }
    Ok(setup)
}

/// The open loop: each rate of the plan against mcpgw (both configurations), rmcp stateless
/// JSON and the bare hyper server, in that order at each rate.
pub(crate) async fn open_loop(bench: &mut Bench, s: &mut Servers, p: &Profiles) -> Result<Vec<OpenLoopRow>> {
    let mut rows = Vec::new();
    for rate in bench.plan.open_loop_rates.clone() {
        for (server, proc, profile) in [
            ("mcpgw", &mut s.gw, &p.json),
            (MCPGW_1, &mut s.gw1, &p.json),
            ("rmcp stateless JSON", &mut s.stateless, &p.rmcp_json),
            ("bare hyper", &mut s.bare, &p.json),
        ] {
            let result = bench.open_loop_quiet(proc, server, profile, rate).await?;
            rows.push(OpenLoopRow {
                server: server.to_owned(),
                transport: profile.transport.label().to_owned(),
                result,
            });
        }
    }
    Ok(rows)
}
