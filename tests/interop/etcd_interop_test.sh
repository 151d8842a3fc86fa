#!/usr/bin/env bash
# etcd <-> walrus WAL interoperability test.
#
# usage: tests/interop/etcd_interop_test.sh BUILD_DIR SCRATCH_DIR
#
#   BUILD_DIR    holds the C++ binaries: BUILD_DIR/client/walrusctl/walrusctl and
#                BUILD_DIR/tests/wal_workload. The Go tool (etcdwal, linked
#                against etcd 3.4's own wal package) is built into
#                BUILD_DIR/etcdwal/ and rebuilt only when its source changes.
#   SCRATCH_DIR  work directory (created; a per-run subdirectory is used and
#                removed at the end unless the run failed or KEEP_SCRATCH=1).
#
# Parts (select with PARTS="a b c", default "a b c"; "d" is an extra):
#   a  etcd writes (etcdwal write), walrusctl dump == etcdwal dump, also at
#      every snapshot marker; a wrong snapshot term / unknown snapshot index
#      fails on both sides.
#   b  walrus writes (wal_workload), etcdwal dump --mode read and --mode write
#      == walrusctl dump, also at every snapshot marker.
#   c  a real single-member etcd (snapshot-count 50) on loopback, a few hundred
#      puts, SIGTERM; walrusctl dump == etcdwal dump of member/wal at snapshot
#      0, at the last snapshot marker and at every other marker.
#   e  walrusd writes over gRPC (walrusctl append of a workload dump); etcd
#      reads its WAL in both modes exactly as walrus does, and it holds what
#      was sent.
#   d  (extra) damaged WALs: bit flips in a record and in a crc record and a
#      missing segment fail on both sides; a torn tail fails like etcd's
#      write mode, and with --allow-torn-tail reads like etcd's read mode.
#
# Environment knobs: SEEDS (default "1 2 3"), ENTRIES (1500),
# SEG_SIZES ("4096 32768 262144"), ETCD_KEYS (320), PARTS, KEEP_SCRATCH,
# ETCDWAL (use this prebuilt etcdwal binary instead of building one),
# CMD_TIMEOUT (per command, seconds, default 60).
#
# Exit status 0 when every check passes, 1 when one fails, 2 on usage or
# setup errors. The last line is "N passed, N failed".

set -u -o pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR SCRATCH_DIR" >&2
  exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD_DIR=$(mkdir -p "$1" && cd "$1" && pwd)
mkdir -p "$2" || exit 2
SCRATCH_ROOT=$(cd "$2" && pwd)
SCRATCH=$(mktemp -d "$SCRATCH_ROOT/interop.XXXXXX") || exit 2

SEEDS=${SEEDS:-"1 2 3"}
ENTRIES=${ENTRIES:-1500}
SEG_SIZES=${SEG_SIZES:-"4096 32768 262144"}
ETCD_KEYS=${ETCD_KEYS:-320}
PARTS=${PARTS:-"a b c"}
CMD_TIMEOUT=${CMD_TIMEOUT:-60}

WALRUSCTL="$BUILD_DIR/client/walrusctl/walrusctl"
WAL_WORKLOAD="$BUILD_DIR/tests/wal_workload"

PASSED=0
FAILED=0
# Extra arguments for the etcdwal / walrusctl side of a comparison (part d).
E_EXTRA=()
W_EXTRA=()
FAILURES=()
ETCD_PID=""

