#!/usr/bin/env bash
# Builds and runs walrus's Go code: the client packages (client/go) and the
# Raft cluster programs (tests/raft), offline, in GOPATH mode against
# Debian's Go packages (scripts/install-deps.sh --test installs them).
#
#   run.sh build SRC_DIR BUILD_DIR      GOPATH in BUILD_DIR/go, generated
#                                       protos, gofmt and vet checks, the
#                                       programs in BUILD_DIR/go/bin
#   run.sh unit SRC_DIR BUILD_DIR       go test of the client packages (they
#                                       start BUILD_DIR/server/walrusd)
#   run.sh etcd SRC_DIR BUILD_DIR       the 3-node etcd raft cluster
#   run.sh hashicorp SRC_DIR BUILD_DIR  the 3-node hashicorp raft cluster
#
# WALRUS_RAFT_SECONDS is the length of a cluster's faulty phase (default 20;
# 3600 for the hour-long run). Scratch data goes to BUILD_DIR/raft-scratch/
# and is removed after a passing run.
set -euo pipefail

mode=$1
src=$(cd "$2" && pwd)
build=$(cd "$3" && pwd)
gopath=$build/go
export GO111MODULE=off GOFLAGS= GOPATH=$gopath:/usr/share/gocode GOCACHE=$gopath/cache
packages=(walrus/client/go/walrus walrus/client/go/etcdraft walrus/client/go/hashiraft)
programs=(etcdcluster hashicluster latency)

command -v go >/dev/null || { echo "run.sh: go missing (scripts/install-deps.sh --test)" >&2; exit 1; }

case "$mode" in
  build)
    bash "$src/client/go/gopath.sh" "$src" "$gopath"
    unformatted=$(gofmt -l "$src/client/go" "$src/tests/raft")
    if [[ -n "$unformatted" ]]; then
      echo "run.sh: not gofmt-formatted:" >&2
      echo "$unformatted" >&2
      exit 1
    fi
    all=("${packages[@]}" walrus/tests/raft/internal/daemon walrus/tests/raft/internal/check)
    for p in "${programs[@]}"; do all+=("walrus/tests/raft/$p"); done
    go vet "${all[@]}"
    mkdir -p "$gopath/bin"
    for p in "${programs[@]}"; do
      go build -o "$gopath/bin/$p" "walrus/tests/raft/$p"
    done
    echo "built ${programs[*]} in $gopath/bin"
    ;;
  unit)
    WALRUSD=$build/server/walrusd go test -count=1 "${packages[@]}"
    ;;
  etcd | hashicorp)
    program=etcdcluster
    [[ $mode == hashicorp ]] && program=hashicluster
    scratch=$build/raft-scratch/$program
    "$gopath/bin/$program" --walrusd "$build/server/walrusd" --dir "$scratch"
    rm -rf "$scratch"
    ;;
  *)
    echo "usage: run.sh build|unit|etcd|hashicorp SRC_DIR BUILD_DIR" >&2
    exit 64
    ;;
esac
