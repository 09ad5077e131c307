# actbridge sidecar image: built with the Rust toolchain, run from a minimal non-root
# base holding only the binary, the default config and the default policy; it runs as
# distroless's `nonroot` user (65532).
#   docker build -t actbridge:dev .
# No HEALTHCHECK: Kubernetes probes use the admin listener's /healthz and /readyz.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first: this layer is reused while only actbridge's sources change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && for b in policy credentials; do echo 'fn main() {}' > "benches/$b.rs"; done \
 && cargo build --release --locked --bin actbridge \
 && rm -rf src benches
COPY src ./src
COPY benches ./benches
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin actbridge \
 && strip target/release/actbridge

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/actbridge /usr/local/bin/actbridge
COPY deploy/actbridge.yaml /etc/actbridge/actbridge.yaml
COPY policies /etc/actbridge/policies
USER 65532:65532
EXPOSE 9001 9902
ENTRYPOINT ["/usr/local/bin/actbridge"]
CMD ["serve", "--config", "/etc/actbridge/actbridge.yaml"]
