# Stand-in for the official rust:<version>-slim-bookworm, built offline (see build.sh).
# Same layout and environment as the official image: rustup proxies in /usr/local/cargo/bin,
# the toolchain under /usr/local/rustup, gcc and the C library headers for build scripts.
ARG BASE=taskapi-offline/debian:bookworm
FROM ${BASE}
ARG RUST_FULL_VERSION
ARG TOOLCHAIN
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=${RUST_FULL_VERSION}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
# The host's own extra CA certificates (e.g. a TLS-inspecting egress proxy): without them
# cargo inside a build cannot reach crates.io from this machine. Official images do not
# need this; the directory may be empty.
COPY ca-certificates/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY rustup/ /usr/local/rustup/
COPY cargo/ /usr/local/cargo/
RUN printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' "${TOOLCHAIN}" \
        >/usr/local/rustup/settings.toml \
    && for p in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver rust-gdb rust-lldb; do \
         ln -sf rustup "/usr/local/cargo/bin/$p"; \
       done \
    && rustup --version && cargo --version && rustc --version
