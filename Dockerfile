# harvester in a container.
#   daemon:  docker run -d -v harvester-data:/data -v $PWD/config:/config:ro -p 9108:9108 harvester
#   cron:    docker run --rm -v harvester-data:/data -v $PWD/config:/config:ro harvester once
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HARVESTER_CONFIG=/config/harvester.toml \
    HARVESTER_DATABASE=/data/harvester.db

WORKDIR /src
COPY pyproject.toml README.md ./
COPY harvester ./harvester
COPY config ./config
COPY fixtures ./fixtures
RUN pip install . && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin harvester \
    && mkdir -p /data /config && chown harvester /data
USER harvester
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9108

# no proxy for the check: a proxy from `docker run -e https_proxy=…` cannot reach this loopback
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:9108/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["harvester"]
CMD ["run", "--http", "0.0.0.0:9108", "--log-format", "json"]
