//! The processes of the cluster rows (run/cluster.rs): a `redis-server` of its own on a unix
//! socket keeping nothing on disk, mcpgw instances with `[cluster]` pointing at it, and
//! HAProxy in front of them running `config/examples/haproxy.cfg` as shipped, with their
//! addresses (as tests/src/cluster.rs starts them); the same three without a store (`store =
//! "none"`: their ids tagged for HAProxy, nothing shared) behind their own HAProxy, the
//! baseline the store's cost is judged against; one mcpgw without `[cluster]` behind the same
//! HAProxy configuration; and a cluster of one, on the same store, behind its own HAProxy:
//! that one with the store.
//!
//! HAProxy's listening socket is bound here (port 0) and handed over as descriptor 3
//! (`bind fd@3`), so it accepts connections as soon as it exists.

use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::time::Instant;

use crate::client::{Target, get_status, get_text};
use crate::launch::{mcpgw_config, start_mcpgw_at, target_of};
use crate::load::Watched;
use crate::procs::{Proc, Ready};

/// The HAProxy configuration the deployment docs ship.
const HAPROXY_CFG: &str = include_str!("../../../config/examples/haproxy.cfg");
/// How long a restarted instance, or HAProxy, may take to be ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// Fails, naming the make target that installs them, when HAProxy or redis-server is missing:
/// the cluster rows are part of the report, never silently left out.
pub(crate) fn check_installed() -> Result<()> {
    for (program, arg) in [("haproxy", "-v"), ("redis-server", "--version")] {
        let ran = Command::new(program).arg(arg).stdin(Stdio::null()).output();
        if !ran.is_ok_and(|o| o.status.success()) {
            bail!("{program} is missing: the cluster rows need it (run `make deps-cluster`, or `make bench`)");
        }
    }
    Ok(())
}

/// One mcpgw of the cluster: its node tag, its process (None while killed), its configuration
/// and address (for a restart).
pub(crate) struct Instance {
    pub(crate) tag: String,
    pub(crate) proc: Option<Proc>,
    config: PathBuf,
    addr: String,
}

impl Instance {
    /// Its name in the bench's messages.
    pub(crate) fn name(&self) -> String {
        format!("mcpgw {}", self.tag)
    }

    /// Its own address (its `/metrics`), not HAProxy's.
    pub(crate) fn target(&self) -> Result<Target> {
        Target::parse(&format!("http://{}", self.addr), "/mcp", "/sse")
    }

    /// Starts it again on its address, after a kill; it waits for its node key to expire.
    pub(crate) async fn restart(&mut self, mcpgw: &Path) -> Result<()> {
        let proc = start_mcpgw_at(&self.name(), mcpgw, &self.config, &self.addr, &[]).await?;
        self.proc = Some(proc);
        Ok(())
    }
}

/// Three instances (or any number), their store and their HAProxy; as many without a store,
/// with their own HAProxy; the single instance with its own HAProxy; and the cluster of one
/// (`[cluster]` on the same store) with its own.
pub(crate) struct Clusters {
    pub(crate) instances: Vec<Instance>,
    pub(crate) haproxy: Proc,
    pub(crate) redis: Proc,
    pub(crate) bare: Vec<Proc>,
    pub(crate) bare_haproxy: Proc,
    pub(crate) single: Proc,
    pub(crate) single_haproxy: Proc,
    pub(crate) solo: Proc,
    pub(crate) solo_haproxy: Proc,
    _dir: TempDir,
}

