# syntax=docker/dockerfile:1
# The istio-init container: a static (musl) mesh-init on debian:bookworm-slim, which carries the
# iptables tools mesh-init runs (iptables-restore/-save in both the nft and legacy flavours,
# ip6tables-*, and nft for --native-nftables). It runs as root with NET_ADMIN and NET_RAW, as the
# injected istio-init container asks.
# Build from the repository root:
#   docker build -f deploy/images/mesh-init.Dockerfile -t localhost/mesh-init:0.1.0 .

FROM docker.io/library/rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked -p mesh-init --bin mesh-init \
    && install -D -m 0755 target/release/mesh-init /out/mesh-init

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends iptables nftables \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/mesh-init /usr/local/bin/mesh-init
# Istio's template runs `istio-iptables <flags>` as the container's args. With no ENTRYPOINT the
# first arg is the program, so the same name reaches mesh-init with Istio's flags untouched.
RUN ln -s mesh-init /usr/local/bin/istio-iptables
CMD ["mesh-init", "--help"]
