//! The cost of a cluster: three mcpgw instances with `[cluster]` on one Redis behind HAProxy
//! (`config/examples/haproxy.cfg` as shipped), against the same three with `store = "none"`
//! (ids tagged for HAProxy, nothing shared) behind the same HAProxy configuration, which tells
//! the store's cost (the target); against one mcpgw without `[cluster]` behind the same
//! HAProxy configuration and the same mcpgw reached directly, on the built-in `echo`; and a
//! cluster of one (one mcpgw with `[cluster]` on the same Redis, behind its own HAProxy), the
//! store's cost on one instance.
//!
//! Each round measures, at each size of `plan.cluster_sizes` and on each transport, the five
//! under the same closed-loop load, one after the other (the order reversed every other
//! round). The cluster's server CPU is its three instances' summed; HAProxy's and Redis's are
//! read beside it, and counted neither as the server's nor as other work. Then the cluster and
//! the three without the store at one fixed rate (an open loop: the same offered load). Then the session
//! set-up rate through each HAProxy; then a takeover: one instance (another each round),
//! holding `plan.takeover_sessions` idle Streamable HTTP sessions, is killed (SIGKILL), and
//! once it is gone each of those sessions makes one call at once, on a new connection through
//! HAProxy, timed from the kill to its answer. The instance is then started again and waited for in
//! HAProxy's pool, so that every round starts with three.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::{Conn, Parked, Profile, Session, Target, within};
use crate::clusters::{Clusters, counter};
use crate::launch::target_of;
use crate::load::{self, Held, Latency, LoadResult, SetupResult, Watched};
use crate::rate::RateResult;

use super::bench::{Bench, Profiles};

/// Three mcpgw with `[cluster]`, HAProxy in front, Redis behind.
pub(crate) const CLUSTER: &str = "3 mcpgw + HAProxy + Redis";
/// Three mcpgw with `[cluster] store = "none"` behind the same HAProxy configuration.
pub(crate) const BARE: &str = "3 mcpgw + HAProxy";
/// One mcpgw without `[cluster]` behind the same HAProxy configuration.
pub(crate) const SINGLE_LB: &str = "1 mcpgw + HAProxy";
/// The same mcpgw, called directly.
pub(crate) const SINGLE: &str = "1 mcpgw";
/// One mcpgw with `[cluster]` on the same Redis, behind HAProxy.
pub(crate) const SOLO: &str = "1 mcpgw + HAProxy + Redis";
/// The longest wait for sessions on one instance, or for an instance back in the pool.
const POOL_WAIT: Duration = Duration::from_secs(60);

/// One transport at one size in one round: the five, same load. In `cluster.cpu.beside_s` and
/// `solo.cpu.beside_s`, HAProxy then Redis; in `bare.cpu.beside_s` and
/// `single_lb.cpu.beside_s`, HAProxy.
#[derive(Serialize)]
pub(crate) struct ClusterRound {
    pub(crate) round: usize,
    pub(crate) transport: String,
    pub(crate) sessions: usize,
    pub(crate) cluster: LoadResult,
    pub(crate) bare: LoadResult,
    pub(crate) single_lb: LoadResult,
    pub(crate) single: LoadResult,
    pub(crate) solo: LoadResult,
}

/// The cluster and the same three without the store at one fixed rate
/// (`plan.cluster_rate` over `plan.cluster_rate_sessions`), one transport, one round: the
/// store's cost under the same offered load. (In the closed loop the cluster, each request
/// waiting one store round trip more, runs at a lower rate than the three without it, and a
/// server's CPU per request rises as its rate falls: fewer requests share each wake-up.)
#[derive(Serialize)]
pub(crate) struct ClusterRate {
    pub(crate) round: usize,
    pub(crate) transport: String,
    pub(crate) cluster: RateResult,
    pub(crate) bare: RateResult,
}

/// Sessions set up back to back through each HAProxy, one transport, one round.
#[derive(Serialize)]
pub(crate) struct ClusterSetup {
    pub(crate) round: usize,
    pub(crate) transport: String,
    pub(crate) cluster: SetupResult,
    pub(crate) single_lb: SetupResult,
}

