# Stand-in for the official redis:7-alpine, built offline (see build.sh) from Debian 12's
# redis-server 7.0. Like the official image it runs as user redis in /data and, without a
# configuration file, leaves protected mode off so other containers can connect.
ARG BASE=taskapi-offline/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
VOLUME /data
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