impl Clusters {
    /// Starts them: `nodes` instances tagged `0001`, `0002`, …; every mcpgw on the built-in
    /// tools with the bench's configuration (launch.rs).
    pub(crate) async fn start(mcpgw: &Path, out_dir: &Path, nodes: usize) -> Result<Clusters> {
        check_installed()?;
        let dir = TempDir::new(out_dir.join("cluster"))?;
        let socket = dir.0.join("redis.sock");
        let redis = start_redis(&dir.0, &socket)?;
        // One worker thread each: the instances share one machine's cores, and with a runtime
        // thread per core each they would crowd each other (their CPU per request, summed, rose
        // by a third on two cores). The single instance runs the same, to compare like with like.
        let builtin = "[server]\nworker_threads = 1\n\n[upstreams.builtin]\nkind = \"builtin\"\n";
        let store = format!("unix://{}", socket.display());
        let config_on = |tag: &str, store: &str, name: &str| {
            let config = dir.0.join(format!("mcpgw-{name}.toml"));
            let text = mcpgw_config(&format!("{builtin}\n[cluster]\nnode = \"{tag}\"\nstore = \"{store}\"\n"));
            std::fs::write(&config, text).map(|()| config)
        };
        let cluster_config = |tag: &str| config_on(tag, &store, tag);
        let mut instances = Vec::new();
        for n in 1..=nodes {
            let tag = format!("{n:04x}");
            let config = cluster_config(&tag)?;
            let proc = start_mcpgw_at(&format!("mcpgw {tag}"), mcpgw, &config, "127.0.0.1:0", &[]).await?;
            let addr = proc.base.trim_start_matches("http://").to_owned();
            instances.push(Instance { tag, proc: Some(proc), config, addr });
        }
        let servers: Vec<(String, String)> = instances.iter().map(|i| (i.tag.clone(), i.addr.clone())).collect();
        let haproxy = start_haproxy("HAProxy (cluster)", &dir.0.join("haproxy.cfg"), &servers).await?;
        let mut bare = Vec::new();
        let mut servers = Vec::new();
        for n in 1..=nodes {
            let tag = format!("{n:04x}");
            let config = config_on(&tag, "none", &format!("{tag}-bare"))?;
            let proc = start_mcpgw_at(&format!("mcpgw {tag} (no store)"), mcpgw, &config, "127.0.0.1:0", &[]).await?;
            servers.push((tag, proc.base.trim_start_matches("http://").to_owned()));
            bare.push(proc);
        }
        let bare_haproxy = start_haproxy("HAProxy (no store)", &dir.0.join("haproxy-bare.cfg"), &servers).await?;
        let single_config = dir.0.join("mcpgw-single.toml");
        std::fs::write(&single_config, mcpgw_config(builtin))?;
        let single = start_mcpgw_at("mcpgw (single)", mcpgw, &single_config, "127.0.0.1:0", &[]).await?;
        let server = [("0001".to_owned(), single.base.trim_start_matches("http://").to_owned())];
        let single_haproxy = start_haproxy("HAProxy (single)", &dir.0.join("haproxy-single.cfg"), &server).await?;
        // The cluster of one: a tag none of the three has.
        let tag = format!("{:04x}", nodes + 1);
        let solo =
            start_mcpgw_at(&format!("mcpgw {tag} (alone)"), mcpgw, &cluster_config(&tag)?, "127.0.0.1:0", &[]).await?;
        let server = [(tag, solo.base.trim_start_matches("http://").to_owned())];
        let solo_haproxy = start_haproxy("HAProxy (cluster of one)", &dir.0.join("haproxy-solo.cfg"), &server).await?;
        Ok(Clusters {
            instances,
            haproxy,
            redis,
            bare,
            bare_haproxy,
            single,
            single_haproxy,
            solo,
            solo_haproxy,
            _dir: dir,
        })
    }

    /// The cluster's CPU: its instances (the server), then HAProxy and Redis beside them.
    pub(crate) fn cluster_watched(&self) -> Watched {
        Watched {
            server: self.instances.iter().filter_map(|i| i.proc.as_ref().map(|p| p.pid)).collect(),
            beside: vec![self.haproxy.pid, self.redis.pid],
        }
    }

    /// The three without a store: their CPU summed, then their HAProxy beside it.
    pub(crate) fn bare_watched(&self) -> Watched {
        Watched { server: self.bare.iter().map(|p| p.pid).collect(), beside: vec![self.bare_haproxy.pid] }
    }

    /// The single instance behind its HAProxy: the instance, then HAProxy beside it.
    pub(crate) fn single_lb_watched(&self) -> Watched {
        Watched { server: vec![self.single.pid], beside: vec![self.single_haproxy.pid] }
    }

    /// The cluster of one: the instance, then its HAProxy and Redis beside it.
    pub(crate) fn solo_watched(&self) -> Watched {
        Watched { server: vec![self.solo.pid], beside: vec![self.solo_haproxy.pid, self.redis.pid] }
    }

