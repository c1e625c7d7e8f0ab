# The wsrelay container image, multi-stage on Debian 12 (docs/operations.md "Building the image"):
#   bash tools/dev image        builds it with podman and runs its tests (tests/image/run.sh)
# or by hand, VERSION being CMakeLists.txt's project version (the build refuses any other):
#   podman build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#       -t wsrelay:0.1.0 .
# Nothing but Debian packages and this repository goes in. The build stage installs the build
# packages of tools/dev (BUILD_PACKAGES, kept equal by tests/helm/run.sh); the runtime stage only
# the shared libraries the binary links, plus the libwebsockets libev plugin it loads at run time.
# docs/operations.md explains how the Helm chart runs it.

FROM debian:12 AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libwebsockets-dev libwebsockets-evlib-ev libev-dev \
        libyaml-cpp-dev prometheus-cpp-dev libsimdjson-dev \
        libssl-dev libcurl4-openssl-dev zlib1g-dev libcivetweb-dev libhiredis-dev \
        libgtest-dev libgmock-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
# The image's version label must be the version the binary reports: both come from project().
ARG VERSION
RUN built="$(sed -n 's/^project(wsrelay VERSION \([^ ]*\) .*/\1/p' CMakeLists.txt)" \
    && if [ "$VERSION" != "$built" ]; then \
        echo "build-arg VERSION='$VERSION' is not CMakeLists.txt's project version '$built'" >&2; \
        exit 1; \
    fi
COPY conf conf
COPY metrics metrics
COPY adapters adapters
COPY relay relay
# -O2, the optimisation level the tests and benchmarks run at (RelWithDebInfo's), but Release, without
# -g: the binary is stripped at install, so debug info would only lengthen the compile.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
        -DWSRELAY_TESTS=OFF \
    && cmake --build build -j"$(nproc)" \
    && cmake --install build --prefix /out --strip

FROM debian:12
# ca-certificates: https JWKS URLs and hook URLs.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libwebsockets17 libwebsockets-evlib-ev libev4 libhiredis0.14 libyaml-cpp0.7 \
        libprometheus-cpp-core1.0 libsimdjson14 libssl3 libcurl4 libstdc++6 libgcc-s1 libc6 \
        zlib1g \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 wsrelay \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin wsrelay \
    && mkdir -p /etc/wsrelay/config /etc/wsrelay/keys
COPY --from=build /out/bin/wsrelay /usr/local/bin/wsrelay
COPY conf/wsrelay.sample.yaml /etc/wsrelay/wsrelay.sample.yaml
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8080
# No --config by default: the built-in defaults plus WSRELAY_* variables. The Helm chart passes
# --config /etc/wsrelay/config/wsrelay.yaml.
ENTRYPOINT ["/usr/local/bin/wsrelay"]

# OCI annotations, last so that a new revision or date reuses every layer above. The project
# declares no licence: NOASSERTION (SPDX) until its owner sets LICENSES to an SPDX expression.
ARG VERSION
ARG REVISION=""
ARG SOURCE=""
ARG CREATED=""
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="wsrelay" \
    org.opencontainers.image.description="WebSocket relay beside a non-C++ backend: pub/sub over WebSockets, Redis fan-out, JWT auth" \
    org.opencontainers.image.version="${VERSION}" \
    org.opencontainers.image.revision="${REVISION}" \
    org.opencontainers.image.source="${SOURCE}" \
    org.opencontainers.image.created="${CREATED}" \
    org.opencontainers.image.licenses="${LICENSES}"
