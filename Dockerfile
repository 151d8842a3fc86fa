# walrusd container image: build stage with the project's own package list,
# runtime stage with only the shared libraries walrusd links against.
#
#   docker build -t walrus:dev .
#   docker run --rm -v walrus-data:/var/lib/walrus -p 7071:7071 -p 9464:9464 walrus:dev
#
# tests/deploy/dockerfile_test.py checks this file offline (stages, package
# lists, user, entrypoint flags against `walrusd --help`): keep its shape.

# --- build -----------------------------------------------------------------
FROM debian:12 AS build
# The same script `make build` uses, so the package lists cannot drift.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build --target walrusd walrusctl \
 && install -D -m 0755 /build/server/walrusd /out/usr/bin/walrusd \
 && install -D -m 0755 /build/client/walrusctl /out/usr/bin/walrusctl

# --- runtime ---------------------------------------------------------------
FROM debian:12 AS runtime
# Runtime libraries only (no -dev packages, no compiler): gRPC, protobuf,
# Abseil, spdlog (+fmt), prometheus-cpp, ISA-L, jemalloc. The test derives the needed
# set from `ldd walrusd` and fails if one is missing here.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 \
      libspdlog1.10 libfmt9 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libisal2 libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /
# Data on a volume, the gRPC socket in /run/walrus (an emptyDir shared with
# the Raft node in Kubernetes); both owned by the non-root user.
RUN mkdir -p /var/lib/walrus /run/walrus \
 && chown 65532:65532 /var/lib/walrus /run/walrus \
 && chmod 0750 /var/lib/walrus /run/walrus
VOLUME ["/var/lib/walrus"]
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