    /// Fails with its log when a process has exited (an instance killed on purpose is `None`).
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        let Clusters {
            instances, haproxy, redis, bare, bare_haproxy, single, single_haproxy, solo, solo_haproxy, ..
        } = self;
        let procs = instances.iter_mut().filter_map(|i| i.proc.as_mut()).chain(bare.iter_mut());
        for proc in procs.chain([haproxy, redis, bare_haproxy, single, single_haproxy, solo, solo_haproxy]) {
            if !proc.alive() {
                bail!("{} exited during the cluster rows; its log:\n{}", proc.name, proc.log_tail(30).join("\n"));
            }
        }
        Ok(())
    }

    /// SIGTERM to every process; the mcpgw that did not exit 0 by themselves.
    pub(crate) fn stop(mut self) -> Vec<String> {
        let mut unclean = Vec::new();
        let Clusters {
            instances, haproxy, redis, bare, bare_haproxy, single, single_haproxy, solo, solo_haproxy, ..
        } = &mut self;
        let mcpgw = instances.iter_mut().filter_map(|i| i.proc.as_mut()).chain(bare.iter_mut()).chain([single, solo]);
        for proc in mcpgw {
            if !proc.stop() {
                unclean.push(proc.name.clone());
            }
        }
        for proc in [haproxy, bare_haproxy, single_haproxy, solo_haproxy, redis] {
            proc.stop();
        }
        unclean
    }
}

/// A counter of an instance's `/metrics`, summed over its series.
pub(crate) async fn counter(target: &Target, name: &str) -> Result<f64> {
    let text = get_text(target, "/metrics").await?;
    Ok(text
        .lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// A directory of the run's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// Made absolute: redis-server changes into it, and finds its socket from there.
    fn new(path: PathBuf) -> Result<TempDir> {
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(std::fs::canonicalize(&path)?))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// redis-server on `socket`, no TCP port, nothing saved; its log (stdout) on stderr.
fn start_redis(dir: &Path, socket: &Path) -> Result<Proc> {
    let mut command = Command::new("sh");
    command
        .args(["-c", "exec redis-server \"$@\" >&2", "redis-server", "--port", "0", "--unixsocket"])
        .arg(socket)
        .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir"])
        .arg(dir)
        .stdin(Stdio::null());
    // Redis 7.0 says "The server is now ready to accept connections at <socket>", 7.2 and
    // Valkey "Ready to accept connections unix".
    let ready = Ready::Line(
        &["ready to accept connections at", "Ready to accept connections unix"],
        format!("unix://{}", socket.display()),
    );
    Proc::start_ready("redis-server", command, ready)
}

/// HAProxy on `config/examples/haproxy.cfg` with these `(name, IP:PORT)` servers, written to
/// `path`; ready once a `/healthz` through it answers 200.
async fn start_haproxy(name: &str, path: &Path, servers: &[(String, String)]) -> Result<Proc> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding HAProxy's port")?;
    let base = format!("http://{}", listener.local_addr()?);
    std::fs::write(path, haproxy_config(servers)?)?;
    let mut command = Command::new("sh");
    // The listening socket arrives as standard input and becomes descriptor 3.
    command
        .args(["-c", "exec haproxy -db -f \"$1\" 3<&0 0</dev/null", "sh"])
        .arg(path)
        .stdin(Stdio::from(OwnedFd::from(listener)));
    let mut proc = Proc::start_ready(name, command, Ready::Now(base))?;
    let target = target_of(&proc)?;
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        if get_status(&target, "/healthz").await.ok() == Some(200) {
            return Ok(proc);
        }
        if !proc.alive() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{name} did not pass a /healthz within {READY_WITHIN:?}; its log:\n{}", proc.log_tail(30).join("\n"))
}

/// The shipped configuration with the inherited socket and one `server` line per instance.
fn haproxy_config(servers: &[(String, String)]) -> Result<String> {
    let mut out = String::new();
    let mut servers_written = false;
    for line in HAPROXY_CFG.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("bind ") {
            out.push_str("    bind fd@3\n");
        } else if trimmed.starts_with("server ") {
            if !servers_written {
                for (name, addr) in servers {
                    out.push_str(&format!("    server {name} {addr}\n"));
                }
                servers_written = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !servers_written {
        bail!("config/examples/haproxy.cfg has no server line");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_haproxy_configuration_gets_this_runs_servers_and_socket() {
        let servers = [("0001".to_owned(), "127.0.0.1:1".to_owned()), ("0002".to_owned(), "127.0.0.1:2".to_owned())];
        let config = haproxy_config(&servers).expect("a configuration");
        let lines: Vec<&str> = config.lines().map(str::trim).collect();
        assert!(lines.contains(&"bind fd@3"));
        let server_lines: Vec<&&str> = lines.iter().filter(|l| l.starts_with("server ")).collect();
        assert_eq!(server_lines, [&"server 0001 127.0.0.1:1", &"server 0002 127.0.0.1:2"]);
        assert!(lines.iter().any(|l| l.starts_with("use-server")), "the routing is the shipped one");
    }
}
