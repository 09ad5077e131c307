# actbridge sidecar image: built with the Rust toolchain, run from a minimal non-root
# base holding only the binary, the default config and the default policy; it runs as
# distroless's `nonroot` user (65532).
#   docker build -t actbridge:dev .
# The traffic-capture init container's image is another target of this file:
#   docker build --target capture-init -t actbridge-capture-init:dev .
# No HEALTHCHECK: Kubernetes probes use the admin listener's /healthz and /readyz.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first: this layer is reused while only actbridge's sources change.
COPY Cargo.toml Cargo.lock ./
# Every workspace member's manifest, with an empty library for now.
COPY crates/actbridge-sts/Cargo.toml crates/actbridge-sts/
COPY crates/actbridge-inject/Cargo.toml crates/actbridge-inject/
COPY crates/actbridge-devkit/Cargo.toml crates/actbridge-devkit/
# Every [[bench]] and [[example]] of Cargo.toml needs a file for the manifest to load
# (tests/cases/dockerfile.rs checks this list and the members against Cargo.toml).
RUN mkdir -p src benches bench/tools crates/actbridge-sts/src crates/actbridge-inject/src crates/actbridge-devkit/src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs crates/actbridge-sts/src/lib.rs crates/actbridge-inject/src/lib.rs crates/actbridge-devkit/src/lib.rs \
 && for b in policy credentials tracing verify memory observability; do echo 'fn main() {}' > "benches/$b.rs"; done \
 && echo 'fn main() {}' > bench/tools/main.rs \
 && cargo build --release --locked --bin actbridge \
 && rm -rf src benches bench crates/actbridge-sts/src crates/actbridge-inject/src crates/actbridge-devkit/src
COPY crates ./crates
# `actbridge inject` embeds the sidecar template.
COPY manifests/inject/sidecar-template.yaml ./manifests/inject/
COPY src ./src
COPY benches ./benches
COPY bench/tools ./bench/tools
# The revision `actbridge version` and `actbridge_build_info` report (there is no .git
# here): `docker build --build-arg ACTBRIDGE_REVISION=$(git rev-parse --short=12 HEAD)`.
COPY build.rs ./
ARG ACTBRIDGE_REVISION=unknown
ENV ACTBRIDGE_REVISION=${ACTBRIDGE_REVISION}
RUN touch src/main.rs src/lib.rs crates/actbridge-sts/src/lib.rs crates/actbridge-inject/src/lib.rs crates/actbridge-devkit/src/lib.rs \
 && cargo build --release --locked --bin actbridge \
 && strip target/release/actbridge \
 && mkdir -p /out/run/actbridge

# The init container that installs the pod's iptables rules (deploy/traffic-capture.sh)
# and exits. Root with NET_ADMIN/NET_RAW in the pod spec; nothing else in the image.
# Placed before the runtime stage so that a plain `docker build` still targets actbridge.
FROM debian:bookworm-slim AS capture-init
# Unpinned: bookworm's iptables and iproute2 only move with security updates, which an old pin
# would refuse; the base image's tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables iproute2 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY --chmod=0755 deploy/traffic-capture.sh /usr/local/bin/traffic-capture.sh
ENTRYPOINT ["/usr/local/bin/traffic-capture.sh"]
CMD ["apply"]

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/actbridge /usr/local/bin/actbridge
COPY deploy/actbridge.yaml /etc/actbridge/actbridge.yaml
COPY policies /etc/actbridge/policies
# The ext_proc and SDS sockets' directory (the manifests mount an emptyDir over it).
COPY --from=build --chown=65532:65532 /out/run/actbridge /run/actbridge
USER 65532:65532
# One JSON object per line (what `kubectl logs` and a collector read), whatever the
# runtime attaches to stderr.
ENV ACTBRIDGE_LOG_FORMAT=json
EXPOSE 9902
ENTRYPOINT ["/usr/local/bin/actbridge"]
CMD ["serve", "--config", "/etc/actbridge/actbridge.yaml"]
