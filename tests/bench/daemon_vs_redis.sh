#!/usr/bin/env bash
# walrusd against Redis 7 with appendfsync always, side by side in one run, on
# loopback: one client, unary and pipelined at several depths, over gRPC on TCP
# and on a Unix socket, and over the local append socket (--local-socket:
# frames on a Unix socket; transport "local"); Redis over TCP; at 100- and
# 1000-byte entries;
# then the append latency across segment cuts, and 1-MiB entries through a
# stream against the disk's own sequential write + fdatasync bandwidth (dd).
#
# usage: tests/bench/daemon_vs_redis.sh BUILD_DIR OUT_DIR [DURATION_S] [SIZES]
#   SIZES: entry sizes for the depth sweep, space-separated ("100 1000")
#   BASELINE_WALRUSD=PATH (optional): another walrusd binary whose latency
#   across segment cuts is measured beside this one's, in the same run.
#   ROUNDS=N (3): rounds of the segment-cut runs (this walrusd, then the
#   baseline) and of the bandwidth runs (the disk, then walrusd).
# Writes OUT_DIR/daemon_vs_redis.csv and OUT_DIR/daemon_vs_redis.png (the
# plot, of the first size, needs python3-matplotlib, installed here if
# missing), prints a table.
set -euo pipefail
build=$(cd "$1" && pwd)
out=$(mkdir -p "$2" && cd "$2" && pwd)
duration=${3:-5}
sizes=${4:-100 1000}
rounds=${ROUNDS:-3}
anchor=$(cd "$(dirname "$0")/../../.." && pwd)/shared/bench/redis-anchor.sh
[[ -x "$anchor" ]] || anchor=/work/shared/bench/redis-anchor.sh
export BENCH_DIR=${BENCH_DIR:-$out}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
data=$(mktemp -d "$BENCH_DIR/walrusd-bench-XXXXXX")
pid=
stop_daemon() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=
  rm -rf "$data/wal" "$data/sock" "$data/local"
}
trap 'stop_daemon; rm -rf "$data"' EXIT
# A fresh daemon (and log) for every measurement: each starts at segment 0.
start_daemon() {  # [walrusd binary] [walrusd flags...]
  stop_daemon
  gport=$(port); mport=$(port)
  local binary=${1:-$build/server/walrusd} local=()
  shift || true
  # The baseline binary may predate the local socket.
  [[ "$binary" == "$build/server/walrusd" ]] && local=(--local-socket "$data/local")
  "$binary" --data-dir "$data/wal" --listen "127.0.0.1:$gport" \
    --listen "unix:$data/sock" "${local[@]}" --metrics-listen "127.0.0.1:$mport" \
    "$@" 2>>"$out/walrusd.log" &
  pid=$!
  for _ in $(seq 100); do [[ -S "$data/sock" ]] && break; sleep 0.05; done
  sleep 0.2
}

bench() {  # transport (tcp, unix, local) mode inflight entry_bytes [duration] -> json
  local target="127.0.0.1:$gport" local=()
  [[ "$1" == unix ]] && target="unix:$data/sock"
  [[ "$1" == local ]] && target="unix:$data/sock" && local=(--local-socket "$data/local")
  "$build/client/bench/walrus-bench" --server "$target" "${local[@]}" --metrics "127.0.0.1:$mport" \
    --mode "$2" --inflight "$3" --clients 1 --entries-per-append 1 --entry-bytes "$4" \
    --duration "${5:-$duration}" --json
}
# The upper bound (ms) of the bucket of walrusd's own append-duration
# histogram (enqueue to acknowledgement) that its slowest append fell in:
# whether a tail the client saw happened inside the daemon.
daemon_slowest_ms() {
  curl -s "http://127.0.0.1:$mport/metrics" | awk '
    /^walrus_append_duration_seconds_count/ { total = $2 }
    /^walrus_append_duration_seconds_bucket/ {
      match($0, /le="[^"]+"/); le[n] = substr($0, RSTART + 4, RLENGTH - 5); count[n++] = $2 }
    END { for (i = 0; i < n; i++) if (count[i] >= total) {
            print (le[i] == "+Inf" ? "+Inf" : le[i] * 1000); exit } }'
}
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
metric() {  # name -> sum of its samples on the daemon's /metrics
  curl -s "http://127.0.0.1:$mport/metrics" |
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }'
}

