//! `mcpgw-bench profile` (`make profile`): where mcpgw's CPU goes per request.
//!
//! It starts the release mcpgw on the built-in tools, runs the `load` closed loop against it
//! (Streamable HTTP JSON by default, `--transport` another; `tools/call echo`) and samples mcpgw with `perf record` meanwhile.
//! Into `--out` it then writes `perf.data`, `self.txt` (self time by symbol), `stacks.folded`
//! (one `frame;…;leaf count` line per distinct stack, for a flamegraph) and `summary.md`
//! (inclusive shares of a fixed list of categories), and prints summary.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::json;

use crate::client::{Profile, Transport};
use crate::launch::{builtin_config, start_mcpgw, target_of};
use crate::load::{self, LoadResult};
use crate::machine::commit;
use crate::procs;

const PERF: &str = "/usr/bin/perf";
/// perf starts this long after the warm-up (the sessions are opened before it) and stops this
/// long before the load does.
const MARGIN: Duration = Duration::from_secs(1);
/// Lines of `perf report` kept in self.txt.
const SELF_LINES: usize = 60;

#[derive(clap::Args)]
pub(crate) struct Options {
    /// The mcpgw binary.
    #[arg(long, default_value = "target/release/mcpgw")]
    mcpgw: PathBuf,
    /// `[server] worker_threads` (default: mcpgw's own, one per core).
    #[arg(long)]
    worker_threads: Option<usize>,
    /// The transport the load speaks.
    #[arg(long, value_enum, default_value = "streamable-json")]
    transport: Transport,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 64)]
    sessions: usize,
    /// Measured seconds; perf samples all but the first and the last.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// mcpgw with JWT auth and the 20-rule policy of the auth rows (`make bench-auth`), the
    /// load's every request with a bearer token.
    #[arg(long)]
    auth: bool,
    /// Where perf.data, self.txt, stacks.folded and summary.md go.
    #[arg(long, default_value = "target/profile")]
    out: PathBuf,
}

/// Frames whose inclusive share summary.md reports.
struct Category {
    name: &'static str,
    /// A frame belongs when its name contains any of these.
    needles: &'static [&'static str],
    /// Only the leaf (the frame on the CPU) is looked at.
    leaf_only: bool,
}

/// perf names an inlined frame without its module path (`to_vec<T>`, `poll<F>`), and a type's
/// path shows up in the generic arguments of every frame that polls it: a needle such as
/// `Instrumented` would claim whole tasks, so the needles name the code that does the work.
const CATEGORIES: &[Category] = &[
    Category { name: "JSON parse of client messages", needles: &["mcpgw_transport::message::parse"], leaf_only: false },
    Category { name: "rmcp serve loop", needles: &["rmcp::service::serve_inner"], leaf_only: false },
    Category { name: "rmcp request handler", needles: &["handle_request"], leaf_only: false },
    Category { name: "tokio spawn", needles: &["spawn_inner"], leaf_only: false },
    Category {
        name: "session routing",
        needles: &[
            "mcpgw_transport::session::Session::deliver",
            "mcpgw_transport::session::Session::send",
            "mcpgw_transport::session::Session::route",
            "mcpgw_transport::routes::Routes::route",
            "open_post",
        ],
        leaf_only: false,
    },
    // `serde_json::to_vec`, inlined, is `to_vec<T>` (as is a slice's clone, `to_vec<u8>`).
    Category { name: "serialization", needles: &["serde_json::ser", "to_vec"], leaf_only: false },
    // jemalloc and Rust's allocator shims; not `free`, which is also the kernel's `__kfree_skb`.
    Category {
        name: "allocator",
        needles: &["_rjem_", "__rust_alloc", "__rust_dealloc", "__rust_realloc"],
        leaf_only: false,
    },
    Category { name: "memmove/memcpy (leaf only)", needles: &["memmove", "memcpy"], leaf_only: true },
    Category { name: "kernel syscalls", needles: &["do_syscall_64"], leaf_only: false },
    Category { name: "hyper h1", needles: &["hyper::proto::h1"], leaf_only: false },
    Category { name: "tracing", needles: &["tracing_subscriber", "tracing_core", "tracing::span"], leaf_only: false },
    Category { name: "cancellation tokens", needles: &["CancellationToken"], leaf_only: false },
    // What `--auth` adds: the bearer token's digest and the verified-token cache, the rules
    // for the caller and its shaped catalog, and who the caller is on a stateless request.
    Category { name: "auth", needles: &["mcpgw_transport::auth::"], leaf_only: false },
    Category { name: "policy", needles: &["mcpgw_core::policy::", "mcpgw_core::proxy::view::"], leaf_only: false },
    Category {
        name: "a stateless request's caller",
        needles: &["mcpgw_transport::modern::caller", "mcpgw::caller::of", "mcpgw_core::audit::Origin::of"],
        leaf_only: false,
    },
];

