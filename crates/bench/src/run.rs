//! `mcpgw-bench run` (`make bench`): starts mcpgw and the baselines, measures everything the
//! benchmark issue asks for, and writes `target/bench/results.json` and `docs/benchmarks.md`.
//!
//! # Layout
//!
//! - `bench`: the measuring context (plan, messages, observations; a closed-loop run);
//! - `measure`, `memory`, `overhead`, `auth`, `cluster`: the measurements, in the order they run;
//! - `report`: what a run found, as `results.json` holds it;
//! - `targets`: the targets judged on it; `markdown` and `reading`: the report written;
//! - `numbers`: how numbers are printed.

mod auth;
mod bench;
mod cluster;
mod markdown;
mod measure;
mod memory;
mod numbers;
mod overhead;
mod reading;
mod report;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::time::Instant;

use crate::launch::mcpgw_config;
use crate::machine::{machine, sh, versions};
use crate::peers::PeerOptions;
use crate::procs;

pub(crate) use self::auth::{auth_config, start_issuer};
use self::bench::{Bench, Clock, Profiles};
use self::measure::Servers;
use self::overhead::Upstreams;
use self::report::{Plan, Report};

/// Idle sessions need this many file descriptors beyond one per legacy session.
const SPARE_FDS: u64 = 512;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// A smoke run: short durations, fewer sizes, smaller idle counts (`BENCH_QUICK=1`). It
    /// writes target/bench/results-quick.json and target/bench/benchmarks-quick.md.
    #[arg(long)]
    quick: bool,
    /// The mcpgw binary.
    #[arg(long, default_value = "target/release/mcpgw")]
    mcpgw: PathBuf,
    /// The stdio fixture (tests/fixture).
    #[arg(long, default_value = "target/release/mcpgw-fixture")]
    fixture: PathBuf,
    /// Where the JSON results go.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where the markdown report goes.
    #[arg(long)]
    doc: Option<PathBuf>,
    /// The command line recorded in the report (`make bench` passes its own).
    #[arg(long)]
    command: Option<String>,
    /// Wait up to this many seconds for the machine to be quiet (under 0.2 busy cores
    /// besides this process) before measuring; then go on regardless, with a note.
    #[arg(long, default_value_t = 120)]
    wait_quiet: u64,
    /// Only the auth rows (JWT auth and a policy, the audit log; `make bench-auth`): a partial
    /// report, written to target/bench/results-auth.json and target/bench/benchmarks-auth.md,
    /// judged on the auth targets alone.
    #[arg(long, conflicts_with = "only_cluster")]
    only_auth: bool,
    /// Only the cluster rows (three instances behind HAProxy with Redis against the same
    /// three without it and one; `make bench-cluster`): a partial report, written to
    /// target/bench/results-cluster.json and target/bench/benchmarks-cluster.md, judged on
    /// the cluster targets alone.
    #[arg(long)]
    only_cluster: bool,
    /// Competing gateways measured in front of the stdio fixture, when present.
    #[command(flatten)]
    peers: PeerOptions,
}