log() { printf '%s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); log "  ok    $*"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$*"); log "  FAIL  $*"; }
die() { log "ERROR: $*" >&2; exit 2; }
want_part() { [[ " $PARTS " == *" $1 "* ]]; }

cleanup() {
  local rc=$?
  if [[ -n "$ETCD_PID" ]] && kill -0 "$ETCD_PID" 2>/dev/null; then
    kill -KILL "$ETCD_PID" 2>/dev/null
    wait "$ETCD_PID" 2>/dev/null
  fi
  if [[ "${KEEP_SCRATCH:-0}" == 1 || $FAILED -gt 0 || $rc -ne 0 ]]; then
    log "scratch kept in $SCRATCH"
  else
    rm -rf "$SCRATCH"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run OUTFILE CMD... : runs CMD with a timeout, stdout to OUTFILE,
# stderr to OUTFILE.err. Returns CMD's exit status (124 on timeout).
run() {
  local out=$1
  shift
  timeout -k 5 "$CMD_TIMEOUT" "$@" >"$out" 2>"$out.err"
}

# show_diff A B : what differs between two dumps, with long lines cut.
show_diff() {
  diff -u --label "$3" --label "$4" "$1" "$2" | head -n 40 | cut -c1-240 | sed 's/^/        /'
  local na nb
  na=$(wc -l <"$1")
  nb=$(wc -l <"$2")
  log "        ($3: $na lines, $4: $nb lines)"
}

# same FILE_A NAME_A FILE_B NAME_B : 0 when identical, else prints the diff.
same() {
  cmp -s "$1" "$3" && return 0
  show_diff "$1" "$3" "$2" "$4"
  return 1
}

errtext() { head -c 300 "$1.err" | tr '\n' ' ' | sed 's/ *$//'; }

# ------------------------------------------------------------------ setup

build_etcdwal() {
  if [[ -n "${ETCDWAL:-}" ]]; then
    [[ -x "$ETCDWAL" ]] || die "ETCDWAL=$ETCDWAL is not executable"
    return
  fi
  local outdir="$BUILD_DIR/etcdwal" src="$HERE/etcdwal/main.go"
  ETCDWAL="$outdir/etcdwal"
  if [[ -x "$ETCDWAL" && "$ETCDWAL" -nt "$src" ]]; then
    return
  fi
  command -v go >/dev/null || die "go not found (apt-get install golang-go)"
  [[ -d /usr/share/gocode/src/go.etcd.io/etcd/wal ]] ||
    die "etcd sources missing (apt-get install golang-etcd-server-dev)"
  mkdir -p "$outdir"
  log "building etcdwal -> $ETCDWAL"
  # GOPATH mode against Debian's /usr/share/gocode; a file outside GOPATH
  # builds as package command-line-arguments.
  if ! (cd "$outdir" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS="" \
    GOCACHE="$outdir/gocache" GOTOOLCHAIN=local GOPROXY=off \
    timeout 300 go build -o "$ETCDWAL.tmp" "$src"); then
    die "go build of $src failed"
  fi
  mv -f "$ETCDWAL.tmp" "$ETCDWAL"
}

free_ports() { # prints N distinct free TCP ports on 127.0.0.1
  local n=$1
  if command -v python3 >/dev/null && python3 - "$n" <<'EOF' 2>/dev/null; then
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
    return 0
  fi
  # Fallback: random high ports nobody answers on (bash /dev/tcp).
  local ports=() p tries=0
  while ((${#ports[@]} < n && tries < 200)); do
    tries=$((tries + 1))
    p=$((20000 + RANDOM % 40000))
    [[ " ${ports[*]} " == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      ports+=("$p")
    fi
  done
  ((${#ports[@]} == n)) || return 1
  echo "${ports[*]}"
}

need_walrus() {
  local missing=0
  for b in "$WALRUSCTL" "$@"; do
    if [[ ! -x "$b" ]]; then
      log "missing binary: $b"
      missing=1
    fi
  done
  return $missing
}

# check_pair DIR TAG EXTRA_ARGS... : etcd (read mode) vs walrus dump. Sets
# WHY on failure (and prints the diff); returns 0 when identical.
check_pair() {
  local dir=$1 tag=$2
  shift 2
  local e="$SCRATCH/out/$tag.etcd.jsonl" w="$SCRATCH/out/$tag.walrus.jsonl" rc=0
  WHY=""
  NOTE=""
  run "$e" "$ETCDWAL" dump "$dir" "$@" "${E_EXTRA[@]}" || rc=$?
  if ((rc != 0)); then
    local erc=$rc
    rc=0
    run "$w" "$WALRUSCTL" dump "$dir" --format=jsonl "$@" "${W_EXTRA[@]}" || rc=$?
    if ((rc != 0)) && [[ "${ALLOW_BOTH_FAIL:-0}" == 1 ]]; then
      NOTE="both fail (etcd: $(errtext "$e"); walrus exit $rc: $(errtext "$w"))"
      return 0
    fi
    if ((rc != 0)); then
      WHY="etcdwal dump failed (exit $erc): $(errtext "$e"); walrusctl too (exit $rc): $(errtext "$w")"
    else
      WHY="etcd fails (exit $erc: $(errtext "$e")) but walrusctl dump succeeded ($(wc -l <"$w") lines)"
    fi
    return 1
  fi
  run "$w" "$WALRUSCTL" dump "$dir" --format=jsonl "$@" "${W_EXTRA[@]}" || rc=$?
  if ((rc != 0)); then
    WHY="walrusctl dump exited $rc where etcd succeeded: $(errtext "$w")"
    return 1
  fi
  NLINES=$(wc -l <"$e")
  if ! cmp -s "$e" "$w"; then
    WHY="etcd and walrus dumps differ"
    show_diff "$e" "$w" etcd walrus
    return 1
  fi
  return 0
}

# dump_pair LABEL DIR TAG EXTRA_ARGS... : check_pair, counted.
dump_pair() {
  local label=$1
  shift
  local tmp="$SCRATCH/out/$2.diff"
  if check_pair "$@" >"$tmp" 2>&1; then
    pass "$label ($NLINES lines)"
    return 0
  fi
  fail "$label: $WHY"
  cat "$tmp"
  return 1
}

# must_both_fail LABEL DIR ARGS... : etcd fails, and walrus must too.
must_both_fail() {
  local label=$1 dir=$2 tag=$3
  shift 3
  local e="$SCRATCH/out/$tag.etcd.jsonl" w="$SCRATCH/out/$tag.walrus.jsonl" rc
  rc=0
  run "$e" "$ETCDWAL" dump "$dir" "$@" "${E_EXTRA[@]}" || rc=$?
  if ((rc == 0)); then
    fail "$label: harness expected etcd to fail, but it succeeded"
    return 1
  fi
  local etxt
  etxt=$(errtext "$e")
  rc=0
  run "$w" "$WALRUSCTL" dump "$dir" --format=jsonl "$@" "${W_EXTRA[@]}" || rc=$?
  if ((rc == 0)); then
    fail "$label: etcd fails ($etxt) but walrusctl dump exited 0 ($(wc -l <"$w") lines)"
    return 1
  fi
  pass "$label: both fail (etcd: $etxt; walrus exit $rc: $(errtext "$w"))"
}

# markers_check LABEL DIR TAG : compare at every snapshot marker, and check
# that a wrong term and an unknown index fail on both sides.
markers_check() {
  local label=$1 dir=$2 tag=$3 idx term n=0 all=""
  if ! run "$SCRATCH/out/$tag.snaps" "$ETCDWAL" snapshots "$dir"; then
    fail "$label: etcdwal snapshots failed: $(errtext "$SCRATCH/out/$tag.snaps")"
    return
  fi
  local nm bad=0 detail="$SCRATCH/out/$tag.markers.log" tmp="$SCRATCH/out/$tag.marker.tmp"
  local badlist=() first="" notes=()
  nm=$(wc -l <"$SCRATCH/out/$tag.snaps")
  : >"$detail"
  while read -r idx term; do
    all+=" $idx"
    n=$((n + 1))
    # etcd may legitimately refuse a marker (e.g. one whose entry was later
    # truncated away, or one that sits in a segment before the one etcd
    # starts reading at): then walrus must refuse it too.
    if ALLOW_BOTH_FAIL=1 check_pair "$dir" "$tag.snap$n" --snapshot-index "$idx" \
      --snapshot-term "$term" >"$tmp" 2>&1; then
      [[ -z "$NOTE" ]] || notes+=("@$idx/$term $NOTE")
    else
      bad=$((bad + 1))
      badlist+=("$idx/$term")
      { echo "@snapshot $idx/$term: $WHY"; cat "$tmp"; } >>"$detail"
      [[ -n "$first" ]] || first="@snapshot $idx/$term: $WHY"
    fi
  done <"$SCRATCH/out/$tag.snaps"
  if ((bad == 0)); then
    pass "$label: identical at all $nm snapshot markers${notes[0]:+ (${#notes[@]} refused by both)}"
    local note
    for note in "${notes[@]}"; do log "        note: $note"; done
  else
    fail "$label: $bad of $nm snapshot markers differ: ${badlist[*]:0:12}"
    log "        first: $first"
    sed -n '2,40p' "$detail" | awk '/^@snapshot /{exit} {print}'
    log "        (all details: $detail)"
  fi
  # A marker index with the wrong term: wal: snapshot mismatch.
  read -r idx term < <(awk '$1 > 0' "$SCRATCH/out/$tag.snaps" | tail -n 1)
  if [[ -n "${idx:-}" ]]; then
    must_both_fail "$label wrong term @$idx/$((term + 1))" "$dir" "$tag.wrongterm" \
      --snapshot-index "$idx" --snapshot-term "$((term + 1))"
  fi
  # An index that is no marker: wal: snapshot not found.
  local noidx=$(( $(awk 'END{print $1}' "$SCRATCH/out/$tag.snaps") + 1 ))
  while [[ " $all " == *" $noidx "* ]]; do noidx=$((noidx + 1)); done
  must_both_fail "$label unknown snapshot @$noidx/1" "$dir" "$tag.nosnap" \
    --snapshot-index "$noidx" --snapshot-term 1
}

nsegs() { find "$1" -maxdepth 1 -name '*.wal' | wc -l; }

# ----------------------------------------------------------------- part a

part_a() {
  log "== part a: etcd writes, walrus reads"
  need_walrus || { fail "part a: walrusctl not built"; return; }
  local seed seg dir tag
  for seed in $SEEDS; do
    for seg in $SEG_SIZES; do
      tag="a-s$seed-g$seg"
      dir="$SCRATCH/$tag"
      if ! run "$SCRATCH/out/$tag.write" "$ETCDWAL" write "$dir" --seed "$seed" \
        --entries "$ENTRIES" --segment-size "$seg"; then
        fail "$tag: etcdwal write failed: $(errtext "$SCRATCH/out/$tag.write")"
        continue
      fi
      log " $tag: $(sed 's/^etcdwal write: //' "$SCRATCH/out/$tag.write.err")"
      dump_pair "$tag dump" "$dir" "$tag"
      markers_check "$tag" "$dir" "$tag"
    done
  done
}

# ----------------------------------------------------------------- part b

part_b() {
  log "== part b: walrus writes, etcd reads"
  need_walrus "$WAL_WORKLOAD" || { fail "part b: walrusctl/wal_workload not built"; return; }
  local seed seg dir tag w e rc said
  for seed in $SEEDS; do
    for seg in $SEG_SIZES; do
      tag="b-s$seed-g$seg"
      dir="$SCRATCH/$tag"
      rc=0
      run "$SCRATCH/out/$tag.write" "$WAL_WORKLOAD" "$dir" --seed "$seed" \
        --entries "$ENTRIES" --segment-size "$seg" || rc=$?
      if ((rc != 0)); then
        fail "$tag: wal_workload exited $rc: $(errtext "$SCRATCH/out/$tag.write")"
        continue
      fi
      said=$(cat "$SCRATCH/out/$tag.write" "$SCRATCH/out/$tag.write.err" | head -n 1 | cut -c1-200)
      log " $tag: wal_workload wrote $(nsegs "$dir") segments${said:+; $said}"
      w="$SCRATCH/out/$tag.walrus.jsonl"
      rc=0
      run "$w" "$WALRUSCTL" dump "$dir" --format=jsonl || rc=$?
      if ((rc != 0)); then
        fail "$tag: walrusctl dump of its own WAL exited $rc: $(errtext "$w")"
        continue
      fi
      e="$SCRATCH/out/$tag.etcd-read.jsonl"
      rc=0
      run "$e" "$ETCDWAL" dump "$dir" --mode read || rc=$?
      if ((rc != 0)); then
        fail "$tag: etcd OpenForRead+ReadAll failed: $(errtext "$e")"
      else
        if same "$w" walrus "$e" etcd-read >"$e.diff"; then
          pass "$tag dump --mode read ($(wc -l <"$w") lines)"
        else
          fail "$tag dump --mode read: walrus and etcd-read dumps differ"
          cat "$e.diff"
        fi
      fi
      # Write mode zeroes the tail after the last valid record and takes
      # file locks: run it on a copy so the original stays as written.
      rm -rf "$dir.wcopy"
      cp -a "$dir" "$dir.wcopy"
      e="$SCRATCH/out/$tag.etcd-write.jsonl"
      rc=0
      run "$e" "$ETCDWAL" dump "$dir.wcopy" --mode write || rc=$?
      if ((rc != 0)); then
        fail "$tag: etcd Open(write)+ReadAll failed: $(errtext "$e")"
      else
        if same "$w" walrus "$e" etcd-write >"$e.diff"; then
          pass "$tag dump --mode write ($(wc -l <"$w") lines)"
        else
          fail "$tag dump --mode write: walrus and etcd-write dumps differ"
          cat "$e.diff"
        fi
      fi
      markers_check "$tag" "$dir" "$tag"
    done
  done
}

# ----------------------------------------------------------------- part c

ensure_etcd() {
  if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
    return 0
  fi
  log " installing etcd-server etcd-client with apt-get"
  if [[ $(id -u) -ne 0 ]]; then
    log " not root: cannot install etcd"
    return 1
  fi
  (DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq etcd-server etcd-client ||
    { timeout 300 apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq etcd-server etcd-client; }) \
    >"$SCRATCH/out/apt.log" 2>&1
  command -v etcd >/dev/null && command -v etcdctl >/dev/null
}

wait_healthy() { # wait_healthy ENDPOINT SECONDS
  local deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$ETCD_PID" 2>/dev/null; then
      return 1
    fi
    if ETCDCTL_API=3 timeout 5 etcdctl --endpoints="$1" --dial-timeout=2s \
      --command-timeout=3s endpoint health >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.3
  done
  return 1
}

stop_etcd() { # SIGTERM, wait up to 30 s, then SIGKILL
  local deadline=$((SECONDS + 30))
  kill -TERM "$ETCD_PID" 2>/dev/null
  while kill -0 "$ETCD_PID" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$ETCD_PID" 2>/dev/null; then
    log " etcd ignored SIGTERM for 30 s, killing it"
    kill -KILL "$ETCD_PID" 2>/dev/null
    wait "$ETCD_PID" 2>/dev/null
    ETCD_PID=""
    return 1
  fi
  wait "$ETCD_PID" 2>/dev/null
  ETCD_PID=""
  return 0
}

part_c() {
  log "== part c: a real etcd member"
  if ! ensure_etcd; then
    fail "part c: etcd/etcdctl not available and could not be installed"
    return
  fi
  log " $(etcd --version 2>/dev/null | head -n 1)"
  local ports cport pport attempt data="$SCRATCH/etcd-data" ep started=0
  for attempt in 1 2 3; do
    ports=$(free_ports 2) || { fail "part c: no free ports"; return; }
    read -r cport pport <<<"$ports"
    ep="http://127.0.0.1:$cport"
    rm -rf "$data"
    log " starting etcd (client $cport, peer $pport, data $data)"
    etcd --name interop --data-dir "$data" \
      --listen-client-urls "$ep" --advertise-client-urls "$ep" \
      --listen-peer-urls "http://127.0.0.1:$pport" \
      --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
      --initial-cluster "interop=http://127.0.0.1:$pport" \
      --initial-cluster-state new --initial-cluster-token "interop-$$" \
      --snapshot-count 50 >"$SCRATCH/out/etcd.log" 2>&1 &
    ETCD_PID=$!
    if wait_healthy "$ep" 30; then
      started=1
      break
    fi
    log " etcd did not become healthy (attempt $attempt); log tail:"
    tail -n 5 "$SCRATCH/out/etcd.log" | cut -c1-200 | sed 's/^/    /'
    if [[ -n "$ETCD_PID" ]]; then
      kill -KILL "$ETCD_PID" 2>/dev/null
      wait "$ETCD_PID" 2>/dev/null
      ETCD_PID=""
    fi
  done
  if ((!started)); then
    fail "part c: etcd did not start"
    return
  fi
  # A few hundred puts, several per etcdctl call would hide nothing: raft
  # makes one entry per put either way, so use one put per call but keep
  # the whole loop under a deadline.
  local i deadline=$((SECONDS + 120)) nput=0 nfail=0
  for ((i = 0; i < ETCD_KEYS; i++)); do
    if ((SECONDS >= deadline || nfail >= 5)); then
      log " giving up on puts after $i attempts ($nfail failures in a row)"
      break
    fi
    if ETCDCTL_API=3 timeout 10 etcdctl --endpoints="$ep" --dial-timeout=3s \
      --command-timeout=5s put "key-$i" "value-$i-$RANDOM$RANDOM" >/dev/null 2>>"$SCRATCH/out/etcdctl.err"; then
      nput=$((nput + 1))
      nfail=0
    else
      nfail=$((nfail + 1))
    fi
  done
  # One delete and an overwrite for variety.
  ETCDCTL_API=3 timeout 10 etcdctl --endpoints="$ep" del key-0 >/dev/null 2>&1
  ETCDCTL_API=3 timeout 10 etcdctl --endpoints="$ep" put key-1 overwritten >/dev/null 2>&1
  if ! stop_etcd; then
    fail "part c: etcd did not stop on SIGTERM"
  fi
  if ((nput < ETCD_KEYS * 9 / 10)); then
    fail "part c: only $nput of $ETCD_KEYS puts succeeded: $(head -c 300 "$SCRATCH/out/etcdctl.err")"
    return
  fi
  log " $nput puts done; etcd stopped"
  local waldir="$data/member/wal"
  [[ -d "$waldir" ]] || { fail "part c: $waldir missing"; return; }
  if ! run "$SCRATCH/out/c.snaps" "$ETCDWAL" snapshots "$waldir"; then
    fail "part c: etcdwal snapshots failed: $(errtext "$SCRATCH/out/c.snaps")"
    return
  fi
  local nsnap last_i last_t
  nsnap=$(wc -l <"$SCRATCH/out/c.snaps")
  read -r last_i last_t < <(tail -n 1 "$SCRATCH/out/c.snaps")
  log " member/wal: $(nsegs "$waldir") segment(s), $nsnap snapshot markers, last $last_i/$last_t"
  if ! need_walrus; then
    fail "part c: walrusctl not built"
    return
  fi
  dump_pair "etcd member dump @snapshot 0" "$waldir" c.snap0
  if ((nsnap < 2)); then
    fail "part c: etcd wrote no snapshot marker besides 0 (snapshot-count 50, $nput puts)"
  else
    dump_pair "etcd member dump @snapshot $last_i/$last_t (last marker)" "$waldir" c.snaplast \
      --snapshot-index "$last_i" --snapshot-term "$last_t"
    markers_check "etcd member" "$waldir" c
  fi
  local nent
  nent=$(grep -c '"kind":"entry"' "$SCRATCH/out/c.snap0.etcd.jsonl" 2>/dev/null || true)
  if ((${nent:-0} < nput)); then
    fail "part c: etcd's WAL has only ${nent:-0} entries for $nput puts"
  fi
}

# ----------------------------------------------------------------- part d

# Part e: a WAL written through walrusd (gRPC appends from walrusctl) is read
# by etcd's wal package exactly as walrus reads it, and holds what was sent.
part_e() {
  log "== part e: walrusd writes over gRPC, etcd reads"
  local walrusd="$BUILD_DIR/server/walrusd"
  need_walrus "$WAL_WORKLOAD" || { fail "part e: walrusctl/wal_workload not built"; return; }
  [[ -x "$walrusd" ]] || { fail "part e: walrusd not built"; return; }
  local seed tag src data sock pid rc sent got e
  for seed in $SEEDS; do
    tag="e-s$seed"
    src="$SCRATCH/$tag-src"
    data="$SCRATCH/$tag-data"
    sock="$SCRATCH/$tag.sock"
    run "$SCRATCH/out/$tag.write" "$WAL_WORKLOAD" "$src" --seed "$seed" --entries "$ENTRIES" \
      --segment-size 32768 || { fail "$tag: wal_workload failed"; continue; }
    sent="$SCRATCH/out/$tag.sent.jsonl"
    run "$sent" "$WALRUSCTL" dump "$src" --format=jsonl || { fail "$tag: dump failed"; continue; }
    "$walrusd" --data-dir "$data" --listen "unix:$sock" --metrics-listen "" \
      --segment-size-bytes 32768 2>"$SCRATCH/out/$tag.walrusd.log" &
    pid=$!
    for _ in $(seq 100); do [[ -S "$sock" ]] && break; sleep 0.1; done
    rc=0
    timeout "$CMD_TIMEOUT" "$WALRUSCTL" --server "unix:$sock" append --jsonl "$sent" \
      >"$SCRATCH/out/$tag.append" 2>&1 || rc=$?
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if ((rc != 0)); then
      fail "$tag: walrusctl append exited $rc: $(head -c 300 "$SCRATCH/out/$tag.append")"
      continue
    fi
    got="$SCRATCH/out/$tag.walrus.jsonl"
    run "$got" "$WALRUSCTL" dump "$data/wal" --format=jsonl || { fail "$tag: dump of walrusd's WAL failed"; continue; }
    if same "$sent" sent "$got" walrusd >"$got.diff"; then
      pass "$tag walrusd holds what was sent ($(wc -l <"$sent") lines, $(nsegs "$data/wal") segments)"
    else
      fail "$tag: walrusd's WAL differs from what was sent"
      cat "$got.diff"
    fi
    for mode in read write; do
      e="$SCRATCH/out/$tag.etcd-$mode.jsonl"
      rm -rf "$data/wal.copy" && cp -a "$data/wal" "$data/wal.copy"
      if run "$e" "$ETCDWAL" dump "$data/wal.copy" --mode "$mode" &&
        same "$got" walrus "$e" "etcd-$mode" >"$e.diff"; then
        pass "$tag etcd --mode $mode reads walrusd's WAL identically"
      else
        fail "$tag etcd --mode $mode: $(errtext "$e")"
        cat "$e.diff" 2>/dev/null
      fi
    done
  done
}

part_d() {
  log "== part d (extra): damaged WALs"
  need_walrus || { fail "part d: walrusctl not built"; return; }
  command -v python3 >/dev/null || { log " python3 missing, skipping part d"; return; }
  local base="$SCRATCH/d-base" dir
  if ! run "$SCRATCH/out/d.write" "$ETCDWAL" write "$base" --seed 7 \
    --entries 800 --segment-size 16384; then
    fail "part d: etcdwal write failed: $(errtext "$SCRATCH/out/d.write")"
    return
  fi
  local segs
  mapfile -t segs < <(find "$base" -maxdepth 1 -name "*.wal" -printf "%f\n" | sort)
  ((${#segs[@]} >= 4)) || { fail "part d: only ${#segs[@]} segments"; return; }
  # mutate DIR FILE ACTION: byte-level damage using a frame walker.
  mutate() {
    python3 - "$@" <<'EOF'
import struct, sys
path, action = sys.argv[1], sys.argv[2]
b = bytearray(open(path, 'rb').read())
recs = []  # (offset, total length)
off = 0
while off + 8 <= len(b):
    l = struct.unpack_from('<Q', b, off)[0]
    if l == 0:
        break
    n = l & ~(0xff << 56)
    pad = (l >> 56) & 7 if l >> 63 else 0
    recs.append((off, 8 + n + pad))
    off += 8 + n + pad
if action == 'flip-data':      # a byte in the middle of a data record
    o, n = recs[len(recs) // 2]
    b[o + n // 2] ^= 0x10
elif action == 'flip-crc':     # the crc value of the leading crc record
    o, n = recs[0]
    b[o + 12] ^= 0x01
elif action == 'torn':         # cut the last record in half
    o, n = recs[-1]
    b = b[:o + n // 2]
open(path, 'wb').write(b)
EOF
  }
  dir="$SCRATCH/d-flipdata"
  cp -a "$base" "$dir" && mutate "$dir/${segs[2]}" flip-data
  must_both_fail "record bit flip in ${segs[2]}" "$dir" d.flipdata
  dir="$SCRATCH/d-flipcrc"
  cp -a "$base" "$dir" && mutate "$dir/${segs[3]}" flip-crc
  must_both_fail "crc-record bit flip in ${segs[3]}" "$dir" d.flipcrc
  dir="$SCRATCH/d-gap"
  cp -a "$base" "$dir" && rm -f "$dir/${segs[2]}"
  must_both_fail "missing segment ${segs[2]}" "$dir" d.gap
  # A torn last record: etcd's write mode (what a restarting member uses)
  # fails, and so must a plain walrus dump; etcd's read mode stops at the
  # tear, and so must walrus with --allow-torn-tail.
  dir="$SCRATCH/d-torn"
  cp -a "$base" "$dir" && mutate "$dir/${segs[-1]}" torn
  W_EXTRA=(--allow-torn-tail)
  dump_pair "torn last record in ${segs[-1]}: etcd read mode vs walrus --allow-torn-tail" "$dir" d.torn
  W_EXTRA=()
  cp -a "$dir" "$dir.w"
  E_EXTRA=(--mode write)
  must_both_fail "torn last record in ${segs[-1]}: etcd write mode vs walrus dump" "$dir.w" d.tornw
  E_EXTRA=()
}

# ------------------------------------------------------------------- main

mkdir -p "$SCRATCH/out"
log "etcd interop: BUILD_DIR=$BUILD_DIR SCRATCH=$SCRATCH"
log "  parts: $PARTS; seeds: $SEEDS; entries: $ENTRIES; segment sizes: $SEG_SIZES"
build_etcdwal
log "  etcdwal: $ETCDWAL"
for p in a b c d e; do
  if want_part "$p"; then
    "part_$p"
  fi
done

log ""
if ((FAILED > 0)); then
  log "failed checks:"
  for f in "${FAILURES[@]}"; do log "  - $f"; done
fi
log "$PASSED passed, $FAILED failed"
((FAILED == 0))
