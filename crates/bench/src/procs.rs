//! The servers the harness starts (mcpgw, the baselines) and what it reads about processes
//! from `/proc`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Log lines kept per server, for error reports.
const LOG_LINES: usize = 200;
const MARKER: &str = "listening on http://";

/// A server process, killed on drop.
pub(crate) struct Proc {
    pub(crate) name: String,
    child: Child,
    pub(crate) pid: u32,
    /// `http://IP:PORT`.
    pub(crate) base: String,
    log: Arc<Mutex<VecDeque<String>>>,
}

/// What says a started process is ready to be measured.
pub(crate) enum Ready {
    /// The line `… listening on http://IP:PORT …` (mcpgw's; the baseline servers print the
    /// same): its base URL is that address.
    Listening,
    /// A line containing one of these (a store's "ready" line); its address is `base`.
    Line(&'static [&'static str], String),
    /// At once (its socket was bound before it started); its address is `base`.
    Now(String),
}

impl Proc {
    /// Starts `command` and waits for the line `… listening on http://IP:PORT …` on its stderr
    /// ([`Ready::Listening`]).
    pub(crate) fn start(name: &str, mut command: Command) -> Result<Proc> {
        command.stdin(Stdio::null());
        Proc::start_ready(name, command, Ready::Listening)
    }

    /// Starts `command` (its stdin as the caller set it) and waits until it is `ready`, from
    /// what it writes to stderr. stderr is drained for the process's whole life so a chatty
    /// log never blocks it.
    pub(crate) fn start_ready(name: &str, mut command: Command, ready: Ready) -> Result<Proc> {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().with_context(|| format!("starting {name}: {command:?}"))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        let mut tx = Some(tx);
        let (texts, base): (&[&str], Option<String>) = match ready {
            Ready::Listening => (&[], None),
            Ready::Line(texts, base) => (texts, Some(base)),
            Ready::Now(base) => {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(base);
                }
                (&[], None)
            }
        };
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(base) = &base {
                    if texts.iter().any(|t| line.contains(t))
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(base.clone());
                    }
                } else if let Some(at) = line.find(MARKER) {
                    let rest = &line[at + MARKER.len()..];
                    let end = rest.find(|c: char| c.is_whitespace() || c == ')' || c == '"').unwrap_or(rest.len());
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(format!("http://{}", &rest[..end]));
                    }
                }
                if let Ok(mut log) = lines.lock() {
                    if log.len() == LOG_LINES {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            }
        });
        let pid = child.id();
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(base) => Ok(Proc { name: name.to_owned(), child, pid, base, log }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = log.lock().map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default();
                bail!("{name} was not ready within {START_TIMEOUT:?}; its log:\n{log}")
            }
        }
    }

    /// The last lines of its log.
    pub(crate) fn log_tail(&self, n: usize) -> Vec<String> {
        self.log.lock().map(|l| l.iter().rev().take(n).rev().cloned().collect()).unwrap_or_default()
    }

    /// Whether it is still running.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL (no drain, nothing released), then waits until it is gone.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]. Returns whether it exited by itself, with
    /// status 0.
    pub(crate) fn stop(&mut self) -> bool {
        self.alive() && terminate(&mut self.child, &self.name, STOP_TIMEOUT)
    }
}

/// Sends `child` SIGTERM and waits up to `timeout`, then SIGKILL. Whether it exited by
/// itself with status 0.
pub(crate) fn terminate(child: &mut Child, name: &str, timeout: Duration) -> bool {
    let Ok(pid) = i32::try_from(child.id()) else { return false };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    eprintln!("bench: {name} did not exit within {timeout:?} of SIGTERM; killing it");
    let _ = child.kill();
    let _ = child.wait();
    false
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
pub(crate) fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User plus system CPU time of a process (all its threads), in seconds, from
/// `/proc/<pid>/stat` (utime and stime, fields 14 and 15).
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clk_tck())
}

/// Busy time of every CPU together (user, nice, system, irq, softirq, steal of the `cpu` line
/// of `/proc/stat`), in seconds.
pub(crate) fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal …
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).copied().unwrap_or(0);
    Some(busy as f64 / clk_tck())
}

/// Resident set size (`VmRSS` of `/proc/<pid>/status`), in bytes.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Raises this process's open-file limit to its hard limit (children inherit it); returns the
/// new soft limit.
pub(crate) fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let pid = std::process::id();
        assert!(cpu_secs(pid).is_some());
        assert!(rss_bytes(pid).is_some_and(|r| r > 0));
    }
}