impl Category {
    /// Whether a folded stack (`comm;root;…;leaf`) belongs; the thread name is not a frame.
    fn matches(&self, stack: &str) -> bool {
        let hit = |frame: &str| self.needles.iter().any(|needle| frame.contains(needle));
        let Some((_, frames)) = stack.split_once(';') else { return false };
        if self.leaf_only { frames.rsplit(';').next().is_some_and(hit) } else { frames.split(';').any(hit) }
    }
}

pub(crate) async fn run(options: Options) -> Result<()> {
    let usable = Command::new(PERF).arg("--version").output().is_ok_and(|o| o.status.success());
    ensure!(usable, "{PERF} is missing or does not run: install Debian's linux-perf (apt-get install linux-perf)");
    let warmup = Duration::from_secs_f64(options.warmup.clamp(0.0, 60.0));
    let duration = Duration::from_secs_f64(options.duration.clamp(0.0, 600.0));
    ensure!(duration >= 3 * MARGIN, "--duration must be at least 3 s (perf skips its first and last second)");
    let out = &options.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    procs::raise_nofile();

    let config = out.join("mcpgw.toml");
    let mut issuer = None;
    if options.auth {
        let (proc, token) = crate::run::start_issuer().await?;
        let server = options.worker_threads.map(|n| format!("[server]\nworker_threads = {n}\n\n"));
        std::fs::write(&config, server.unwrap_or_default() + &crate::run::auth_config(&proc.base))?;
        issuer = Some((proc, token));
    } else {
        std::fs::write(&config, builtin_config(options.worker_threads))?;
    }
    let mut gw = start_mcpgw("mcpgw", &options.mcpgw, &config).await?;
    let target = target_of(&gw)?;

    let data = out.join("perf.data").to_string_lossy().into_owned();
    // Else perf keeps the last one as perf.data.old.
    let _ = std::fs::remove_file(&data);
    let (pid, secs) = (gw.pid.to_string(), format!("{:.1}", (duration - 2 * MARGIN).as_secs_f64()));
    let record_args =
        ["record", "-F", "999", "--call-graph", "dwarf,32768", "-p", &pid, "-o", &data, "--", "sleep", &secs]
            .map(String::from);
    eprintln!(
        "mcpgw-bench: {} sessions against mcpgw (pid {pid}); perf samples {secs} s of the load",
        options.sessions
    );
    // perf runs on a thread of its own while this one drives the load.
    let recorder = {
        let args = record_args.clone();
        std::thread::spawn(move || {
            std::thread::sleep(warmup + MARGIN);
            Command::new(PERF).args(args).output()
        })
    };
    let mut profile = Profile::new(options.transport, "echo", &json!({"text": "hello"}));
    if let Some((_, token)) = &issuer {
        profile = profile.with_bearer(token)?;
    }
    let loaded = load::closed_loop(&target, &profile, options.sessions, warmup, duration, Some(gw.pid)).await;
    let recorded = recorder.join().map_err(|_| anyhow!("the perf thread panicked"))?;
    if !gw.stop() {
        eprintln!("mcpgw-bench: mcpgw did not exit cleanly on SIGTERM");
    }
    if let Some((mut proc, _)) = issuer {
        proc.stop();
    }
    let result = loaded?;
    ensure!(
        result.errors == 0,
        "the load had {} errors; first: {}",
        result.errors,
        result.first_error.unwrap_or_default()
    );
    checked("perf record", recorded)?;

    // `--sort symbol` would add two IPC columns, empty without hardware counters.
    let report = perf(&["report", "-i", &data, "--no-children", "--fields", "overhead,sym", "--stdio", "-g", "none"])?;
    let mut self_txt = String::new();
    for line in report.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).take(SELF_LINES) {
        let _ = writeln!(self_txt, "{}", line.trim_end());
    }
    std::fs::write(out.join("self.txt"), self_txt)?;
    eprintln!("mcpgw-bench: folding the stacks (perf script resolves inlined frames: about a minute)");
    let stacks = fold(&perf(&["script", "-i", &data])?);
    let mut folded = String::new();
    for (stack, count) in &stacks {
        let _ = writeln!(folded, "{stack} {count}");
    }
    std::fs::write(out.join("stacks.folded"), folded)?;

    let perf_line = format!("perf {}", record_args.join(" "));
    let summary = summary(&command_line, &options, &result, &perf_line, &stacks);
    std::fs::write(out.join("summary.md"), &summary)?;
    print!("{summary}");
    Ok(())
}

