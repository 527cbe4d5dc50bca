# mcpgw: the verbs. CI runs `make test` (through .ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO  ?= cargo
VENV   := .venv
PY     := $(VENV)/bin/python
TS_DIR := tests/ts
# The binary the end-to-end tests start (all three suites use it).
export MCPGW_BIN := $(CURDIR)/target/debug/mcpgw
# tests/fixture, the dual-era upstream the TypeScript suite starts (`mcpgw-fixture --http`).
export MCPGW_FIXTURE_BIN := $(CURDIR)/target/debug/mcpgw-fixture

.PHONY: help run build build-fixture test test-rust test-python test-ts deps deps-python deps-ts lint fmt clean
.PHONY: install uninstall deb check-units test-deb
.PHONY: test-conformance
.PHONY: fuzz fuzz-smoke fuzz-build fuzz-deps fuzz-regressions

help:
	@echo "make run     start the gateway on config/mcpgw.toml (http://127.0.0.1:8080); ARGS= passes it arguments:"
	@echo "             make run ARGS=\"--config config/examples/stdio.toml\""
	@echo "make test    install what the tests need, then run every test suite"
	@echo "make test-conformance  the official MCP conformance suites (0.1.16, alpha by requirement set) through mcpgw"
	@echo "make fuzz    every fuzz target for FUZZ_SECONDS (default 60) each, corpus kept (fuzz/README.md)"
	@echo "make fuzz-smoke  the fuzz regressions, then every target for FUZZ_SMOKE_RUNS inputs (default 150000, seed 1) each"
	@echo "make lint    rustfmt check and clippy with warnings as errors"
	@echo "make check-units  verify config/mcpgw.{service,socket} offline; fail if exposure > 2.0"
	@echo "make install      release build, binary, config, units under PREFIX=/usr/local (DESTDIR= ok)"
	@echo "make uninstall    remove what install put (keeps /etc/mcpgw)"
	@echo "make deb          build a Debian package with cargo-deb (installed if missing)"
	@echo "make bench   release build, then the benchmark (~22-26 min): docs/benchmarks.md, target/bench/results.json;"
	@echo "             BENCH_QUICK=1 for a smoke run (target/bench/benchmarks-quick.md)"
	@echo "make bench-auth  only its rows with JWT auth + a 20-rule policy, and the audit log's cost"
	@echo "             (~3 min; target/bench/benchmarks-auth.md)"
	@echo "make bench-cluster  only its rows with three mcpgw behind HAProxy with Redis against three without"
	@echo "             the store and against one, and a takeover's latency (~13 min; target/bench/benchmarks-cluster.md)"
	@echo "make deps-bench  install the competing gateways the bench measures (crates/bench/peers)"
	@echo "make bench-compare BASE=<commit>  CPU/req of that commit's mcpgw against this one, alternating"
	@echo "             rounds, medians (target/bench/compare.md); BASE_BIN=<binary> instead of building"
	@echo "make profile where mcpgw's CPU goes per request, by perf under load: target/profile/summary.md;"
	@echo "             PROFILE_SECS (default 10) measured seconds, PROFILE_THREADS mcpgw's worker threads"
	@echo "             PROFILE_TRANSPORT (streamable-json, streamable-sse, legacy, stateless), PROFILE_SESSIONS"
	@echo "             (default 64), PROFILE_AUTH=1 with the JWT auth and 20-rule policy of make bench-auth"

# ARGS: the gateway's arguments, for example ARGS="--config config/examples/stdio.toml --listen 127.0.0.1:9090".
ARGS ?=
run:
	$(CARGO) run -p mcpgw -- $(ARGS)

build:
	$(CARGO) build -p mcpgw

# A build of its own, so mcpgw keeps its own rmcp features (as tests/conformance/run.sh does).
build-fixture:
	$(CARGO) build -p mcpgw-tests --bin mcpgw-fixture

# ---- test dependencies: official MCP SDK clients from PyPI and npm ----------------------
deps: deps-python deps-ts deps-auth deps-cluster

deps-python: $(VENV)/.installed
$(VENV)/.installed: tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

