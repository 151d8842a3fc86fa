#!/usr/bin/env bash
# walrusd against Redis 7 with appendfsync always, side by side in one run, on
# loopback: 100-byte entries, one client, unary and pipelined at several depths.
#
# usage: tests/bench/daemon_vs_redis.sh BUILD_DIR OUT_DIR [DURATION_S]
# Writes OUT_DIR/daemon_vs_redis.csv and OUT_DIR/daemon_vs_redis.png (the
# plot needs python3-matplotlib, installed here if missing), prints a table.
set -euo pipefail
build=$(cd "$1" && pwd)
out=$(mkdir -p "$2" && cd "$2" && pwd)
duration=${3:-5}
anchor=$(cd "$(dirname "$0")/../../.." && pwd)/shared/bench/redis-anchor.sh
[[ -x "$anchor" ]] || anchor=/work/shared/bench/redis-anchor.sh
export BENCH_DIR=${BENCH_DIR:-$out}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
data=$(mktemp -d "$BENCH_DIR/walrusd-bench-XXXXXX")
gport=$(port); mport=$(port)
"$build/server/walrusd" --data-dir "$data" --listen "127.0.0.1:$gport" \
  --metrics-listen "127.0.0.1:$mport" 2>"$out/walrusd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
sleep 1

bench() {  # mode inflight -> json
  "$build/client/bench/walrus-bench" --server "127.0.0.1:$gport" --metrics "127.0.0.1:$mport" \
    --mode "$1" --inflight "$2" --clients 1 --entries-per-append 1 --entry-bytes 100 \
    --duration "$duration" --json
}
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

echo "depth,walrus_entries_per_sec,walrus_p50_ms,walrus_p99_ms,entries_per_fsync,redis_rps,redis_p50_ms" \
  >"$out/daemon_vs_redis.csv"
printf '%-22s %14s %10s %10s %10s %14s %10s\n' case walrus/s p50_ms p99_ms ent/fsync redis/s redis_p50
for depth in 1 4 16 64 256; do
  if ((depth == 1)); then mode=unary; else mode=stream; fi
  w=$(bench "$mode" "$depth")
  requests=$((depth == 1 ? 3000 * duration : 40000 * duration))
  r=$(bash "$anchor" 1 "$depth" "$requests" 100)
  rrps=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$r")
  rp50=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$r")
  eps=$(field "$w" entries_per_sec); p50=$(field "$w" p50_ms); p99=$(field "$w" p99_ms)
  epf=$(field "$w" entries_per_fsync)
  printf '%-22s %14.0f %10.3f %10.3f %10s %14.0f %10s\n' "$mode depth=$depth" "$eps" "$p50" \
    "$p99" "$epf" "$rrps" "$rp50"
  echo "$depth,$eps,$p50,$p99,$epf,$rrps,$rp50" >>"$out/daemon_vs_redis.csv"
done

plot_python=/usr/bin/python3  # Debian's interpreter, where python3-matplotlib installs
if ! $plot_python -c 'import matplotlib' 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-matplotlib >/dev/null 2>&1 || true
fi
$plot_python - "$out" <<'PY' || echo "(no plot: python3-matplotlib unavailable)"
import csv, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/daemon_vs_redis.csv")))
d = [int(r["depth"]) for r in rows]
fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
a.plot(d, [float(r["walrus_entries_per_sec"]) for r in rows], "o-", label="walrusd (entries/s)")
a.plot(d, [float(r["redis_rps"]) for r in rows], "s--", label="Redis appendfsync always (req/s)")
a.set_xscale("log", base=2); a.set_xlabel("appends in flight (Redis: pipeline depth)")
a.set_ylabel("durable appends per second"); a.set_title("Throughput, 1 client, 100-byte entries")
a.legend(); a.grid(alpha=.3)
b.plot(d, [float(r["walrus_p99_ms"]) for r in rows], "o-", label="walrusd p99")
b.plot(d, [float(r["walrus_p50_ms"]) for r in rows], "o:", label="walrusd p50")
b.plot(d, [float(r["redis_p50_ms"]) for r in rows], "s--", label="Redis p50")
b.set_xscale("log", base=2); b.set_xlabel("appends in flight (Redis: pipeline depth)")
b.set_ylabel("latency (ms)"); b.set_title("Latency"); b.legend(); b.grid(alpha=.3)
fig.tight_layout(); fig.savefig(f"{out}/daemon_vs_redis.png", dpi=110)
print(f"plot: {out}/daemon_vs_redis.png")
PY
