//! The `mcpServers` JSON that desktop MCP clients use, read as upstreams, so users can
//! point mcpgw at the file they already have:
//! `{"mcpServers": {"NAME": {"command": …, "args": […], "env": {…}}}}`, or `"url"` with an
//! optional `"type"` of `"sse"` or `"http"` for remote servers. Keys mcpgw does not use
//! (clients add their own, such as `autoApprove`) are logged and ignored; `"disabled": true`
//! is honoured.

use std::collections::BTreeMap;

use mcpgw_core::{UpstreamKind, UpstreamSpec};
use serde_json::{Map, Value};

use crate::config::upstreams::{check_headers, valid_name};

/// The upstreams described by the JSON text, in the order written.
pub(crate) fn upstreams(text: &str) -> Result<Vec<UpstreamSpec>, String> {
    let root: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| format!("{}:{}: {e}", e.line(), e.column()))?;
    for key in root.keys().filter(|k| *k != "mcpServers") {
        tracing::info!(key, "ignoring a top-level key mcpgw does not use");
    }
    let servers = root.get("mcpServers").and_then(Value::as_object).ok_or("the JSON has no \"mcpServers\" object")?;
    let mut specs = Vec::new();
    for (name, server) in servers {
        let server = server.as_object().ok_or_else(|| format!("mcpServers.{name} must be an object"))?;
        if server.get("disabled").and_then(Value::as_bool) == Some(true) {
            tracing::info!(upstream = %name, "skipping a disabled server");
            continue;
        }
        if !valid_name(name) {
            return Err(format!("mcpServers.{name}: a name is 1 to 64 letters, digits, '_' or '-'"));
        }
        const USED: [&str; 8] = ["command", "args", "env", "cwd", "url", "type", "headers", "disabled"];
        for key in server.keys().filter(|k| !USED.contains(&k.as_str())) {
            tracing::info!(upstream = %name, key, "ignoring a key mcpgw does not use");
        }
        let kind = match (server.get("command"), server.get("url")) {
            (Some(command), None) => UpstreamKind::Stdio {
                command: string(command, name, "command")?,
                args: strings(server.get("args"), name, "args")?,
                env: map(server.get("env"), name, "env")?,
                cwd: server.get("cwd").map(|c| string(c, name, "cwd")).transpose()?.map(Into::into),
            },
            (None, Some(url)) => {
                let url = string(url, name, "url")?;
                let headers = map(server.get("headers"), name, "headers")?;
                check_headers(&headers, &format!("mcpServers.{name}.headers"))?;
                match server.get("type").and_then(Value::as_str) {
                    Some("sse") => UpstreamKind::Sse { url, headers },
                    None | Some("http" | "streamable-http" | "streamableHttp") => UpstreamKind::Http { url, headers },
                    Some(other) => {
                        return Err(format!(
                            "mcpServers.{name}.type: unknown type {other:?} (use \"http\" or \"sse\")"
                        ));
                    }
                }
            }
            (Some(_), Some(_)) => {
                return Err(format!("mcpServers.{name}: give either \"command\" or \"url\", not both"));
            }
            (None, None) => return Err(format!("mcpServers.{name}: needs \"command\" or \"url\"")),
        };
        specs.push(UpstreamSpec::new(name.clone(), kind));
    }
    if specs.is_empty() {
        return Err("mcpServers lists no enabled server".into());
    }
    Ok(specs)
}

fn string(v: &Value, name: &str, key: &str) -> Result<String, String> {
    v.as_str().map(str::to_owned).ok_or_else(|| format!("mcpServers.{name}.{key} must be a string"))
}

fn strings(v: Option<&Value>, name: &str, key: &str) -> Result<Vec<String>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let items = v.as_array().ok_or_else(|| format!("mcpServers.{name}.{key} must be an array of strings"))?;
    items.iter().map(|i| string(i, name, key)).collect()
}

fn map(v: Option<&Value>, name: &str, key: &str) -> Result<BTreeMap<String, String>, String> {
    let Some(v) = v else { return Ok(BTreeMap::new()) };
    let object = v.as_object().ok_or_else(|| format!("mcpServers.{name}.{key} must be an object of strings"))?;
    object.iter().map(|(k, v)| Ok((k.clone(), string(v, name, &format!("{key}.{k}"))?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stdio_and_remote_servers_and_skips_disabled_ones() {
        let text = r#"{"mcpServers": {
            "fs": {"command": "npx", "args": ["-y", "server-fs", "/tmp"], "env": {"A": "1"}, "autoApprove": []},
            "off": {"command": "x", "disabled": true},
            "remote": {"url": "https://mcp.example/mcp"},
            "old": {"url": "http://127.0.0.1:9/sse", "type": "sse"}
        }, "globalShortcut": "x"}"#;
        let specs = upstreams(text).expect("valid");
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["fs", "remote", "old"]);
        assert!(
            matches!(&specs[0].kind, UpstreamKind::Stdio { command, args, .. } if command == "npx" && args.len() == 3)
        );
        assert!(matches!(&specs[1].kind, UpstreamKind::Http { .. }));
        assert!(matches!(&specs[2].kind, UpstreamKind::Sse { .. }));
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        assert!(upstreams("{}").is_err());
        assert!(upstreams(r#"{"mcpServers": {"x": {}}}"#).is_err());
        assert!(upstreams(r#"{"mcpServers": {"x": {"url": "http://a", "type": "ws"}}}"#).is_err());
        assert!(upstreams(r#"{"mcpServers": {"x": {"command": 3}}}"#).is_err());
        assert!(upstreams("{nope").is_err());
        let bad = upstreams(r#"{"mcpServers": {"x": {"url": "http://a", "headers": {"X-Key": "a\nb"}}}}"#);
        assert_eq!(bad.err().as_deref().map(|e| e.starts_with("mcpServers.x.headers.X-Key:")), Some(true));
    }
}
