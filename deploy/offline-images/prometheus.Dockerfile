# Stand-in for the official prom/prometheus image, built offline (see build.sh) from
# Debian 13's prometheus package (2.53, the newest Debian has; the compose configuration
# uses nothing newer). Same entrypoint, user, working directory and volume as the original.
ARG BASE=taskapi-offline/debian:trixie
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus /etc/prometheus \
    && chown -R nobody:nogroup /prometheus /etc/prometheus
USER nobody
WORKDIR /prometheus
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
