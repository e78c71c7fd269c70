# syntax=docker/dockerfile:1
# Build: docker build -t dealcoach .
# Run:   docker run -p 8000:8000 -e DEALCOACH_DATABASE_URL=postgresql+asyncpg://user:pass@db/dealcoach dealcoach

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements.lock ./
RUN /opt/venv/bin/pip install -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
RUN /opt/venv/bin/pip install --no-deps .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DEALCOACH_DATABASE_URL=sqlite+aiosqlite:////data/dealcoach.db
RUN groupadd --system dealcoach && useradd --system --gid dealcoach --home-dir /data dealcoach \
    && mkdir -p /data && chown dealcoach:dealcoach /data
COPY --from=build /opt/venv /opt/venv
USER dealcoach
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["dealcoach", "serve", "--migrate", "--host", "0.0.0.0", "--port", "8000"]
