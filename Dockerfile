# syntax=docker/dockerfile:1
# Multi-stage build: a full Rust toolchain to compile, a slim Debian to run.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin keysmith \
 && install -D target/release/keysmith /out/keysmith

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin keysmith \
 && mkdir -p /data && chown keysmith:keysmith /data
COPY --from=build /out/keysmith /usr/local/bin/keysmith
USER keysmith
# The embedded database, the pepper file (mode 0600) and .eml files live here.
VOLUME ["/data"]
ENV KEYSMITH_DATA_DIR=/data \
    KEYSMITH_BIND=0.0.0.0:8080
EXPOSE 8080
# `keysmith healthcheck` asks this container's own /healthz (no curl in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["keysmith", "healthcheck"]
ENTRYPOINT ["keysmith"]
CMD ["serve"]
