# blobsvc in a container: filesystem driver on the /data volume, port 8080.
# Python dependencies come from Debian's packages, so the build needs only
# an apt mirror.
FROM debian:bookworm-slim

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-cherrypy3 python3-yaml python3-swiftclient python3-prometheus-client \
        python3-defusedxml python3-awscrt \
        python3-pip python3-setuptools \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY setup.py README.rst ./
COPY blobsvc ./blobsvc
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-deps --no-index --no-build-isolation --break-system-packages . \
    && rm -rf /src /root/.cache

# One uid/gid pair, 10001:10001, made together: useradd alone would give the
# user a group numbered from the system range, and USER 10001:10001 would
# then run with a gid that names no group.
RUN groupadd --system --gid 10001 blobsvc \
    && useradd --system --uid 10001 --gid blobsvc --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin blobsvc \
    && mkdir -p /data && chown 10001:10001 /data

ENV BLOBSVC_SERVER_HOST=0.0.0.0 \
    BLOBSVC_SERVER_PORT=8080 \
    BLOBSVC_STORAGE_ROOT=/data \
    PYTHONUNBUFFERED=1
VOLUME /data
EXPOSE 8080
# blobsvc:blobsvc from above, by number: a runtime can then tell it is not
# root without reading the image's /etc/passwd (Kubernetes' runAsNonRoot).
USER 10001:10001
WORKDIR /data

HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]

# blobsvc handles SIGTERM itself (it runs as PID 1 here): docker stop lets
# in-flight requests finish, then it exits 0.
ENTRYPOINT ["blobsvc"]
CMD ["serve"]
