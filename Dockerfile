# syntax=docker/dockerfile:1
#
# taskapi container image.
#
#   docker build -t taskapi:local .
#   docker run --rm -p 8080:8080 -e JWT_SECRET_KEY=... -e DATABASE_URL=postgres://... taskapi:local
#
# Stages:
#   chef     - Rust toolchain plus cargo-chef (installed once, cached)
#   planner  - reduces the workspace to a dependency "recipe" (manifests + Cargo.lock)
#   builder  - compiles only the dependencies from the recipe (cached until Cargo.toml or
#              Cargo.lock change), then the taskapi binary itself
#   runtime  - distroless glibc image: no shell, no package manager, runs as uid 65532

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
# Leave empty to take the newest cargo-chef; set e.g. --build-arg CARGO_CHEF_VERSION=0.1.77 to pin it.
ARG CARGO_CHEF_VERSION=""
RUN cargo install cargo-chef --locked ${CARGO_CHEF_VERSION:+--version "${CARGO_CHEF_VERSION}"} \
    && rm -rf "${CARGO_HOME}/registry"
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json --bin taskapi

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependency layer: re-used as long as recipe.json (manifests and lock file) is unchanged.
# The `migration` path crate is part of the recipe as a workspace member.
RUN cargo chef cook --release --recipe-path recipe.json --bin taskapi
COPY . .
# `mkdir -p static` keeps the runtime COPY working in a checkout without front-end files.
RUN cargo build --release --locked --bin taskapi \
    && mkdir -p /out/writable/logs /out/writable/data static \
    && cp target/release/taskapi /out/taskapi

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="taskapi" \
      org.opencontainers.image.description="Task management REST API (Rust, salvo + sea-orm)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

WORKDIR /app
# Binary and front end are owned by root and read-only for the service user; only logs/
# and data/ (SQLite fallback) belong to the non-root user 65532 ("nonroot" in distroless).
COPY --from=builder /out/taskapi /app/taskapi
COPY --from=builder /src/static /app/static
COPY --from=builder --chown=65532:65532 /out/writable/ /app/

ENV TASKAPI_SERVER__HOST=0.0.0.0 \
    TASKAPI_SERVER__PORT=8080 \
    TASKAPI_PROFILE=production \
    TASKAPI_LOG__DIR=/app/logs \
    TASKAPI_SERVER__STATIC_DIR=/app/static

USER 65532:65532
EXPOSE 8080

# Distroless has no shell or curl, so the binary probes its own GET /health/ready.
# Kubernetes ignores HEALTHCHECK and uses the HTTP probes in deploy/k8s/base/deployment.yaml
# (/health/live for liveness, /health/ready for readiness).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/app/taskapi", "healthcheck"]
ENTRYPOINT ["/app/taskapi"]
CMD ["serve"]
