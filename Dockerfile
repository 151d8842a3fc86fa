# walrusd container image: build stage with the project's own package list,
# runtime stage with only the shared libraries walrusd links against.
#
#   docker build -t walrus:dev .
#   docker run --rm -v walrus-data:/var/lib/walrus -v walrus-run:/run/walrus \
#     -p 127.0.0.1:7071:7071 -p 127.0.0.1:9464:9464 walrus:dev
#
# tests/deploy/dockerfile_test.py checks this file offline (stages, package
# lists, user, entrypoint flags against `walrusd --help`): keep its shape.
# tests/container/image_test.py builds it with podman and runs it.

# --- build -----------------------------------------------------------------
FROM debian:12 AS build
# The same script `make build` uses, so the package lists cannot drift.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
# Only the two programs: no tests (their libraries are not installed here).
# BUILD_JOBS caps the compiler processes (default: ninja's, cores + 2).
# ccache on a cache mount (BuildKit, buildah) that outlives the build: after
# a source change only what changed compiles again.
ARG BUILD_JOBS=
RUN --mount=type=cache,target=/ccache \
    export CCACHE_DIR=/ccache CCACHE_MAXSIZE=2G \
 && cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DWALRUS_BUILD_TESTS=OFF \
      -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
 && cmake --build /build ${BUILD_JOBS:+-j$BUILD_JOBS} --target walrusd walrusctl \
 && install -D -m 0755 /build/server/walrusd /out/usr/bin/walrusd \
 && install -D -m 0755 /build/client/walrusctl/walrusctl /out/usr/bin/walrusctl

# --- runtime ---------------------------------------------------------------
FROM debian:12 AS runtime
# Runtime libraries only (no -dev packages, no compiler): gRPC, protobuf,
# Abseil, spdlog (+fmt), prometheus-cpp, ISA-L, jemalloc. The test derives the needed
# set from `ldd walrusd` and fails if one is missing here. `apt-get clean`:
# only the official debian:12 deletes the downloaded .debs after an install
# (its apt.conf.d/docker-clean); on a base without that hook they would stay
# in this layer.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 \
      libspdlog1.10 libfmt9 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libisal2 libjemalloc2 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
# Data on a volume, the gRPC socket in /run/walrus (an emptyDir shared with
# the Raft node in Kubernetes); both owned by the non-root user. /run/walrus
# is a volume too, so a read-only root file system works without a mount. A
# host directory mounted on either must be writable by 65532
# (docs/operations.md: chown, or podman's `:U`).
RUN mkdir -p /var/lib/walrus /run/walrus \
 && chown 65532:65532 /var/lib/walrus /run/walrus \
 && chmod 0750 /var/lib/walrus /run/walrus
VOLUME ["/var/lib/walrus", "/run/walrus"]
USER 65532:65532
# 7071: gRPC health (plaintext, grpc.health.v1 only); 9464: /metrics.
EXPOSE 7071 9464
ENTRYPOINT ["/usr/bin/walrusd"]
# The WAL RPCs are served on the Unix socket only, so nothing unauthenticated
# listens on the network; override CMD to add a TLS listener.
CMD ["--data-dir=/var/lib/walrus", \
     "--listen=unix:/run/walrus/walrus.sock", \
     "--unix-socket-mode=0660", \
     "--health-listen=0.0.0.0:7071", \
     "--metrics-listen=0.0.0.0:9464", \
     "--insecure-metrics=true", \
     "--log-format=json"]