/// One instance killed while it held `sessions` idle sessions.
#[derive(Default, Serialize)]
pub(crate) struct Takeover {
    pub(crate) round: usize,
    /// The killed instance's node tag.
    pub(crate) node: String,
    pub(crate) sessions: usize,
    /// Sessions whose call was answered.
    pub(crate) answered: usize,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    /// What the other instances' `mcpgw_session_takeovers_total` rose by.
    pub(crate) takeovers: u64,
    /// From the kill until the process was gone (reaped), in milliseconds: the calls start then.
    pub(crate) gone_ms: f64,
    /// From the kill to each session's answer.
    pub(crate) latency: Latency,
}

/// Everything the cluster rows measured.
#[derive(Default, Serialize)]
pub(crate) struct ClusterRows {
    pub(crate) rounds: Vec<ClusterRound>,
    pub(crate) rates: Vec<ClusterRate>,
    pub(crate) setup: Vec<ClusterSetup>,
    pub(crate) takeovers: Vec<Takeover>,
}

/// The CPU microseconds per unit of work of the `i`th process beside the server, over a run
/// that did `per_second` units a second.
pub(crate) fn beside_us(cpu: &load::Cpu, i: usize, per_second: f64) -> Option<f64> {
    let secs = cpu.beside_s.get(i).copied().flatten()?;
    let done = per_second * cpu.window_s;
    (done > 0.0).then(|| secs / done * 1e6)
}

/// Measures the cluster rows (module doc); every process is started here and stopped at the end.
pub(crate) async fn cluster(bench: &mut Bench, mcpgw: &Path, out_dir: &Path, p: &Profiles) -> Result<ClusterRows> {
    bench.clock.say("cluster rows: starting Redis, three mcpgw with [cluster] and HAProxy; one mcpgw and its HAProxy");
    let mut clusters = Clusters::start(mcpgw, out_dir, 3).await?;
    let measured = measure(bench, &mut clusters, mcpgw, p).await;
    for name in clusters.stop() {
        bench.note(format!("{name} did not exit 0 on SIGTERM after the cluster rows"));
    }
    measured
}

async fn measure(bench: &mut Bench, c: &mut Clusters, mcpgw: &Path, p: &Profiles) -> Result<ClusterRows> {
    let mut rows = ClusterRows::default();
    let targets = [
        target_of(&c.haproxy)?,
        target_of(&c.single_haproxy)?,
        target_of(&c.single)?,
        target_of(&c.solo_haproxy)?,
        target_of(&c.bare_haproxy)?,
    ];
    for round in 1..=bench.plan.rounds {
        for sessions in bench.plan.cluster_sizes.clone() {
            for profile in [&p.json, &p.sse, &p.legacy] {
                let mut order = [0, 4, 1, 2, 3];
                if round % 2 == 0 {
                    order.reverse();
                }
                let mut found: [Option<LoadResult>; 5] = [None, None, None, None, None];
                for which in order {
                    let (name, watched) = match which {
                        0 => (CLUSTER, c.cluster_watched()),
                        1 => (SINGLE_LB, c.single_lb_watched()),
                        2 => (SINGLE, Watched::from(Some(c.single.pid))),
                        3 => (SOLO, c.solo_watched()),
                        _ => (BARE, c.bare_watched()),
                    };
                    let target = &targets[which];
                    let what = format!("{name}, {}, {sessions} sessions", profile.transport.label());
                    let result = bench
                        .quietest(c, &what, async |bench, c| {
                            let result = bench.load_at(target, watched.clone(), name, profile, sessions).await;
                            c.check_alive()?;
                            Ok(result)
                        })
                        .await?;
                    found[which] = Some(result);
                }
                let [Some(cluster), Some(single_lb), Some(single), Some(solo), Some(bare)] = found else {
                    bail!("a cluster row was not measured")
                };
                rows.rounds.push(ClusterRound {
                    round,
                    transport: profile.transport.label().to_owned(),
                    sessions,
                    cluster,
                    bare,
                    single_lb,
                    single,
                    solo,
                });
            }
        }
        for profile in [&p.json, &p.sse, &p.legacy] {
            rows.rates.push(rate(bench, c, &targets, profile, round).await?);
        }
        for profile in [&p.json, &p.legacy] {
            let mut order = [0, 1];
            if round % 2 == 0 {
                order.reverse();
            }
            let mut found: [Option<SetupResult>; 2] = [None, None];
            for which in order {
                let (name, watched) = match which {
                    0 => (CLUSTER, c.cluster_watched()),
                    _ => (SINGLE_LB, c.single_lb_watched()),
                };
                found[which] = Some(setup(bench, name, &targets[which], watched, profile).await?);
                c.check_alive()?;
            }
            let [Some(cluster), Some(single_lb)] = found else { bail!("a cluster set-up row was not measured") };
            rows.setup.push(ClusterSetup {
                round,
                transport: profile.transport.label().to_owned(),
                cluster,
                single_lb,
            });
        }
        rows.takeovers.push(takeover(bench, c, mcpgw, &p.json, round).await?);
    }
    Ok(rows)
}

