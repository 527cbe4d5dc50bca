//! The shipped configurations stay usable: every mcpgw file in `config/examples/` and the default
//! `config/mcpgw.toml` pass `mcpgw check-config`, and the README's configuration excerpt is
//! really in the file it names.

use std::path::{Path, PathBuf};

use mcpgw_tests::run;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `mcpgw check-config FILE`: its exit code and what it printed.
fn check_config(file: &Path) -> (i32, String) {
    run(&["check-config", file.to_str().expect("a UTF-8 path")])
}

#[test]
fn every_example_and_the_default_pass_check_config() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("config/examples"))
        .expect("config/examples")
        .map(|entry| entry.expect("an entry").path())
        // mcpgw's own files; haproxy.cfg and nginx-cluster.conf are the load balancers', which
        // tests/tests/cluster.rs and nginx_cluster.rs run.
        .filter(|path| path.extension().is_some_and(|e| e == "toml" || e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the examples: {files:?}");
    files.push(repo().join("config/mcpgw.toml"));
    for file in files {
        let (code, out) = check_config(&file);
        assert_eq!(code, 0, "{}: {out}", file.display());
        assert!(out.contains(": ok ("), "{}: {out}", file.display());
    }
}

/// The README's ```toml block starts with `# FILE (excerpt)…`: each of its other lines is a
/// line of FILE, in the same order.
#[test]
fn the_readme_config_excerpt_is_in_the_file_it_names() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let block = readme.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).expect("a toml block");
    let mut lines = block.lines();
    let label = lines.next().expect("a first line");
    let name = label.strip_prefix("# ").and_then(|l| l.split(' ').next()).expect("`# FILE …` first");
    let file = std::fs::read_to_string(repo().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut rest = file.lines();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        assert!(rest.any(|l| l == line), "README's excerpt line {line:?} is not in {name} (in this order)");
    }
    let (code, out) = check_config(&repo().join(name));
    assert_eq!(code, 0, "{name}: {out}");
}
