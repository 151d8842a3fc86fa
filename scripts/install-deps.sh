#!/usr/bin/env bash
# Installs the Debian 12 packages walrus needs to build, test and run; only what is
# missing, so a second call costs one dpkg query. Used by `make run` and `make test`,
# and by the container image's build stage (no flags: the build packages only).
#   install-deps.sh [--test] [--container]
set -euo pipefail

# Build and runtime libraries of the programs.
BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev prometheus-cpp-dev
  libisal-dev libjemalloc-dev libssl-dev
)
# Test-only: GoogleTest and Google Benchmark for the tests themselves (the
# image's build stage does without them), etcd's own WAL package for
# interoperability, libfiu for fault injection on real binaries, promtool for
# exposition checks, clang for fuzzing, openssl for the certificates of the
# TLS tests, FUSE for the power-loss tests.
TEST_PACKAGES=(
  libgtest-dev libgmock-dev libbenchmark-dev
  golang-go golang-etcd-server-dev etcd-server etcd-client
  # The Go client (client/go) and the Raft clusters (tests/raft), built
  # offline in GOPATH mode: gRPC, protoc-gen-go 1.3.5 (its grpc plugin),
  # etcd raft (above) and hashicorp raft.
  golang-google-grpc-dev golang-goprotobuf-dev golang-github-hashicorp-raft-dev
  libfiu-dev fiu-utils
  prometheus
  clang libclang-rt-14-dev
  python3
  # Deployment tests: YAML for the Prometheus rules, Node.js for the
  # Kubernetes schema validation (npm packages pinned in tests/deploy).
  python3-yaml nodejs npm
  # Security tests: certificates made on the fly.
  openssl
  # Power-loss tests: walrusd on a FUSE file system that drops unsynced data.
  libfuse3-dev fuse3
)

# The container image test (ctest label `container`): podman with runc (crun
# fails on hybrid cgroups), debootstrap to make the debian:12 base locally.
CONTAINER_PACKAGES=(podman runc debootstrap)

test=0
want=("${BUILD_PACKAGES[@]}")
for arg in "$@"; do
  case "$arg" in
    --test) test=1; want+=("${TEST_PACKAGES[@]}") ;;
    --container) want+=("${CONTAINER_PACKAGES[@]}") ;;
    *) echo "usage: install-deps.sh [--test] [--container]" >&2; exit 1 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  # A Node.js that brings its own npm (e.g. from nodejs.org) counts as both.
  if [[ "$p" == nodejs || "$p" == npm ]] && command -v node >/dev/null && command -v npm >/dev/null; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The deploy tests' npm packages, exactly as locked, from the npm registry;
# again only when missing or when the lockfile changed.
if [[ $test -eq 1 ]]; then
  deploy_tests="$(cd "$(dirname "$0")/../tests/deploy" && pwd)"
  if ! cmp -s "$deploy_tests/package-lock.json" "$deploy_tests/node_modules/.walrus-lock"; then
    echo "install-deps: npm ci in $deploy_tests" >&2
    (cd "$deploy_tests" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$deploy_tests/package-lock.json" "$deploy_tests/node_modules/.walrus-lock"
  fi
fi
