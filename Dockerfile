# recsvc under gunicorn, as `recsvc serve` runs it. Give it REDIS_URL in production;
# without one, the service starts the embedded Redis under /app/var (a volume).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    RECSVC_BIND=0.0.0.0:8000 \
    RECSVC_DATA_DIR=/app/var \
    OPENBLAS_NUM_THREADS=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY recsvc ./recsvc
COPY training ./training
RUN pip install . \
    && useradd --create-home --uid 10001 recsvc \
    && mkdir -p /app/var && chown recsvc /app/var

USER recsvc
VOLUME ["/app/var"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=2s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=1).status != 200)"

# REDIS_URL set: plain gunicorn with our config. Unset: recsvc serve adds the embedded Redis.
CMD ["sh", "-c", "if [ -n \"$REDIS_URL\" ]; then exec gunicorn -c python:recsvc.web.gunicorn_conf; else exec recsvc serve --host 0.0.0.0 --port 8000; fi"]
