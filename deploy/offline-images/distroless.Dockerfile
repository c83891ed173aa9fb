# Stand-in for gcr.io/distroless/cc-debian12:nonroot, built offline (see build.sh): glibc,
# libgcc, libstdc++, OpenSSL 3, tzdata, netbase and the CA bundle from Debian 12 packages,
# unpacked into an empty image. No shell, no package manager; user nonroot is uid 65532.
ARG BASE=taskapi-offline/debian:bookworm
FROM ${BASE} AS fetch
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
    && mkdir -p /debs /rootfs && cd /debs \
    && apt-get download libc6 libgcc-s1 libstdc++6 libssl3 libgomp1 gcc-12-base tzdata netbase base-files \
    && for deb in /debs/*.deb; do dpkg-deb -x "$deb" /rootfs; done \
    && cd /rootfs \
    && rm -rf usr/share/doc usr/share/man usr/share/info usr/share/lintian usr/share/common-licenses \
              usr/share/locale usr/lib/x86_64-linux-gnu/gconv usr/lib/x86_64-linux-gnu/audit \
              usr/share/base-files usr/share/menu etc/profile.d etc/skel etc/update-motd.d \
              usr/bin usr/sbin usr/libexec sbin bin \
    && mkdir -p etc/ssl/certs home/nonroot root tmp var/lib \
    && cp /etc/ssl/certs/ca-certificates.crt etc/ssl/certs/ca-certificates.crt \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >etc/passwd \
    && printf 'root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n' >etc/group \
    && chown 65532:65532 home/nonroot && chmod 0700 root && chmod 1777 tmp \
    && ln -sf /usr/share/zoneinfo/Etc/UTC etc/localtime

FROM scratch
COPY --from=fetch /rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /home/nonroot