deps-ts: $(TS_DIR)/node_modules/.installed
$(TS_DIR)/node_modules/.installed: $(TS_DIR)/package.json $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The authorization server the auth tests start (tests/auth: oidc-provider on the Node 22 it
# supports, both from npm).
AUTH_DIR := tests/auth
.PHONY: deps-auth
deps-auth: $(AUTH_DIR)/node_modules/.installed
$(AUTH_DIR)/node_modules/.installed: $(AUTH_DIR)/package.json $(AUTH_DIR)/package-lock.json
	cd $(AUTH_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The cluster tests' peers (tests/tests/cluster.rs and nginx_cluster.rs start their own of each on
# loopback; so do the bench's cluster rows): Debian's HAProxy, redis-server and nginx, installed
# when missing (CI runs as root with no stdin, as check-units).
.PHONY: deps-cluster
deps-cluster:
	command -v haproxy >/dev/null && command -v redis-server >/dev/null && command -v nginx >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			haproxy redis-server nginx >/dev/null; }

# ---- tests --------------------------------------------------------------------------------
test: build deps test-rust test-python test-ts test-conformance fuzz-smoke check-units test-deb

test-rust: build deps-auth deps-python deps-ts deps-cluster
	$(CARGO) test --workspace

test-python: build deps-python deps-ts deps-auth
	$(PY) -m pytest tests/python -q

test-ts: build build-fixture deps-ts deps-auth
	cd $(TS_DIR) && node --test --test-reporter=spec

# ---- code hygiene -------------------------------------------------------------------------
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p mcpgw-transport -p mcpgw-core -p mcpgw

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(TS_DIR)/node_modules crates/bench/peers/.venv crates/bench/peers/node_modules

# ---- deployment: systemd units, install, Debian package (docs/deployment.md) --------------
PREFIX  ?= /usr/local
DESTDIR ?=
UNITDIR ?= /lib/systemd/system
# The units name /usr/bin/mcpgw; install rewrites that to $(PREFIX)/bin/mcpgw.
define install_unit
	sed -e 's|/usr/bin/mcpgw|$(PREFIX)/bin/mcpgw|g' -e 's|/usr/share/doc/mcpgw|$(PREFIX)/share/doc/mcpgw|g' \
		config/$(1) > $(DESTDIR)$(UNITDIR)/$(1).tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/$(1).tmp
	mv -f $(DESTDIR)$(UNITDIR)/$(1).tmp $(DESTDIR)$(UNITDIR)/$(1)
endef

# systemd-analyze comes with Debian's systemd package (it runs offline; no systemd needed).
check-units: build
	command -v systemd-analyze >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }
	packaging/check-units.sh

# The Debian package builds and lists the binary, the configuration and both units.
test-deb: deb

install:
	$(CARGO) build --release -p mcpgw
	install -D -m 0755 target/release/mcpgw $(DESTDIR)$(PREFIX)/bin/mcpgw
	install -d -m 0755 $(DESTDIR)/etc/mcpgw
	if [ -e $(DESTDIR)/etc/mcpgw/mcpgw.toml ]; then \
		echo "keeping the existing $(DESTDIR)/etc/mcpgw/mcpgw.toml"; \
	else \
		install -m 0644 config/mcpgw.toml $(DESTDIR)/etc/mcpgw/mcpgw.toml; \
	fi
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	$(call install_unit,mcpgw.service)
	$(call install_unit,mcpgw.socket)
	install -D -m 0644 docs/deployment.md $(DESTDIR)$(PREFIX)/share/doc/mcpgw/deployment.md
	install -D -m 0644 docs/configuration.md $(DESTDIR)$(PREFIX)/share/doc/mcpgw/configuration.md
	install -D -m 0644 docs/operations.md $(DESTDIR)$(PREFIX)/share/doc/mcpgw/operations.md
	install -D -m 0644 docs/security.md $(DESTDIR)$(PREFIX)/share/doc/mcpgw/security.md
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed $(DESTDIR)$(PREFIX)/bin/mcpgw and $(DESTDIR)$(UNITDIR)/mcpgw.{service,socket};"
	@echo "start it with: systemctl enable --now mcpgw.service   (docs/deployment.md)"