/// perf's stdout, or an error with its stderr.
fn perf(args: &[&str]) -> Result<String> {
    let output = checked(&format!("perf {}", args.join(" ")), Command::new(PERF).args(args).output())?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn checked(what: &str, output: std::io::Result<Output>) -> Result<Output> {
    let output = output.with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!("{what} failed ({}):\n{}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(output)
}

/// Folds `perf script` output into stacks (`comm;root;…;leaf`, counted): each sample is a
/// header line (`comm pid/tid time: period event:`), then one indented `addr symbol+0xoff (dso)`
/// line per frame, leaf first, then a blank line.
fn fold(script: &str) -> BTreeMap<String, u64> {
    let mut stacks = BTreeMap::new();
    let mut sample: Option<(String, Vec<String>)> = None;
    for line in script.lines() {
        if line.trim().is_empty() {
            add(&mut stacks, sample.take());
        } else if line.starts_with(char::is_whitespace) {
            if let Some((_, frames)) = &mut sample {
                frames.push(frame_name(line));
            }
        } else {
            add(&mut stacks, sample.take());
            // The thread name runs up to the pid (it may hold spaces, never a leading digit).
            let comm = line.split_whitespace().take_while(|t| !t.starts_with(|c: char| c.is_ascii_digit()));
            sample = Some((comm.collect::<Vec<_>>().join(" ").replace(';', ":"), Vec::new()));
        }
    }
    add(&mut stacks, sample);
    stacks
}

fn add(stacks: &mut BTreeMap<String, u64>, sample: Option<(String, Vec<String>)>) {
    if let Some((mut stack, frames)) = sample {
        for frame in frames.iter().rev() {
            stack.push(';');
            stack.push_str(frame);
        }
        *stacks.entry(stack).or_insert(0) += 1;
    }
}

/// `7f01 core::ptr::drop_in_place<[u8; 4]>+0x1f (/usr/bin/x)` → `core::ptr::drop_in_place<[u8: 4]>`;
/// an unknown symbol is named after its object, `[libc.so.6]`.
fn frame_name(line: &str) -> String {
    let rest = line.trim().split_once(char::is_whitespace).map_or("", |(_, rest)| rest.trim_start());
    let (symbol, dso) = match rest.rfind(" (") {
        Some(at) => (&rest[..at], rest[at + 2..].trim_end_matches(')')),
        None => (rest, ""),
    };
    let symbol = match symbol.rfind("+0x") {
        Some(at) if symbol[at + 3..].chars().all(|c| c.is_ascii_hexdigit()) => &symbol[..at],
        _ => symbol,
    };
    let name = match symbol {
        "[unknown]" if !dso.is_empty() && dso != "[unknown]" => format!("[{}]", dso.rsplit('/').next().unwrap_or(dso)),
        _ => symbol.to_owned(),
    };
    // `;` separates frames in the folded format.
    name.replace(';', ":")
}

fn summary(
    command_line: &str,
    options: &Options,
    result: &LoadResult,
    perf_line: &str,
    stacks: &BTreeMap<String, u64>,
) -> String {
    let total: u64 = stacks.values().sum();
    let threads = options.worker_threads.map_or("mcpgw's default (one per core)".to_owned(), |n| n.to_string());
    let mut md = String::new();
    let _ = writeln!(md, "# Where mcpgw's CPU goes per request\n");
    let _ = writeln!(md, "- Command: `{command_line}`, mcpgw commit {}", commit());
    let _ = writeln!(
        md,
        "- Load: {}, `tools/call echo`, {} sessions, {} s warm-up, {} s measured; worker threads: {threads}",
        options.transport.label(),
        options.sessions,
        options.warmup,
        options.duration
    );
    let _ = writeln!(
        md,
        "- Result (with perf attached, so below `make bench`): {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, server CPU {} µs/req, {} errors",
        result.rps,
        result.latency.p50_ms,
        result.latency.p99_ms,
        result.server_us_per_req.map_or("-".to_owned(), |v| format!("{v:.1}")),
        result.errors
    );
    // Deep async stacks exceed the stack perf copies per sample: these lack their outer frames.
    let cut: u64 =
        stacks.iter().filter(|(stack, _)| stack.split(';').nth(1) == Some("[unknown]")).map(|(_, n)| n).sum();
    let _ = writeln!(md, "- Sampled: `{perf_line}`; {total} samples");
    let _ = writeln!(
        md,
        "- Stacks not unwound to their root (root `[unknown]`; their outer frames are missing): {:.1}%\n",
        percent(cut, total)
    );
    let _ = writeln!(md, "| Category | Frames containing any of | Samples | Share |");
    let _ = writeln!(md, "|---|---|---:|---:|");
    for category in CATEGORIES {
        let n: u64 = stacks.iter().filter(|(stack, _)| category.matches(stack)).map(|(_, count)| count).sum();
        let needles = category.needles.iter().map(|needle| format!("`{needle}`")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(md, "| {} | {needles} | {n} | {:.1}% |", category.name, percent(n, total));
    }
    let _ = writeln!(
        md,
        "\nShares are inclusive (a sample counts when any frame of its stack matches), so they overlap.\n\
         Self time by symbol: `self.txt`. Flamegraph: `inferno-flamegraph < {0}/stacks.folded > flame.svg` \
         (`cargo install inferno`), or open `{0}/stacks.folded` at https://www.speedscope.app.",
        options.out.display()
    );
    md
}

fn percent(n: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { 100.0 * n as f64 / total as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "\
tokio-runtime-w  4242/4243  1234.567890:    1001001 cpu-clock:
\t    55d0c0e1 __memmove_avx_unaligned_erms+0x2d (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    55d0c0e2 mcpgw_transport::message::parse+0x1a (/work/target/release/mcpgw)
\t    55d0c0e3 core::ptr::drop_in_place<[u8; 4]>+0x9 (/work/target/release/mcpgw)
\t    7f00aa01 [unknown] (/usr/lib/x86_64-linux-gnu/libc.so.6)

tokio-runtime-w  4242/4244  1234.568891:    1001001 cpu-clock:
\t    ffffffff81 do_syscall_64+0x5c ([kernel.kallsyms])
\t    55d0c0e4 <hyper::proto::h1::io::Buffered<T,B> as X>::poll_read_from_io+0x11 (/work/target/release/mcpgw)

";

    #[test]
    fn folds_perf_script_samples() {
        let stacks = fold(SCRIPT);
        let lines: Vec<String> = stacks.iter().map(|(stack, n)| format!("{stack} {n}")).collect();
        assert_eq!(
            lines,
            [
                "tokio-runtime-w;<hyper::proto::h1::io::Buffered<T,B> as X>::poll_read_from_io;do_syscall_64 1",
                "tokio-runtime-w;[libc.so.6];core::ptr::drop_in_place<[u8: 4]>;mcpgw_transport::message::parse;\
                 __memmove_avx_unaligned_erms 1",
            ]
        );
        // The same sample twice is one stack counted twice; a missing last blank line loses nothing.
        let twice = format!("{}{}", SCRIPT, SCRIPT.trim_end());
        assert!(fold(&twice).values().all(|&n| n == 2));
    }

    #[test]
    fn matches_categories() {
        let category = |name: &str| CATEGORIES.iter().find(|c| c.name.starts_with(name)).expect("a category");
        let stack = "memmove;mcpgw_transport::message::parse;__memmove_avx_unaligned_erms";
        assert!(category("JSON parse").matches(stack));
        assert!(category("memmove").matches(stack));
        assert!(!category("hyper").matches(stack));
        // memmove counts the leaf only; the thread name is not a frame.
        assert!(!category("memmove").matches("t;__memcpy_avx;mcpgw_transport::message::parse"));
        assert!(!category("memmove").matches("memmove"));
        assert!(category("session routing").matches("t;mcpgw_transport::session::Session::deliver;x"));
        assert!(category("kernel").matches("t;entry_SYSCALL_64;do_syscall_64;x"));
        // A frame that merely polls an instrumented task is not tracing's work.
        assert!(!category("tracing").matches("t;poll<tracing::instrument::Instrumented<F>>;x"));
        assert!(category("policy").matches("t;mcpgw_core::proxy::view::<impl mcpgw_core::proxy::Proxy>::view;x"));
        assert!(category("auth").matches("t;mcpgw_transport::auth::tokens::digest;compress"));
    }
}