/// The cluster and the same three without the store at the plan's fixed rate, in this
/// round's order.
async fn rate(
    bench: &mut Bench,
    c: &mut Clusters,
    targets: &[Target; 5],
    profile: &Profile,
    round: usize,
) -> Result<ClusterRate> {
    let (rate, sessions) = (bench.plan.cluster_rate, bench.plan.cluster_rate_sessions);
    let mut order = [0, 4];
    if round.is_multiple_of(2) {
        order.reverse();
    }
    let (mut cluster, mut bare) = (None, None);
    for which in order {
        let (name, watched) = if which == 0 { (CLUSTER, c.cluster_watched()) } else { (BARE, c.bare_watched()) };
        let target = &targets[which];
        let what = format!("{name}, {}, open loop at {rate:.0} req/s", profile.transport.label());
        let result = bench
            .quietest(c, &what, async |bench, c| {
                let result = bench.open_loop_at(target, watched.clone(), name, profile, sessions, rate).await;
                c.check_alive()?;
                Ok(result)
            })
            .await?;
        if result.errors > 0 {
            bench.note(format!(
                "{what}: {} errors; first: {}",
                result.errors,
                result.first_error.clone().unwrap_or_default()
            ));
        }
        if which == 0 {
            cluster = Some(result);
        } else {
            bare = Some(result);
        }
    }
    let (Some(cluster), Some(bare)) = (cluster, bare) else { bail!("a cluster open-loop row was not measured") };
    Ok(ClusterRate { round, transport: profile.transport.label().to_owned(), cluster, bare })
}

/// Sessions set up back to back against `target` (load.rs `setup_rate`).
async fn setup(bench: &mut Bench, name: &str, target: &Target, watched: Watched, p: &Profile) -> Result<SetupResult> {
    let plan = &bench.plan;
    let result = load::setup_rate(target, p, plan.setup_workers, plan.warmup(), plan.duration(), watched).await?;
    bench.report_setup(name, p, &result);
    Ok(result)
}

/// Kills the instance of this round (module doc) and times each of its sessions' next call.
async fn takeover(bench: &mut Bench, c: &mut Clusters, mcpgw: &Path, p: &Profile, round: usize) -> Result<Takeover> {
    let n = bench.plan.takeover_sessions;
    let victim = (round - 1) % c.instances.len();
    let tag = c.instances[victim].tag.clone();
    let target = target_of(&c.haproxy)?;
    let (mine, others) = sessions_on(&target, p, &tag, n).await?;
    let survivors: Vec<Target> = c
        .instances
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, instance)| instance.target())
        .collect::<Result<_>>()?;
    let before = takeovers(&survivors).await?;

    bench.clock.say(format!("takeover: killing mcpgw {tag} (SIGKILL), the holder of {n} idle sessions"));
    let Some(proc) = c.instances[victim].proc.take() else { bail!("mcpgw {tag} is not running") };
    let killed = Instant::now();
    proc.kill();
    // Until it is gone its listening socket still takes connections (and would reset them):
    // the calls start once it is reaped, their time counted from the signal.
    let gone = killed.elapsed();
    let mut set = JoinSet::new();
    for parked in mine {
        let (target, p) = (target.clone(), p.clone());
        set.spawn(async move {
            let call = async {
                let mut session = Session::unpark(parked, Conn::open(&target).await?);
                within("tools/call", session.call(&target, &p)).await?;
                Ok::<Session, anyhow::Error>(session)
            };
            let outcome = call.await;
            (killed.elapsed(), outcome)
        });
    }
    let gone_ms = gone.as_secs_f64() * 1e3;
    let mut row = Takeover { round, node: tag.clone(), sessions: n, gone_ms, ..Takeover::default() };
    let (mut nanos, mut answered) = (Vec::with_capacity(n), Vec::with_capacity(n));
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((took, Ok(session))) => {
                nanos.push(took.as_nanos() as u64);
                answered.push(session);
            }
            Ok((_, Err(e))) => {
                row.errors += 1;
                row.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(e) => {
                row.errors += 1;
                row.first_error.get_or_insert_with(|| format!("a session task failed: {e}"));
            }
        }
    }
    row.answered = nanos.len();
    row.latency = Latency::of(nanos);
    row.takeovers = takeovers(&survivors).await?.saturating_sub(before);
    bench.clock.say(format!(
        "takeover of mcpgw {tag}'s {n} sessions: gone {:.1} ms after the kill; {} answered, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms from the kill; {} takeovers counted; {} errors",
        row.gone_ms,
        row.answered,
        row.latency.p50_ms,
        row.latency.p99_ms,
        row.latency.max_ms,
        row.takeovers,
        row.errors
    ));
    if row.errors > 0 {
        bench.note(format!(
            "takeover, round {round}: {} of {n} sessions failed their call; first: {}",
            row.errors,
            row.first_error.clone().unwrap_or_default()
        ));
    }

    let failed = load::close_sessions(&Arc::new(target.clone()), answered).await + close_parked(&target, others).await;
    if failed > 0 {
        bench.note(format!("takeover, round {round}: {failed} sessions could not be closed afterwards"));
    }
    c.instances[victim].restart(mcpgw).await?;
    wait_in_pool(&target, p, &tag).await?;
    c.check_alive()?;
    Ok(row)
}