uninstall:
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now mcpgw.socket mcpgw.service 2>/dev/null || true; \
	fi
	rm -f $(DESTDIR)$(PREFIX)/bin/mcpgw
	rm -f $(DESTDIR)$(UNITDIR)/mcpgw.service $(DESTDIR)$(UNITDIR)/mcpgw.socket
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/mcpgw
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "kept $(DESTDIR)/etc/mcpgw (configuration) and /var/lib/mcpgw (state, if any)"

deb:
	$(CARGO) deb --version >/dev/null 2>&1 || $(CARGO) install cargo-deb --locked
	out=$$($(CARGO) deb -p mcpgw); \
		deb=$$(grep '\.deb$$' <<<"$$out"); \
		contents=$$(dpkg-deb -c "$$deb"); \
		for f in usr/bin/mcpgw etc/mcpgw/mcpgw.toml systemd/system/mcpgw.service systemd/system/mcpgw.socket; do \
			grep -q "$$f$$" <<<"$$contents" || { echo "$$deb lacks $$f" >&2; exit 1; }; \
		done; \
		echo "$$out"

# ---- the official MCP conformance suite (server scenarios) through mcpgw ------------------
# tests/conformance/run.sh installs the pinned suite and Node 22 from npm (npm ci, once), builds
# mcpgw and tests/fixture, starts mcpgw with the fixture as a stdio upstream (and an http upstream
# from the Python venv that closes test_reconnection's reply early) and runs the suite against it,
# checked against tests/conformance/expected-failures.yml: the active suite, then --suite all.
# Then tests/conformance/run-next.sh: the newest (alpha) suite's frozen requirement sets
# (--requirements 2025-11-25 and 2026-07-28) against the dual-era fixture alone (every scored
# check must pass), then through mcpgw with the fixture as an http upstream, each set checked
# against its own expected-failures-<revision>.yml.
test-conformance: build deps-python
	tests/conformance/run.sh
	CONFORMANCE_NO_BUILD=1 tests/conformance/run.sh --suite all
	CONFORMANCE_NO_BUILD=1 tests/conformance/run-next.sh --direct
	CONFORMANCE_NO_BUILD=1 tests/conformance/run-next.sh

# ---- fuzzing: cargo-fuzz (libFuzzer) on the stable toolchain (fuzz/README.md) -----------------
# fuzz/ is its own cargo workspace (own Cargo.lock and target/). Without a sanitizer cargo-fuzz
# passes rustc no -Z flag, so stable works: libFuzzer's coverage instrumentation, debug
# assertions and overflow checks; panics are the crashes. cargo-fuzz's default of one codegen
# unit is raised to 16 to keep the from-scratch build short. fuzz/run.sh runs every target and
# fails at the end if any crashed (input in fuzz/artifacts/<target>/, log in fuzz/target/fuzz-logs/).
FUZZ_SECONDS       ?= 60
# make test's smoke run is the same every time: a fixed seed and a fixed number of inputs per
# target, from the committed seeds in a scratch corpus. A random draw once turned CI red on a bug
# it happened to find that run (kept as a regression since); exploring is `make fuzz`'s job
# (random seed, time-bounded, corpus kept). With the seed fixed, a run cut short by the time cap
# on a slow machine tries a prefix of the same inputs, so it cannot find anything new either.
FUZZ_SMOKE_RUNS    ?= 150000
FUZZ_SMOKE_SEED    ?= 1
FUZZ_SMOKE_SECONDS ?= 120
FUZZ_TARGETS       ?= message_parse sse_decode sse_roundtrip headers ids
FUZZ_JOBS          ?= $(shell nproc 2>/dev/null || echo 1)
CARGO_FUZZ_VERSION ?= 0.13.2
FUZZ_FLAGS         := -O --sanitizer none --codegen-units 16
# Options every libFuzzer run gets: an input taking 10 s, or 2 GiB of memory, is a crash too.
FUZZ_LIBFUZZER     := -timeout=10 -rss_limit_mb=2048
FUZZ_ENV := CARGO="$(CARGO)" FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_FLAGS="$(FUZZ_FLAGS)" FUZZ_LIBFUZZER="$(FUZZ_LIBFUZZER)"

