# syntax=docker/dockerfile:1

# --- build: the project and its dependencies in a virtualenv --------------------------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# GraphiQL's browser files come with the `app` package (app/static/graphiql), so GraphiQL works
# offline in the image too; the runtime stage gets them with the virtualenv.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app/ app/
COPY schema/ schema/
COPY db/ db/
# Extras to install, e.g. `docker build --build-arg STUDIO_EXTRAS=neural .` for the neural voice
# (README, "Licences": it is optional, and eSpeak NG the default, because of its dataset terms).
ARG STUDIO_EXTRAS=""
RUN pip install ".${STUDIO_EXTRAS:+[$STUDIO_EXTRAS]}"

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim

# A font for the text the render draws on screen (the slim image has none).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 studio \
    && useradd --system --uid 10001 --gid studio --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin studio \
    && mkdir /data \
    && chown studio:studio /data

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STUDIO_DATA_DIR=/data

# The code runs from the virtualenv; `studio migrate` finds alembic.ini in the working directory.
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY alembic.ini ./
COPY alembic/ alembic/

USER studio
VOLUME ["/data"]
EXPOSE 8000

# The slim image has no curl; urlopen raises (exit 1) on a refused connection or a non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["sh", "-c", "studio migrate upgrade && exec studio serve --host 0.0.0.0 --port 8000"]
