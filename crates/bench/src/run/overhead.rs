//! The latency mcpgw adds over calling an upstream directly: the stdio fixture (and the
//! competing gateways in front of it) and an rmcp server as an http upstream.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::client::{Profile, Transport, get_number};
use crate::launch::{mcpgw_config, start_mcpgw, start_self, target_of};
use crate::load::{self, LoadResult};
use crate::peers::{self, PeerInfo, PeerOptions};
use crate::servers::ACCEPTED_PATH;

use super::bench::{Bench, Profiles};
use super::report::OverheadRow;

/// Where the overhead runs find their upstreams and write their configurations.
pub(crate) struct Upstreams<'a> {
    /// mcpgw's configuration with the fixture as a shared stdio upstream.
    pub(crate) stdio: &'a Path,
    pub(crate) fixture: &'a Path,
    pub(crate) peers: &'a PeerOptions,
    pub(crate) out_dir: &'a Path,
}

/// The stdio fixture: direct through rmcp's client, through mcpgw, through each peer.
pub(crate) async fn stdio(
    bench: &mut Bench,
    mcpgw: &Path,
    config: &Upstreams<'_>,
) -> Result<(Vec<OverheadRow>, Vec<PeerInfo>)> {
    let mut overhead = Vec::new();
    let fixture_profile = Profile::new(Transport::StreamableJson, "test_simple_text", &json!({}));
    let mut gw = start_mcpgw("mcpgw", mcpgw, config.stdio).await?;
    let mut peers = peers::start(config.peers, config.fixture, config.out_dir).await;
    for peer in &peers {
        if let Some(why) = &peer.info.not_measured {
            bench.note(format!("{}: not measured: {why}", peer.info.name));
        }
    }
    for size in bench.plan.overhead_sizes.clone() {
        let direct = load::stdio_direct(
            config.fixture,
            "test_simple_text",
            &json!({}),
            size,
            bench.plan.warmup(),
            bench.plan.duration(),
        )
        .await
        .unwrap_or_else(|e| LoadResult {
            errors: 1,
            first_error: Some(format!("{e:#}")),
            ..LoadResult::default()
        });
        bench.clock.say(format!(
            "stdio fixture direct (rmcp client), {size} callers: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, {} errors",
            direct.rps, direct.latency.p50_ms, direct.latency.p99_ms, direct.errors
        ));
        if direct.errors > 0 {
            bench.note(format!("direct stdio: {}", direct.first_error.clone().unwrap_or_default()));
        }
        overhead.push(OverheadRow {
            upstream: "stdio (fixture, shared)".into(),
            path: "direct: rmcp client over stdio".into(),
            result: direct,
            upstream_connections_per_call: None,
            peer: None,
        });
        let via = bench.load(&mut gw, "mcpgw → stdio fixture", &fixture_profile, size).await?;
        overhead.push(OverheadRow {
            upstream: "stdio (fixture, shared)".into(),
            path: "through mcpgw: Streamable HTTP, JSON".into(),
            result: via,
            upstream_connections_per_call: None,
            peer: None,
        });
        // A peer that did not start still gets its rows, saying why (noted once, above).
        for peer in &mut peers {
            let run = peer.measure(size, bench.plan.warmup(), bench.plan.duration()).await;
            bench.clock.say(run.summary());
            if peer.info.not_measured.is_none()
                && let Some(problem) = run.problem()
            {
                bench.note(problem);
            }
            overhead.push(OverheadRow {
                upstream: "stdio (fixture, shared)".into(),
                path: run.path,
                result: run.result,
                upstream_connections_per_call: None,
                peer: Some(run.detail),
            });
        }
    }
    gw.stop();
    for peer in &mut peers {
        peer.stop();
    }
    Ok((overhead, peers.into_iter().map(|p| p.info).collect()))
}

/// rmcp's session-mode server: direct, and as mcpgw's shared http upstream (SSE and JSON).
pub(crate) async fn http(bench: &mut Bench, mcpgw: &Path, out_dir: &Path, p: &Profiles) -> Result<Vec<OverheadRow>> {
    let mut overhead = Vec::new();
    let mut upstream = start_self("rmcp upstream (session mode)", &["serve-rmcp"])?;
    let http_config = out_dir.join("mcpgw-http.toml");
    std::fs::write(
        &http_config,
        mcpgw_config(&format!(
            "[upstreams.remote]\nkind = \"http\"\nurl = \"{}/mcp\"\nshare = \"shared\"\n",
            upstream.base
        )),
    )?;
    let mut gw = start_mcpgw("mcpgw", mcpgw, &http_config).await?;
    let upstream_target = target_of(&upstream)?;
    // New connections the upstream accepted during a run, per call; `own` are the load
    // generator's (its sessions' connections, and the probe's own connection).
    let accepted = || async { get_number(&upstream_target, ACCEPTED_PATH).await.ok() };
    let per_call = |before: Option<u64>, after: Option<u64>, own: u64, result: &LoadResult| {
        let new = after?.checked_sub(before?)?.saturating_sub(own);
        (result.calls_total > 0).then(|| new as f64 / result.calls_total as f64)
    };
    for size in bench.plan.overhead_sizes.clone() {
        let before = accepted().await;
        let direct = bench.load_quiet(&mut upstream, "rmcp upstream direct", &p.rmcp_sse, size).await?;
        let connections = per_call(before, accepted().await, size as u64 + 1, &direct);
        overhead.push(OverheadRow {
            upstream: "http (rmcp StreamableHttpService, session mode, shared)".into(),
            path: "direct: Streamable HTTP, SSE (rmcp replies SSE)".into(),
            result: direct,
            upstream_connections_per_call: connections,
            peer: None,
        });
        for (path, profile) in
            [("through mcpgw: Streamable HTTP, SSE", &p.sse), ("through mcpgw: Streamable HTTP, JSON", &p.json)]
        {
            let before = accepted().await;
            let via = bench.load(&mut gw, "mcpgw → rmcp upstream", profile, size).await?;
            let connections = per_call(before, accepted().await, 1, &via);
            if let Some(c) = connections {
                bench.clock.say(format!(
                    "  the upstream accepted {:.0} new connections from mcpgw for {} calls ({c:.2} per call)",
                    c * via.calls_total as f64,
                    via.calls_total
                ));
                if c > 0.05 {
                    bench.note(format!(
                        "mcpgw's http upstream ({path}, {size} sessions): the upstream accepted {c:.2} new TCP \
                         connections per call from mcpgw ({:.0} for {} calls); the load generator's own client \
                         reuses one keep-alive connection per session",
                        c * via.calls_total as f64,
                        via.calls_total
                    ));
                }
            }
            overhead.push(OverheadRow {
                upstream: "http (rmcp StreamableHttpService, session mode, shared)".into(),
                path: path.into(),
                result: via,
                upstream_connections_per_call: connections,
                peer: None,
            });
        }
    }
    gw.stop();
    upstream.stop();

    Ok(overhead)
}
