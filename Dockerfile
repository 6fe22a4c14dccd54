# envcase API: migrations applied on start, data and media on the /app/data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/app/data \
    HOST=0.0.0.0 \
    PORT=8000 \
    FORWARDED_ALLOW_IPS=127.0.0.1

WORKDIR /app

# Dependencies first, exactly as locked and hash-checked: this layer is rebuilt only when the lock
# changes, not on every change of the source.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# Then the package itself, without resolving anything again.
COPY pyproject.toml README.md LICENSE ./
COPY server ./server
COPY schema ./schema
COPY webhooks ./webhooks
COPY notifications ./notifications
COPY delivery ./delivery
COPY identity ./identity
COPY reports ./reports
COPY patrols ./patrols
COPY media ./media
COPY kernel ./kernel
COPY trusted ./trusted
COPY open311 ./open311
COPY exports ./exports
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /app envcase \
    && mkdir -p /app/data \
    && chown envcase /app/data

USER envcase
VOLUME ["/app/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz')"
# `run` applies migrations, then starts uvicorn; set WORKERS>1 only with PostgreSQL.
CMD ["envcase", "run"]
