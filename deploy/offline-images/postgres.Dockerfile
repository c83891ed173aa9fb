# Stand-in for the official postgres:17-alpine, built offline (see build.sh) from Debian 13's
# postgresql-17. The entrypoint follows the official one: POSTGRES_USER / POSTGRES_PASSWORD /
# POSTGRES_DB / POSTGRES_HOST_AUTH_METHOD / PGDATA, /docker-entrypoint-initdb.d, and extra
# arguments such as `-c fsync=off` passed to the server.
ARG BASE=taskapi-offline/debian:trixie
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-17 \
    && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/17 /etc/postgresql/17/main \
    && mkdir -p /var/run/postgresql /var/lib/postgresql/data /docker-entrypoint-initdb.d \
    && chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql \
    && chmod 3777 /var/run/postgresql
# UTF-8 clusters, as the official images make (they set LANG=en_US.utf8): without it initdb
# picks the C locale and SQL_ASCII, and lower()/ILIKE stop at ASCII.
ENV LANG=C.UTF-8 \
    PG_MAJOR=17 \
    PATH=/usr/lib/postgresql/17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
