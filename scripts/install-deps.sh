#!/usr/bin/env bash
# Installs the Debian 12 packages walrus needs to build, test and run; only what is
# missing, so a second call costs one dpkg query. Used by `make run` and `make test`.
set -euo pipefail

# Build and runtime libraries.
BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libisal-dev
)
# Test-only tools: etcd's own WAL package for interoperability, libfiu for fault
# injection on real binaries, promtool for exposition checks, clang for fuzzing,
# openssl for the certificates of the TLS tests.
TEST_PACKAGES=(
  golang-go golang-etcd-server-dev etcd-server etcd-client
  libfiu-dev fiu-utils
  prometheus
  clang libclang-rt-14-dev
  python3
  openssl
)

want=("${BUILD_PACKAGES[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${TEST_PACKAGES[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
