#!/usr/bin/env bash
# Runs the replication ring's stress tests under ThreadSanitizer on the
# stable toolchain (RUSTC_BOOTSTRAP unlocks -Zsanitizer; the runtime ships
# with rust-std). The standard library itself is not instrumented without
# -Zbuild-std (which needs rust-src), so TSan cannot see std's futex-based
# Mutex and channel hand-offs and reports races inside them (the waiter
# list, the test harness). This script therefore fails only on reports
# about the ring's bytes: an access in write_at, read_at or send_to_fd.
# Only the flow-controlled variants run: the full stress test overruns
# readers on purpose, which races by design (see the module doc).
# Usage: scripts/tsan-backlog.sh [rounds]   (default 5 runs of each test)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
target_dir="${CARGO_TARGET_DIR:-target}/tsan"
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer"
bin=$(cargo test --lib --target x86_64-unknown-linux-gnu --target-dir "$target_dir" --no-run \
  --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="cascade":
        print(m["executable"])' | tail -1)
[ -n "$bin" ] || { echo "FATAL: could not build the TSan test binary" >&2; exit 1; }
log=$(mktemp)
bad=0
for t in stress_miri_lapping stress_miri_free_running; do
  for i in $(seq "$rounds"); do
    TSAN_OPTIONS="halt_on_error=0 report_signal_unsafe=0" \
      "$bin" --exact "repl::backlog::tests::$t" --test-threads=1 >"$log" 2>&1 || true
    grep -q "test result: ok" "$log" || { echo "$t: test failed"; cat "$log"; exit 1; }
    # One report per block between the WARNING line and the next separator.
    ring=$(awk '/WARNING: ThreadSanitizer/{blk=""; inb=1} inb{blk=blk $0 "\n"} /^==================$/ && inb && blk!=""{ if (blk ~ /backlog::Backlog>::(write_at|read_at|send_to_fd)/) n++; inb=0 } END{print n+0}' "$log")
    total=$(grep -c "WARNING: ThreadSanitizer" "$log" || true)
    echo "$t run $i: $total reports, $ring on the ring itself"
    if [ "$ring" -ne 0 ]; then bad=1; cp "$log" "/tmp/tsan-$t-$i.log"; fi
  done
done
rm -f "$log"
[ "$bad" -eq 0 ] || { echo "ring races found; logs in /tmp/tsan-*.log" >&2; exit 1; }
echo "no race on the ring"
