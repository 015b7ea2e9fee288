# The server with the embedded default model. PyPI's Linux torch wheels include CUDA, so the
# same image runs on a GPU node with --gpus all -e MODEL_DEVICE=cuda. TORCH_SPEC picks another
# torch (any pip arguments, e.g. a CPU-only index) at build time.
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"
ENV TORCH_SPEC=${TORCH_SPEC}

# npm only installs packages; the gateway runs on the Node 24 that npm installs from package.json.
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . .
RUN ./scripts/setup.sh \
 && .venv/bin/python scripts/download_models.py all-minilm-l6-v2

ENV HOST=0.0.0.0 PORT=8000 MODELS=all-minilm-l6-v2
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s CMD node_modules/.bin/node -e "fetch('http://127.0.0.1:8000/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# exec form: the gateway is PID 1 and receives SIGTERM itself, so it drains and stops its runners.
CMD ["node_modules/.bin/node", "gateway/src/main.ts"]
