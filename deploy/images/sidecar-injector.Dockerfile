# syntax=docker/dockerfile:1
# The webhook: a static (musl) binary on distroless/static, running as uid 65532 (`nonroot`).
# Build from the repository root:
#   docker build -f deploy/images/sidecar-injector.Dockerfile -t localhost/sidecar-injector:0.1.0 .

# Alpine's Rust targets x86_64/aarch64-unknown-linux-musl and links statically by default.
FROM docker.io/library/rust:1.95-alpine AS build
# ring (rustls' crypto) and mimalloc (the allocator) compile a little C and assembly.
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked -p sidecar-injector --bin sidecar-injector \
    && install -D -m 0755 target/release/sidecar-injector /out/sidecar-injector

# distroless/static: CA certificates, /etc/passwd with `nonroot`, tzdata; no shell, no libc.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sidecar-injector /usr/local/bin/sidecar-injector
USER 65532:65532
EXPOSE 9443 15014
ENTRYPOINT ["/usr/local/bin/sidecar-injector"]
CMD ["serve"]
