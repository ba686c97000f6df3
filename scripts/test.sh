#!/usr/bin/env bash
# Runs every check the project has: installs what the tests need when it is
# missing (Debian's redis-server and redis-tools for the interop tests), then
# formatting, lints, unit tests and integration tests against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

need_install=()
command -v redis-server >/dev/null 2>&1 || need_install+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_install+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_install+=(redis-tools)
command -v ss >/dev/null 2>&1 || need_install+=(iproute2)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "Installing ${need_install[*]} for the interop tests..."
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_install[@]}" >/dev/null
fi
# The distribution's service would hold port 6379; the tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  systemctl stop redis-server || true
fi
for tool in redis-server redis-cli redis-benchmark ss; do
  command -v "$tool" >/dev/null 2>&1 || { echo "FATAL: $tool is required and could not be installed" >&2; exit 1; }
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test -- --test-threads="${TEST_THREADS:-4}"
# The backlog ring's unsafe core: Miri where a nightly toolchain with Miri
# is installed, else the same flow-controlled stress tests under
# ThreadSanitizer on the stable toolchain. One of the two always runs.
if cargo +nightly miri --version >/dev/null 2>&1; then
  echo "== backlog ring under Miri"
  ./scripts/miri-backlog.sh
else
  echo "== backlog ring under ThreadSanitizer (no nightly Miri on this machine)"
  ./scripts/tsan-backlog.sh 2
fi
# The replication bench must keep producing every row for both servers:
# a --quick run of it (timing nothing; the check fails on a missing value).
echo "== replication bench smoke run"
mkdir -p target/bench-smoke
cargo bench --bench replication -- --quick --check \
  --json target/bench-smoke/replication.json --plot target/bench-smoke