fuzz-deps:
	$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz --version $(CARGO_FUZZ_VERSION)

fuzz-build: fuzz-deps
	cd fuzz && $(CARGO) fuzz build $(FUZZ_FLAGS)

# Every input kept under fuzz/regressions/<target>/ runs once.
fuzz-regressions: fuzz-build
	$(FUZZ_ENV) fuzz/run.sh regressions $(FUZZ_TARGETS)

# CI: the regressions, then each target for a few seconds from its seeds (a scratch corpus).
fuzz-smoke: fuzz-regressions
	rm -rf fuzz/target/smoke-corpus
	$(FUZZ_ENV) FUZZ_LIBFUZZER="$(FUZZ_LIBFUZZER) -seed=$(FUZZ_SMOKE_SEED) -runs=$(FUZZ_SMOKE_RUNS)" \
		fuzz/run.sh fuzz $(FUZZ_SMOKE_SECONDS) target/smoke-corpus $(FUZZ_TARGETS)

# Longer runs that keep what they find in fuzz/corpus/<target>/ (git-ignored, but for seed-*).
fuzz: fuzz-regressions
	$(FUZZ_ENV) fuzz/run.sh fuzz $(FUZZ_SECONDS) corpus $(FUZZ_TARGETS)

# ---- benchmark (crates/bench, docs/benchmarks.md) ------------------------------------------
# mcpgw is built on its own so the bench crate's extra rmcp features (its baseline server)
# never reach the measured binary. The open-file limit is raised for 10,000 idle legacy
# sessions (one event-stream connection each); mcpgw-bench also raises its own soft limit.
.PHONY: bench deps-bench
bench: deps-bench deps-cluster
	$(CARGO) build --release -p mcpgw
	$(CARGO) build --release -p mcpgw-bench -p mcpgw-tests --bins
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true; \
		target/release/mcpgw-bench run $(if $(BENCH_QUICK),--quick) \
			--supergateway "$(BENCH_SUPERGATEWAY)" --mcp-proxy "$(BENCH_MCP_PROXY)" \
			--command "make bench$(if $(BENCH_QUICK), BENCH_QUICK=$(BENCH_QUICK))"

# Only the auth rows of `bench` (crates/bench/src/run/auth.rs): mcpgw with JWT auth and a
# 20-rule policy against mcpgw without, and with the audit log off; target/bench/benchmarks-auth.md.
.PHONY: bench-auth
bench-auth:
	$(CARGO) build --release -p mcpgw
	$(CARGO) build --release -p mcpgw-bench -p mcpgw-tests --bins
	target/release/mcpgw-bench run --only-auth $(if $(BENCH_QUICK),--quick) \
		--command "make bench-auth$(if $(BENCH_QUICK), BENCH_QUICK=$(BENCH_QUICK))"

# Only the cluster rows of `bench` (crates/bench/src/run/cluster.rs): three mcpgw with [cluster]
# behind HAProxy with Redis against the same three with store = "none" (the store's cost) and against
# one mcpgw, and a takeover's latency; target/bench/benchmarks-cluster.md.
.PHONY: bench-cluster
bench-cluster: deps-cluster
	$(CARGO) build --release -p mcpgw
	$(CARGO) build --release -p mcpgw-bench -p mcpgw-tests --bins
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true; \
		target/release/mcpgw-bench run --only-cluster $(if $(BENCH_QUICK),--quick) \
			--command "make bench-cluster$(if $(BENCH_QUICK), BENCH_QUICK=$(BENCH_QUICK))"

