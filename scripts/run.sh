#!/usr/bin/env bash
# `make run`: start walrusd on DATA_DIR on localhost (built by `make build`).
set -euo pipefail
build_dir=${1:-build}
data_dir=${2:-./data}
if [[ -x "$build_dir/server/walrusd" ]]; then
  mkdir -p "$data_dir"
  echo "walrusd: serving $data_dir on 127.0.0.1:7070 (metrics on 127.0.0.1:9464); Ctrl-C stops it" >&2
  exec "$build_dir/server/walrusd" --data-dir "$data_dir"
fi
echo "walrusd is not built in $build_dir (run: make build)" >&2
exit 1
