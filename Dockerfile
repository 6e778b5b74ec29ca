# bertjp Dataflow worker image: Beam's Python 3.11 SDK image of the pinned Beam version,
# the pinned stack (constraints.txt), fugashi + unidic-lite + ipadic, and this package.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/bertjp:VERSION .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/bertjp:VERSION
#   bertjp wiki-corpus ... --runner DataflowRunner \
#     --sdk_container_image REGION-docker.pkg.dev/PROJECT/REPO/bertjp:VERSION
#
# The base tag must equal constraints.txt's apache-beam pin (a test checks it).
FROM apache/beam_python3.11_sdk:2.77.0

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /opt/bertjp

# Dependencies first (a layer that changes only with constraints.txt / setup.py).
COPY constraints.txt setup.py README.md ./
COPY bertjp/version.py bertjp/version.py
RUN python -m pip install --no-cache-dir -c constraints.txt \
        "apache-beam[gcp]==2.77.0" fugashi unidic-lite ipadic tokenizers google-crc32c

# The package itself (pipelines + library; no training extras on pipeline workers).
COPY bertjp ./bertjp
COPY pipelines ./pipelines
COPY training ./training
COPY bertjp_cli ./bertjp_cli
RUN python -m pip install --no-cache-dir --no-deps -c constraints.txt . \
    && python -c "import fugashi, unidic_lite, ipadic, bertjp.tokenization, pipelines.pretraining_data" \
    && groupadd --system --gid 10001 bertjp \
    && useradd --system --uid 10001 --gid bertjp --home-dir /home/bertjp --create-home bertjp

USER 10001:10001
WORKDIR /home/bertjp

# The SDK harness entry point of the base image.
ENTRYPOINT ["/opt/apache/beam/boot"]
