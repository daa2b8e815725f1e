# One image for the migrate, api and trainer services (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# CPU torch by default; build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124
# (or similar) for a CUDA image used by the trainer.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url ${TORCH_INDEX} torch

COPY pyproject.toml README.md alembic.ini ./
COPY recsys ./recsys
COPY api ./api
COPY migrations ./migrations
RUN pip install -e .

RUN useradd --create-home recsys && mkdir -p /artifacts && chown recsys /artifacts
USER recsys
ENV RECSYS_ARTIFACT_DIR=/artifacts
EXPOSE 8000
CMD ["recsys", "serve", "--host", "0.0.0.0", "--port", "8000"]
