#!/usr/bin/env bash
# Runs the replication ring's unit and stress tests under Miri (nightly
# toolchain with the miri component): every unsafe access to the ring's
# bytes, the publication protocol, lapping, the in-flight window, SELECT
# decisions and the waiters are checked for undefined behaviour and data
# races under Miri's weak-memory emulation. The socket test and the
# deliberately overrunning stress test are ignored under Miri (see the
# module doc of src/repl/backlog.rs).
# Usage: scripts/miri-backlog.sh [seeds]   (default 1: one schedule;
#        e.g. 8 explores eight scheduler/weak-memory seeds per test)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-1}"
cargo +nightly miri --version >/dev/null 2>&1 || {
  echo "FATAL: cargo +nightly miri is not available (rustup +nightly component add miri rust-src)" >&2
  exit 1
}
flags="${MIRIFLAGS:-}"
if [ "$seeds" -gt 1 ]; then flags="$flags -Zmiri-many-seeds=0..$seeds"; fi
MIRIFLAGS="$flags" cargo +nightly miri test --lib repl::backlog
