# The front door. `make run` boots the machine in QEMU; `make test` runs
# every test; `make bench` measures. Each installs what a fresh machine lacks.

SHELL := /bin/bash
CARGO ?= cargo
QEMU ?= qemu-system-x86_64
# Extra words for the hypervisor's command line, e.g. `make run ARGS=loglvl=debug`.
ARGS ?=

.PHONY: all run test bench lint images deps help

all: images

help:
	@echo "make run    boot the default machine (toolstack/machines/default) in QEMU with xl boot (Ctrl-A X quits; ARGS='loglvl=debug' adds boot options);"
	@echo "           drive it from another terminal with target/debug/xl (xl list, xl create CFG, xl destroy NAME, ...)"
	@echo "make test   run every test: host unit tests, ring tests, and QEMU boot tests"
	@echo "make bench  run the benchmarks and print their tables"
	@echo "make lint   clippy over the workspace and the bare-metal image"

# What a fresh machine lacks: QEMU (Debian's qemu-system-x86) and the Rust
# target (rustup installs it from rust-toolchain.toml on first use).
deps:
	@if ! command -v $(QEMU) >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "make: installing QEMU (Debian package qemu-system-x86)"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >/dev/null || exit 1; \
		else \
			echo "make: $(QEMU) is missing; install it with: sudo apt-get install qemu-system-x86" >&2; \
			exit 1; \
		fi; \
	fi
	@command -v $(CARGO) >/dev/null 2>&1 || { echo "make: cargo is missing; install Rust with rustup" >&2; exit 1; }
	@rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-none || rustup target add x86_64-unknown-none

images: deps
	$(CARGO) build --release -p xen-core -p hello-domain -p probe-domain -p control-agent -p driver-kernel --target x86_64-unknown-none --target-dir target/images

run: images
	@$(CARGO) build --quiet -p toolstack --bin xl
	@target/debug/xl boot --append "$(ARGS)"

test: images lint
	@echo "test: host unit tests, ring tests and QEMU boot tests (each QEMU test boots a machine under TCG)"
	$(CARGO) test --workspace
	@echo "test: loom model of the shared ring's memory ordering (the longest part: about 8 minutes on 2 cores)"
	RUSTFLAGS="--cfg loom" $(CARGO) test -p ring-protocol --release --test loom --target-dir target/loom

lint: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release -p xen-core -p guest-runtime -p hello-domain -p probe-domain -p control-agent -p driver-kernel --target x86_64-unknown-none --target-dir target/images -- -D warnings

bench: images
	@echo "bench: ring vs rtrb vs ArrayQueue (median of 5 interleaved runs; the table goes into BENCHMARKS.md by hand)"
	$(CARGO) run --release -p ring-protocol --example ring_report -- 1000000 5
	$(CARGO) bench -p ring-protocol --bench ring_vs_queues
	$(CARGO) run --release -p xen-tests --bin qemu-bench
