# The opencite app image: CLI, RAG API, Streamlit UI, ingest, and the CPU LLM engines (llama.cpp, transformers).
# GPU serving uses the official vLLM / TGI images instead (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPENCITE_DATA_DIR=/data \
    HF_HOME=/root/.cache/huggingface

WORKDIR /opt/opencite

# CPU torch first, from the PyTorch CPU index: a bare `torch` requirement pulls CUDA wheels (GBs).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# llama-cpp-python (the llamacpp extra, the CPU default) compiles llama.cpp: a compiler and cmake,
# and a portable build, since the image runs on CPUs other than the one that built it.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"

# Dependencies before the sources, so code edits do not re-install them. `postgres`: the driver
# for a records database shared by several hosts (OPENCITE_CHROMA__RECORD_MANAGER_URL).
COPY pyproject.toml README.md constraints.txt ./
# Every package pyproject lists must exist for this install: empty ones stand in until the sources come.
RUN for pkg in opencite opencite/cli store ingest serving eval app app/rag app/citations app/api app/ui; do \
        mkdir -p "$pkg" && touch "$pkg/__init__.py"; done \
    && pip install -c constraints.txt ".[cpu,llamacpp,postgres]" && pip uninstall -y opencite

COPY opencite ./opencite
COPY store ./store
COPY ingest ./ingest
COPY app ./app
COPY serving ./serving
COPY eval ./eval
RUN pip install --no-deps -c constraints.txt . && mkdir -p /data /root/.cache/huggingface/hub

VOLUME ["/data"]
EXPOSE 8000 8080 8501
ENTRYPOINT ["opencite"]
CMD ["--help"]
