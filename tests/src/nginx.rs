//! nginx in front of a cluster's three instances ([`crate::cluster::Balancer::Nginx`]):
//! `config/examples/nginx-cluster.conf` as it is, with this cluster's addresses, included in
//! a minimal main configuration that keeps everything nginx writes in a temporary directory.
//!
//! nginx binds its port itself (a free one, found by binding port 0 first), and is ready once
//! its master process logs that it started its worker: the listening socket is open by then,
//! so connections queue even before the worker accepts them.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::cluster::{Peer, TempDir};

/// The shipped site configuration's addresses: the instances', in tag order, and its own.
const INSTANCES: [&str; 3] = ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"];
const LISTEN: &str = "listen 127.0.0.1:8080;";

/// Starts nginx over `servers` (`(tag, authority)`, tags `0001` to `0003`): its process, its
/// base URL and its directory.
pub(crate) fn start(servers: &[(&str, &str)]) -> (Peer, String, TempDir) {
    let tags: Vec<&str> = servers.iter().map(|(tag, _)| *tag).collect();
    assert_eq!(tags, ["0001", "0002", "0003"], "nginx-cluster.conf names three instances");
    let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port();
    let dir = TempDir::new("nginx");
    let site_path = dir.path().join("mcpgw-cluster.conf");
    std::fs::write(&site_path, site(servers, port)).expect("write the site configuration");
    let main_path = dir.path().join("nginx.conf");
    std::fs::write(&main_path, main_config(dir.path(), &site_path)).expect("write nginx.conf");
    let mut command = Command::new("nginx");
    command.arg("-p").arg(dir.path()).arg("-c").arg(&main_path).stdin(Stdio::null());
    let peer = Peer::spawn("nginx", command);
    peer.wait_for_log("start worker process");
    (peer, format!("http://127.0.0.1:{port}"), dir)
}

/// The shipped file with these instances' addresses and this port.
fn site(servers: &[(&str, &str)], port: u16) -> String {
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/nginx-cluster.conf"))
            .expect("config/examples/nginx-cluster.conf");
    assert!(template.contains(LISTEN), "nginx-cluster.conf listens on {LISTEN}");
    // Placeholders first, so that no address written is read again as a template's.
    let mut site = template.replace(LISTEN, &format!("listen 127.0.0.1:{port};"));
    for (n, address) in INSTANCES.iter().enumerate() {
        assert!(site.contains(address), "nginx-cluster.conf names {address}");
        site = site.replace(address, &format!("@instance{n}@"));
    }
    for (n, (_, authority)) in servers.iter().enumerate() {
        site = site.replace(&format!("@instance{n}@"), authority);
    }
    site
}

/// One worker, logs to stderr, pid and temporary files in `dir`, and the site included.
fn main_config(dir: &Path, site: &Path) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log stderr notice;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
         \x20   include {};\n}}\n",
        site.display()
    )
}
