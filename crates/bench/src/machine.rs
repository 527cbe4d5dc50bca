//! What a report records about where it ran: the machine, the versions of what was measured and
//! the commit it was built from.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct Machine {
    pub(crate) nproc: usize,
    pub(crate) cpu_model: String,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
    pub(crate) open_files_limit: u64,
    /// `/proc/loadavg` when the run started (something else running shows here).
    pub(crate) load_average_at_start: String,
}

#[derive(Serialize)]
pub(crate) struct Versions {
    pub(crate) rustc: String,
    pub(crate) mcpgw: String,
    pub(crate) mcpgw_commit: String,
    pub(crate) rmcp: String,
    pub(crate) hyper: String,
    pub(crate) tokio: String,
}

/// The trimmed standard output of a command that succeeded, else "unknown".
pub(crate) fn sh(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn lock_version(name: &str) -> String {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle)
        .and_then(|at| lock[at + needle.len()..].split('"').next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

pub(crate) fn machine(open_files_limit: u64) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| "unknown".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    Machine {
        nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model,
        memory_gib: mem_kib / 1024.0 / 1024.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        open_files_limit,
        load_average_at_start: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The checked-out commit, noting uncommitted changes to tracked files.
pub(crate) fn commit() -> String {
    let commit = sh("git", &["rev-parse", "--short=12", "HEAD"]);
    let dirty = !sh("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    if dirty { format!("{commit} (with uncommitted changes)") } else { commit }
}

pub(crate) fn versions(mcpgw: &Path) -> Versions {
    Versions {
        rustc: sh("rustc", &["-V"]),
        mcpgw: sh(&mcpgw.to_string_lossy(), &["--version"]),
        mcpgw_commit: commit(),
        rmcp: lock_version("rmcp"),
        hyper: lock_version("hyper"),
        tokio: lock_version("tokio"),
    }
}
