# The wsrelay container image, multi-stage on Debian 12:
#   docker build -t wsrelay:0.1.0 .
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
COPY conf conf
COPY metrics metrics
COPY adapters adapters
COPY relay relay
# RelWithDebInfo (-O2), stripped at install: the optimisation level the tests and benchmarks run at.
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSRELAY_TESTS=OFF \
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
