//! `mcpgw-bench compare` (`make bench-compare`): two mcpgw binaries, the same rows, measured
//! in alternating order, so that a change can be judged against the commit before it.
//!
//! One run of a row moves by 10-30% in CPU per request on a small shared machine (other
//! tenants, frequency, where the scheduler puts the threads), more than the changes worth
//! catching. So every row is measured `--rounds` times for each binary, the two in
//! alternating order (base first in odd rounds, head first in even ones), each on a fresh
//! process, and the medians are compared. The rows are the closed-loop round-trip rows of
//! `make bench` that mcpgw runs: three transports with the default worker threads, JSON and
//! legacy with one, at 1, 16, 64 and 256 sessions.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::json;

use crate::client::{Profile, Transport};
use crate::launch::{builtin_config, start_mcpgw, target_of};
use crate::load::{self, LoadResult};
use crate::procs;

/// A head row slower than its base by more than this share of CPU per request is flagged.
const TOLERANCE: f64 = 0.05;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// The mcpgw binary to compare against (the commit before the change).
    #[arg(long)]
    base: PathBuf,
    /// The mcpgw binary under test.
    #[arg(long, default_value = "target/release/mcpgw")]
    head: PathBuf,
    /// Measurements of each row for each binary.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Measured seconds of each measurement.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Unmeasured seconds before each.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Session counts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    sessions: Vec<usize>,
    /// Where the report (compare.md) and the raw readings (compare.json) go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

/// One row: a transport, mcpgw's worker threads (None: its default) and a session count.
#[derive(Clone, Copy)]
struct Row {
    transport: Transport,
    threads: Option<usize>,
    sessions: usize,
}

impl Row {
    fn label(&self) -> String {
        let threads = self.threads.map(|n| format!(", {n} thread")).unwrap_or_default();
        format!("{} sessions, {}{threads}", self.sessions, self.transport.label())
    }
}

/// The rows `make bench` measures for mcpgw.
fn rows(sessions: &[usize]) -> Vec<Row> {
    let configs = [
        (Transport::StreamableJson, None),
        (Transport::StreamableSse, None),
        (Transport::Legacy, None),
        (Transport::StreamableJson, Some(1)),
        (Transport::Legacy, Some(1)),
    ];
    sessions
        .iter()
        .flat_map(|&sessions| configs.map(|(transport, threads)| Row { transport, threads, sessions }))
        .collect()
}

/// Every reading of one row, per binary: CPU µs per request.
#[derive(Default)]
struct Readings {
    base: Vec<f64>,
    head: Vec<f64>,
}

pub(crate) async fn run(options: Options) -> Result<()> {
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    for binary in [&options.base, &options.head] {
        ensure!(binary.is_file(), "{} is not a file", binary.display());
    }
    std::fs::create_dir_all(&options.out).with_context(|| format!("creating {}", options.out.display()))?;
    procs::raise_nofile();
    let (warmup, duration) = (secs(options.warmup), secs(options.duration));
    let rows = rows(&options.sessions);
    let mut readings: Vec<Readings> = rows.iter().map(|_| Readings::default()).collect();
    for round in 0..options.rounds {
        for (row, read) in rows.iter().zip(&mut readings) {
            let order = if round % 2 == 0 { [true, false] } else { [false, true] };
            for is_base in order {
                let binary = if is_base { &options.base } else { &options.head };
                let result = measure(binary, row, &options.out, warmup, duration).await?;
                let us = result.server_us_per_req.context("no CPU reading (is /proc readable?)")?;
                eprintln!(
                    "mcpgw-bench: round {}/{} {} {}: {us:.1} µs/req, {:.0} req/s",
                    round + 1,
                    options.rounds,
                    if is_base { "base" } else { "head" },
                    row.label(),
                    result.rps
                );
                if is_base { read.base.push(us) } else { read.head.push(us) }
            }
        }
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = report(&command, &options, &rows, &readings);
    std::fs::write(options.out.join("compare.md"), &report)?;
    let raw: Vec<_> = rows
        .iter()
        .zip(&readings)
        .map(|(row, r)| json!({"row": row.label(), "base_us_per_req": r.base, "head_us_per_req": r.head}))
        .collect();
    std::fs::write(options.out.join("compare.json"), serde_json::to_string_pretty(&raw)?)?;
    print!("{report}");
    Ok(())
}

/// One measurement: a fresh mcpgw on the built-in tools, the closed loop, its CPU.
async fn measure(binary: &Path, row: &Row, out: &Path, warmup: Duration, duration: Duration) -> Result<LoadResult> {
    let config = out.join("compare-mcpgw.toml");
    std::fs::write(&config, builtin_config(row.threads))?;
    let mut gw = start_mcpgw("mcpgw", binary, &config).await?;
    let target = target_of(&gw)?;
    let profile = Profile::new(row.transport, "echo", &json!({"text": "hello"}));
    let loaded = load::closed_loop(&target, &profile, row.sessions, warmup, duration, Some(gw.pid)).await;
    gw.stop();
    let result = loaded?;
    ensure!(
        result.errors == 0,
        "{}: {} errors; first: {}",
        row.label(),
        result.errors,
        result.first_error.unwrap_or_default()
    );
    Ok(result)
}

fn report(command: &str, options: &Options, rows: &[Row], readings: &[Readings]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# mcpgw against a base binary: CPU per request, medians of alternating rounds\n");
    let _ = writeln!(md, "- Command: `{command}`");
    let _ = writeln!(md, "- Base: `{}`; head: `{}`", options.base.display(), options.head.display());
    let _ = writeln!(
        md,
        "- {} rounds; each measurement a fresh process, {:.1} s warm-up, {:.1} s measured; `tools/call echo` on the \
         built-in tools; a head median more than {:.0}% above the base median is marked *slower*\n",
        options.rounds,
        options.warmup,
        options.duration,
        TOLERANCE * 100.0
    );
    let _ = writeln!(md, "| row | base µs/req (median) | head µs/req (median) | change | base range | head range | |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|");
    let mut slower = 0;
    for (row, r) in rows.iter().zip(readings) {
        let (base, head) = (median(&r.base), median(&r.head));
        let change = head / base - 1.0;
        let verdict = if change > TOLERANCE {
            slower += 1;
            "slower"
        } else {
            ""
        };
        let _ = writeln!(
            md,
            "| {} | {base:.1} | {head:.1} | {:+.1}% | {} | {} | {verdict} |",
            row.label(),
            change * 100.0,
            range(&r.base),
            range(&r.head)
        );
    }
    let _ = writeln!(md, "\n{slower} of {} rows slower by more than {:.0}%.", rows.len(), TOLERANCE * 100.0);
    md
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn range(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.1}-{max:.1}")
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 600.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn every_configuration_at_every_session_count() {
        let rows = rows(&[1, 64]);
        assert_eq!(rows.len(), 10);
        assert_eq!(rows[0].label(), "1 sessions, Streamable HTTP, JSON");
        assert_eq!(rows[9].label(), "64 sessions, legacy SSE, 1 thread");
    }
}
