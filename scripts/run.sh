#!/usr/bin/env bash
# `make run`: start walrusd on DATA_DIR on localhost (built by `make build`).
set -euo pipefail
build_dir=${1:-build}
data_dir=${2:-./data}
if [[ -x "$build_dir/server/walrusd" ]]; then
  mkdir -p "$data_dir"
  # Huge pages for the heap: recovery and ReadAll parse every entry into fresh
  # memory; 4 KiB page faults are half their cost (docs/benchmarks.md).
  export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}
  echo "walrusd: serving $data_dir on 127.0.0.1:7070 (metrics on 127.0.0.1:9464); Ctrl-C stops it" >&2
  exec "$build_dir/server/walrusd" --data-dir "$data_dir"
fi
cat >&2 <<EOT
walrus is built ($build_dir). The daemon is not part of this build yet; inspect a WAL with:
  $build_dir/client/walrusctl dump DIR --format=text
  $build_dir/client/walrusctl verify DIR
  $build_dir/client/walrusctl repair DIR
EOT
