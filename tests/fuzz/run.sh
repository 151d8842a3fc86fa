#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (see tests/fuzz/CMakeLists.txt).
#
#   run.sh build SRC_DIR FUZZ_BUILD_DIR      configure + build with clang
#   run.sh run FUZZ_BUILD_DIR SRC_DIR TARGET fuzz TARGET (decoder, readall,
#                                            append_plan) from the seed corpus
#
# Each target has a floor of executions (below; docs/reliability.md quotes
# them), and the run fails unless libFuzzer reports at least that many beyond
# replaying the corpus it starts from: the figure is a floor, not whatever a
# busy machine managed. WALRUS_FUZZ_RUNS asks for more (a longer campaign);
# it cannot lower a floor. WALRUS_FUZZ_SECONDS (default 900) only caps the
# time; a run that hits the cap first has missed its floor and fails. New inputs are kept in
# FUZZ_BUILD_DIR/corpus/TARGET, so a later run continues from them, and a
# crashing input is written to FUZZ_BUILD_DIR/artifacts/.
set -euo pipefail

mode=$1
case "$mode" in
  build)
    src=$2 out=$3
    for tool in clang clang++; do
      command -v "$tool" >/dev/null || { echo "run.sh: $tool missing (scripts/install-deps.sh --test)" >&2; exit 1; }
    done
    launcher=()
    if command -v ccache >/dev/null; then
      launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    fi
    cmake -S "$src/tests/fuzz" -B "$out" -G Ninja -DCMAKE_C_COMPILER=clang \
      -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
    cmake --build "$out" -j "${WALRUS_FUZZ_JOBS:-2}"
    ;;
  run)
    out=$2 src=$3 target=$4
    seconds=${WALRUS_FUZZ_SECONDS:-900}
    case "$target" in
      decoder) floor=100000 ;;
      readall) floor=10000 ;;
      append_plan) floor=200000 ;;
      *) echo "run.sh: unknown fuzz target $target" >&2; exit 64 ;;
    esac
    runs=${WALRUS_FUZZ_RUNS:-$floor}
    if [[ "$runs" -lt "$floor" ]]; then
      echo "fuzz $target: WALRUS_FUZZ_RUNS=$runs is below the floor $floor; running $floor"
      runs=$floor
    fi
    mkdir -p "$out/corpus/$target" "$out/artifacts"
    # Replaying the corpus counts as executions too: the floor is on top.
    replays=$(( $(ls "$out/corpus/$target" | wc -l) + $(ls "$src/tests/fuzz/corpus/$target" | wc -l) ))
    log="$out/$target.log"
    status=0
    started=$(date +%s)
    "$out/${target}_fuzzer" -runs="$(( runs + replays ))" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$out/artifacts/$target-" \
      "$out/corpus/$target" "$src/tests/fuzz/corpus/$target" >"$log" 2>&1 || status=$?
    if [[ $status -ne 0 ]]; then
      tail -n 60 "$log"
      echo "fuzz $target: FAILED (exit $status); reproducer in $out/artifacts/" >&2
      exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    units=$(ls "$out/corpus/$target" | wc -l)
    took=$(( $(date +%s) - started ))
    if [[ -z "$execs" || "$execs" -lt $(( runs + replays )) ]]; then
      echo "fuzz $target: only ${execs:-no} executions of the $runs required beyond $replays corpus replays (time cap $seconds s)" >&2
      exit 1
    fi
    echo "fuzz $target: $execs executions ($replays corpus replays + at least $runs, floor $floor) in $took s, no crash; corpus $units new units"
    ;;
  *)
    echo "usage: run.sh build SRC OUT | run OUT SRC TARGET" >&2
    exit 64
    ;;
esac