/// The sum of the instances' `mcpgw_session_takeovers_total`.
async fn takeovers(instances: &[Target]) -> Result<u64> {
    let mut total = 0.0;
    for target in instances {
        total += counter(target, "mcpgw_session_takeovers_total").await?;
    }
    Ok(total as u64)
}

/// Opens sessions through HAProxy until `n` of them were minted by the instance tagged `tag`
/// (new sessions go round robin): (those `n`, the others).
async fn sessions_on(target: &Target, p: &Profile, tag: &str, n: usize) -> Result<(Vec<Parked>, Vec<Parked>)> {
    let deadline = Instant::now() + POOL_WAIT;
    let (mut mine, mut others) = (Vec::with_capacity(n), Vec::new());
    while mine.len() < n {
        if Instant::now() >= deadline {
            bail!("{} of {n} sessions on mcpgw {tag} after {POOL_WAIT:?} (is it in HAProxy's pool?)", mine.len());
        }
        let mut held = Held::default();
        load::hold(target, p, &mut held, (n - mine.len()) * 3, 64).await;
        if held.errors > 0 {
            bail!("opening sessions through HAProxy: {}", held.first_error.unwrap_or_default());
        }
        for parked in held.sessions {
            if mine.len() < n && parked.id().is_some_and(|id| id.starts_with(tag)) {
                mine.push(parked);
            } else {
                others.push(parked);
            }
        }
    }
    Ok((mine, others))
}

/// Ends idle sessions (DELETE), one after the other on one connection; the failures.
async fn close_parked(target: &Target, parked: Vec<Parked>) -> usize {
    let (mut failures, mut conn) = (0, None);
    for session in parked {
        let c = match conn.take() {
            Some(c) => c,
            None => match Conn::open(target).await {
                Ok(c) => c,
                Err(_) => {
                    failures += 1;
                    continue;
                }
            },
        };
        match Session::unpark(session, c).close(target).await {
            Ok(c) => conn = Some(c),
            Err(_) => failures += 1,
        }
    }
    failures
}

/// Waits until HAProxy sends new sessions to the instance tagged `tag` again (its health
/// checks saw it up): a session opened every 50 ms, and closed, until one is minted there.
async fn wait_in_pool(target: &Target, p: &Profile, tag: &str) -> Result<()> {
    let deadline = Instant::now() + POOL_WAIT;
    while Instant::now() < deadline {
        let session = Session::open(target, p, Conn::open(target).await?).await?;
        let (parked, conn) = session.park();
        let there = parked.id().is_some_and(|id| id.starts_with(tag));
        Session::unpark(parked, conn).close(target).await?;
        if there {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("mcpgw {tag} was not back in HAProxy's pool within {POOL_WAIT:?}")
}