echo "entry_bytes,transport,depth,walrus_entries_per_sec,walrus_p50_ms,walrus_p99_ms,entries_per_fsync,redis_rps,redis_p50_ms" \
  >"$out/daemon_vs_redis.csv"
printf '%-34s %12s %9s %9s %9s %12s %9s %7s\n' case walrus/s p50_ms p99_ms ent/fsync \
  redis/s redis_p50 ratio
for size in $sizes; do
  for depth in 1 4 16 64 256; do
    if ((depth == 1)); then mode=unary; else mode=stream; fi
    requests=$((depth == 1 ? 3000 * duration : 40000 * duration))
    r=$(bash "$anchor" 1 "$depth" "$requests" "$size")
    rrps=$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$r")
    rp50=$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$r")
    for transport in tcp unix local; do
      start_daemon
      w=$(bench "$transport" "$mode" "$depth" "$size")
      eps=$(field "$w" entries_per_sec); p50=$(field "$w" p50_ms); p99=$(field "$w" p99_ms)
      epf=$(field "$w" entries_per_fsync)
      # unary: latency ratio (lower is better); stream: throughput ratio (higher is better)
      if ((depth == 1)); then
        ratio=$(python3 -c "print(f'{$p50/$rp50:.2f}')")
      else
        ratio=$(python3 -c "print(f'{$eps/$rrps:.2f}')")
      fi
      printf '%-34s %12.0f %9.3f %9.3f %9s %12.0f %9s %7s\n' \
        "${size}B $transport $mode depth=$depth" "$eps" "$p50" "$p99" "$epf" "$rrps" "$rp50" "$ratio"
      echo "$size,$transport,$depth,$eps,$p50,$p99,$epf,$rrps,$rp50" >>"$out/daemon_vs_redis.csv"
    done
  done
done
stop_daemon

# Across segment cuts: 1000-byte entries, 64 in flight, long enough to cut
# several 64 MB segments; the latency tail and the number of cuts. One run is
# one sample of a tail: with a baseline, the two alternate for ROUNDS rounds.
# Before the bandwidth runs: on this VM, after a run that filled and freed
# gigabytes of page cache (the buffered 1-MiB run), the next minute of
# appends shows stalls of 25-51 ms inside any walrusd, whatever came after
# (docs/benchmarks.md).
cuts() {  # label [walrusd binary]
  start_daemon "${2:-}"
  local w
  w=$(bench tcp stream 64 1000 "$((duration * 3))")
  echo "segment cuts ($1): 1000B tcp stream depth=64 $((duration * 3)) s:" \
    "$(field "$w" entries_per_sec) entries/s, p50 $(field "$w" p50_ms) ms," \
    "p99 $(field "$w" p99_ms) ms, p99.9 $(field "$w" p999_ms) ms, max $(field "$w" max_ms) ms," \
    "$(metric walrus_wal_segment_cuts_total) cuts," \
    "walrusd's slowest append <= $(daemon_slowest_ms) ms"
}
for round in $(seq "$rounds"); do
  cuts "this walrusd, round $round"
  if [[ -n "${BASELINE_WALRUSD:-}" ]]; then
    cuts "baseline $BASELINE_WALRUSD, round $round" "$BASELINE_WALRUSD"
  fi
done

