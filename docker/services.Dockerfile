# The agentflux image: the CLI and the shipped consumer groups (`agentflux consume <group>`),
# with every C extension built (AGENTFLUX_REQUIRE_NATIVE=1), run as a non-root user.
FROM debian:bookworm-slim AS build
# Certificate authorities the build machine adds (docker/build-ca/README.md): this stage's
# downloads only; the final image is made without them.
COPY docker/build-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3-venv python3-dev gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md /src/
COPY schemas /src/schemas
COPY agentflux /src/agentflux
RUN python3 -m venv /opt/agentflux \
 && PIP_CERT=/etc/ssl/certs/ca-certificates.crt AGENTFLUX_REQUIRE_NATIVE=1 /opt/agentflux/bin/pip install --no-cache-dir --quiet /src

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /home/agentflux --create-home agentflux
COPY --from=build /opt/agentflux /opt/agentflux
COPY docker/services/healthcheck.py /opt/agentflux/healthcheck.py
# AGENTFLUX_HEALTH_PORT: where `consume --port` serves /livez (the health check asks it);
# AGENTFLUX_HEALTH_HOST: every interface, so probes and scrapes reach it from outside.
ENV PATH=/opt/agentflux/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AGENTFLUX_HEALTH_PORT=8000 \
    AGENTFLUX_HEALTH_HOST=0.0.0.0
USER agentflux
WORKDIR /home/agentflux
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=3 \
  CMD ["python3", "/opt/agentflux/healthcheck.py"]
ENTRYPOINT ["agentflux"]
CMD ["--help"]
