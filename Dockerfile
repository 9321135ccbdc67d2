# harvester in a container: `docker run --rm -v $PWD/data:/data -v $PWD/config:/config:ro harvester once`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HARVESTER_CONFIG=/config/harvester.toml

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

ENTRYPOINT ["harvester"]
CMD ["once"]