# Two mcpgw binaries on the same closed-loop rows, in alternating rounds, medians compared
# (crates/bench/src/compare.rs): BASE=<commit> builds that commit's release mcpgw in a scratch
# worktree under target/bench/base-<commit> (once), or BASE_BIN= names a binary already built.
# Writes target/bench/compare.md; COMPARE_ARGS= passes more (--rounds, --sessions, --duration).
BASE         ?=
BASE_BIN     ?=
COMPARE_ARGS ?=
.PHONY: bench-compare
bench-compare:
	$(CARGO) build --release -p mcpgw
	$(CARGO) build --release -p mcpgw-bench
	base="$(BASE_BIN)"; \
	if [ -z "$$base" ]; then \
		[ -n "$(BASE)" ] || { echo "make bench-compare: set BASE=<commit> or BASE_BIN=<binary>" >&2; exit 2; }; \
		rev=$$(git rev-parse --short=12 "$(BASE)"); dir=$(CURDIR)/target/bench/base-$$rev; \
		if [ ! -x "$$dir/target/release/mcpgw" ]; then \
			rm -rf "$$dir"; git worktree prune; git worktree add --detach "$$dir" "$$rev"; \
			(cd "$$dir" && $(CARGO) build --release -p mcpgw); \
		fi; \
		base=$$dir/target/release/mcpgw; \
	fi; \
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true; \
		target/release/mcpgw-bench compare --base "$$base" --head target/release/mcpgw $(COMPARE_ARGS)

# perf (Debian's linux-perf) samples the release mcpgw on the built-in tools while the bench's
# load generator runs 64 Streamable HTTP JSON sessions of `tools/call echo` against it
# (crates/bench/src/profile.rs). target/profile/ gets perf.data, self.txt, stacks.folded and
# summary.md. Built like `bench`, so the profiled binary is the measured one.
PROFILE_SECS    ?= 10
PROFILE_THREADS ?=
# streamable-json (default), streamable-sse, legacy or stateless; the session count (default 64);
# PROFILE_AUTH=1: with the JWT auth and 20-rule policy of the auth rows.
PROFILE_TRANSPORT ?=
PROFILE_SESSIONS ?=
PROFILE_AUTH ?=
.PHONY: profile
profile:
	command -v perf >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
	$(CARGO) build --release -p mcpgw
	$(CARGO) build --release -p mcpgw-bench
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true; \
		target/release/mcpgw-bench profile --duration $(PROFILE_SECS) \
			$(if $(PROFILE_THREADS),--worker-threads $(PROFILE_THREADS)) \
			$(if $(PROFILE_TRANSPORT),--transport $(PROFILE_TRANSPORT)) $(if $(PROFILE_SESSIONS),--sessions $(PROFILE_SESSIONS)) $(if $(PROFILE_AUTH),--auth)

# The competing gateways the bench puts in front of the same stdio fixture (crates/bench/peers):
# supergateway from npm (npm ci, pinned by package-lock.json) and mcp-proxy from PyPI, in a venv
# of its own because it needs mcp<2 and the tests' .venv has mcp 2.x. They are measured "when
# present": an install that fails only warns (its output kept in target/bench/install-*.log, which
# the report quotes when the peer is missing), the stamp is not written so the next run tries
# again, and the bench goes on and records the peer as not measured.
BENCH_PEERS        := crates/bench/peers
BENCH_VENV         := $(BENCH_PEERS)/.venv
BENCH_SUPERGATEWAY := $(CURDIR)/$(BENCH_PEERS)/node_modules/.bin/supergateway
BENCH_MCP_PROXY    := $(CURDIR)/$(BENCH_VENV)/bin/mcp-proxy

deps-bench: $(BENCH_PEERS)/node_modules/.installed $(BENCH_VENV)/.installed

$(BENCH_PEERS)/node_modules/.installed: $(BENCH_PEERS)/package.json $(BENCH_PEERS)/package-lock.json
	mkdir -p target/bench
	if (cd $(BENCH_PEERS) && npm ci --no-audit --no-fund --loglevel=error) >target/bench/install-supergateway.log 2>&1; then \
		touch $@; rm -f target/bench/install-supergateway.log; \
	else \
		echo "warning: supergateway could not be installed (target/bench/install-supergateway.log); the bench goes on without it" >&2; \
	fi

$(BENCH_VENV)/.installed: $(BENCH_PEERS)/requirements.txt
	mkdir -p target/bench
	if { python3 -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/python -m pip install --quiet \
			--disable-pip-version-check -r $(BENCH_PEERS)/requirements.txt; } >target/bench/install-mcp-proxy.log 2>&1; then \
		touch $@; rm -f target/bench/install-mcp-proxy.log; \
	else \
		echo "warning: mcp-proxy could not be installed (target/bench/install-mcp-proxy.log); the bench goes on without it" >&2; \
	fi