pub(crate) async fn run(options: Options) -> Result<()> {
    let quick = options.quick || std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut plan = Plan::new(quick);
    let clock = Clock(Instant::now());
    let nofile = procs::raise_nofile();
    let machine_info = machine(nofile);
    for path in [&options.mcpgw, &options.fixture] {
        if !path.exists() {
            bail!(
                "{} is missing: build it first (cargo build --release -p mcpgw; cargo build --release -p mcpgw-bench -p mcpgw-tests --bins)",
                path.display()
            );
        }
    }
    let mut observations = Vec::new();
    let largest = plan.idle.iter().copied().max().unwrap_or(0) as u64;
    if nofile < largest + SPARE_FDS {
        let fit = nofile.saturating_sub(SPARE_FDS) as usize;
        observations
            .push(format!("the open-file limit is {nofile}: idle legacy sessions capped at {fit} (raise `ulimit -n`)"));
        for n in &mut plan.idle {
            *n = (*n).min(fit);
        }
    }
    let out_dir = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let (json_path, doc_path) = match (options.only_auth, options.only_cluster, quick) {
        (true, _, _) => (out_dir.join("results-auth.json"), out_dir.join("benchmarks-auth.md")),
        (_, true, _) => (out_dir.join("results-cluster.json"), out_dir.join("benchmarks-cluster.md")),
        (false, false, true) => (out_dir.join("results-quick.json"), out_dir.join("benchmarks-quick.md")),
        (false, false, false) => (out_dir.join("results.json"), PathBuf::from("docs/benchmarks.md")),
    };
    // Missing HAProxy or Redis fails the run before anything is measured, not at its end.
    if !options.only_auth {
        crate::clusters::check_installed()?;
    }
    let json_path = options.json.clone().unwrap_or(json_path);
    let doc_path = options.doc.clone().unwrap_or(doc_path);
    let command = options.command.clone().unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "));
    let fixture = std::fs::canonicalize(&options.fixture)?;

    let builtin = "[upstreams.builtin]\nkind = \"builtin\"\n";
    let builtin_config = out_dir.join("mcpgw-builtin.toml");
    std::fs::write(&builtin_config, mcpgw_config(builtin))?;
    // The same with one runtime worker; `[server]` follows the `[sessions]` table.
    let one_thread_config = out_dir.join("mcpgw-builtin-1thread.toml");
    std::fs::write(&one_thread_config, mcpgw_config(&format!("[server]\nworker_threads = 1\n\n{builtin}")))?;
    let stdio_config = out_dir.join("mcpgw-stdio.toml");
    std::fs::write(
        &stdio_config,
        mcpgw_config(&format!(
            "[upstreams.fixture]\nkind = \"stdio\"\ncommand = {}\nshare = \"shared\"\n",
            Value::String(fixture.to_string_lossy().into_owned())
        )),
    )?;

    let mut bench = Bench { plan: plan.clone(), clock, observations };
    bench.clock.say(format!("mcpgw-bench run ({}), open-file limit {nofile}", if quick { "quick" } else { "full" }));
    // Is anything else running? Two-second samples of the machine's busy time, until quiet.
    let quiet_deadline = Instant::now() + Duration::from_secs(options.wait_quiet);
    let mut said = false;
    loop {
        let before = procs::machine_busy_secs();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let busy = procs::machine_busy_secs().zip(before).map(|(b, a)| (b - a) / 2.0).unwrap_or(0.0);
        if busy <= 0.2 {
            break;
        }
        if Instant::now() >= quiet_deadline {
            bench.note(format!(
                "the machine was {busy:.2} cores busy with other work when the run started: expect noisy numbers"
            ));
            break;
        }
        if !said {
            bench.clock.say(format!(
                "the machine is {busy:.2} cores busy with other work; waiting up to {} s for it to be quiet",
                options.wait_quiet
            ));
            said = true;
        }
    }
    let profiles = Profiles::new()?;

    let (mut throughput, mut rounds, mut rounds_one_thread, mut open_loop, mut setup) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut memory, mut overhead, mut peers) = (Vec::new(), Vec::new(), Vec::new());
    let partial = options.only_auth || options.only_cluster;
    if !partial {
        // ---- round trips, rounds, open loop and set-up, on one set of servers -------------
        let mut servers = Servers::start(&options.mcpgw, &builtin_config, &one_thread_config).await?;
        throughput = measure::round_trips(&mut bench, &mut servers, &profiles).await?;
        (rounds, rounds_one_thread) = measure::rounds(&mut bench, &mut servers, &profiles).await?;
        open_loop = measure::open_loop(&mut bench, &mut servers, &profiles).await?;
        setup = measure::setup(&mut bench, &mut servers, &profiles).await?;
        servers.stop(&mut bench);

        // ---- memory, and the latency added over a direct upstream -------------------------
        memory = memory::memory(&mut bench, &options.mcpgw, &builtin_config, &profiles).await?;
        let upstreams = Upstreams { stdio: &stdio_config, fixture: &fixture, peers: &options.peers, out_dir: &out_dir };
        (overhead, peers) = overhead::stdio(&mut bench, &options.mcpgw, &upstreams).await?;
        overhead.extend(overhead::http(&mut bench, &options.mcpgw, &out_dir, &profiles).await?);
    }

    // ---- JWT auth and a policy, and the audit log, against plain mcpgw ---------------------
    let mut auth = Vec::new();
    if !options.only_cluster {
        auth = auth::auth(&mut bench, &options.mcpgw, &out_dir, &profiles).await?;
    }

    // ---- three instances behind HAProxy with Redis, against three without it and one -------
    let mut cluster = cluster::ClusterRows::default();
    if !options.only_auth {
        cluster = cluster::cluster(&mut bench, &options.mcpgw, &out_dir, &profiles).await?;
    }

    let mut report = Report {
        generated_utc: sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        quick,
        command,
        elapsed_s: bench.clock.0.elapsed().as_secs_f64(),
        machine: machine_info,
        versions: versions(&options.mcpgw),
        plan,
        throughput,
        rounds,
        rounds_one_thread,
        open_loop,
        setup,
        memory,
        overhead,
        peers,
        auth,
        cluster,
        targets: Vec::new(),
        observations: bench.observations,
    };
    report.targets = match (options.only_auth, options.only_cluster) {
        (true, _) => targets::auth_verdicts(&report),
        (_, true) => targets::cluster_verdicts(&report),
        _ => targets::verdicts(&report),
    };
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    std::fs::write(&doc_path, markdown::markdown(&report, &json_path))
        .with_context(|| format!("writing {}", doc_path.display()))?;
    bench.clock.say(format!("wrote {} and {}", json_path.display(), doc_path.display()));
    for verdict in &report.targets {
        eprintln!(
            "  {} {}: {} ({})",
            if verdict.met { "MET   " } else { "MISSED" },
            verdict.target,
            verdict.measured,
            verdict.margin
        );
    }
    Ok(())
}
