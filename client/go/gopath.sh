#!/usr/bin/env bash
# Lays out a GOPATH for walrus's Go code in OUT and generates the Go protobuf
# package into it; prints nothing on success.
#
# usage: client/go/gopath.sh SRC_DIR OUT
#
#   OUT/src/walrus/client/go      -> SRC_DIR/client/go (a symlink: the client
#                                    packages are edited in the source tree)
#   OUT/src/walrus/tests/raft     -> SRC_DIR/tests/raft (the cluster programs)
#   OUT/src/walrus/proto/walruspb    generated from SRC_DIR/proto/*.proto
#
# Build with GO111MODULE=off GOPATH=OUT:/usr/share/gocode (Debian's Go
# packages: golang-google-grpc-dev, golang-goprotobuf-dev, ...). Nothing is
# downloaded.
#
# The generated code is not committed: protoc and protoc-gen-go (1.3.5, with
# its grpc plugin) are Debian packages the build has anyway, and generated
# files in the tree would drift from the .proto files.
#
# The protos are generated from a copy under a "walrus/" directory so that
# Go's registry knows them as walrus/raft.proto and walrus/record.proto:
# etcd's Go packages register files named raft.proto and record.proto, and
# the registry keys descriptors by file name.
set -euo pipefail
src=$(cd "$1" && pwd)
out=$2
mkdir -p "$out/src/walrus/client" "$out/src/walrus/tests" "$out/src/walrus/proto/walruspb"
ln -sfn "$src/client/go" "$out/src/walrus/client/go"
ln -sfn "$src/tests/raft" "$out/src/walrus/tests/raft"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/walrus"
for f in raft record walrus; do
  sed -E 's,^import "(raft|record)\.proto";,import "walrus/\1.proto";,' \
    "$src/proto/$f.proto" >"$stage/walrus/$f.proto"
done
gen=$stage/gen
mkdir -p "$gen"
(cd "$stage" && protoc --proto_path=. --go_out=plugins=grpc:"$gen" \
  walrus/raft.proto walrus/record.proto walrus/walrus.proto)
# Replace the package's files only when they changed, so go's build cache
# and make-style dependants see no change on a rebuild.
for f in "$gen"/walrus/proto/walruspb/*.go; do
  dst="$out/src/walrus/proto/walruspb/$(basename "$f")"
  cmp -s "$f" "$dst" || cp "$f" "$dst"
done