# Bandwidth: the disk's sequential write + fdatasync, three ways (1 GiB of
# 1-MiB writes: buffered with one fdatasync at the end; every write synced,
# O_DSYNC; every write direct and synced, O_DIRECT|O_DSYNC), then 1-MiB
# entries through a stream (16 in flight) on the same file system, with
# walrusd's appends direct (its default) and buffered (--direct-io=false).
# The disk's figure moves by more than the margin between the two from one
# minute to the next, so this is done in ROUNDS rounds (3), each measuring the
# disk right before walrusd; each round's ratio is walrusd against that
# round's best disk figure, and the result is the median round.
dd_mbs() {  # dd flags... -> MB/s
  local line
  line=$(dd if=/dev/zero of="$data/dd" bs=1M count=1024 "$@" 2>&1 | tail -1)
  rm -f "$data/dd"
  python3 -c "
import re,sys
m = re.search(r'(\d+) bytes .* copied, ([0-9.]+) s', sys.argv[1])
print(f'{int(m.group(1)) / float(m.group(2)) / 1e6:.1f}')" "$line"
}
ratios=()
for round in $(seq "$rounds"); do
  disk_stream=$(dd_mbs conv=fdatasync)
  disk_dsync=$(dd_mbs oflag=dsync)
  disk_direct=$(dd_mbs oflag=direct,dsync)
  disk_mbs=$(python3 -c "print(max($disk_stream, $disk_dsync, $disk_direct))")
  echo "round $round: disk: dd bs=1M count=1024 conv=fdatasync: $disk_stream MB/s;" \
    "oflag=dsync: $disk_dsync MB/s; oflag=direct,dsync: $disk_direct MB/s"
  for flags in --direct-io --direct-io=false; do
    start_daemon "" "$flags"
    w=$(bench tcp stream 16 1048576 "$((duration * 2))")
    walrus_mbs=$(field "$w" mb_per_sec)
    ratio=$(python3 -c "print(f'{100 * $walrus_mbs / $disk_mbs:.0f}')")
    [[ "$flags" == --direct-io ]] && ratios+=("$ratio")
    echo "round $round: walrus $flags: 1-MiB entries, stream, 16 in flight: $walrus_mbs MB/s" \
      "of entry data ($ratio % of the round's best disk figure, $disk_mbs MB/s)," \
      "p50 $(field "$w" p50_ms) ms, p99 $(field "$w" p99_ms) ms," \
      "walrus_wal_direct_io $(metric walrus_wal_direct_io)"
  done
done
echo "1-MiB entries, walrus --direct-io against the disk, per round: ${ratios[*]} %;" \
  "median $(python3 -c "import statistics,sys; print(statistics.median(map(int, sys.argv[1:])))" "${ratios[@]}") %"
stop_daemon

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
size = rows[0]["entry_bytes"]
fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
for transport, style in (("tcp", "o-"), ("unix", "^-"), ("local", "v-")):
    sel = [r for r in rows if r["entry_bytes"] == size and r["transport"] == transport]
    d = [int(r["depth"]) for r in sel]
    a.plot(d, [float(r["walrus_entries_per_sec"]) for r in sel], style,
           label=f"walrusd {transport} (entries/s)")
    b.plot(d, [float(r["walrus_p50_ms"]) for r in sel], style, label=f"walrusd {transport} p50")
sel = [r for r in rows if r["entry_bytes"] == size and r["transport"] == "tcp"]
d = [int(r["depth"]) for r in sel]
a.plot(d, [float(r["redis_rps"]) for r in sel], "s--", label="Redis appendfsync always (req/s)")
b.plot(d, [float(r["redis_p50_ms"]) for r in sel], "s--", label="Redis p50")
a.set_xscale("log", base=2); a.set_xlabel("appends in flight (Redis: pipeline depth)")
a.set_ylabel("durable appends per second")
a.set_title(f"Throughput, 1 client, {size}-byte entries"); a.legend(); a.grid(alpha=.3)
b.set_xscale("log", base=2); b.set_xlabel("appends in flight (Redis: pipeline depth)")
b.set_ylabel("latency (ms)"); b.set_title("Latency (p50)"); b.legend(); b.grid(alpha=.3)
fig.tight_layout(); fig.savefig(f"{out}/daemon_vs_redis.png", dpi=110)
print(f"plot: {out}/daemon_vs_redis.png")
PY
