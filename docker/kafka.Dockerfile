# Apache Kafka (KRaft, combined broker+controller): the jars `agentflux up` runs, resolved by
# Maven from the same pom (agentflux/_local/pom.xml: the one place the version is written), on
# OpenJDK 17 from Debian. Settings come from KAFKA_* variables (kafka/run.sh); the defaults below
# are the launcher's (agentflux/_local/_config.py), a test keeps the two equal.
FROM debian:bookworm-slim AS artifacts
# Certificate authorities the build machine adds (docker/build-ca/README.md): this stage's
# downloads only; the final image is made without them.
COPY docker/build-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends maven \
 && rm -rf /var/lib/apt/lists/*
COPY agentflux/_local/pom.xml /build/pom.xml
# Every artifact of the pom (the registry's too): both images share this layer.
RUN mvn -q -B -f /build/pom.xml dependency:copy-dependencies -DoutputDirectory=/build/lib \
 && rm -rf /root/.m2

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 1000 --user-group --home-dir /var/lib/kafka --create-home kafka \
 && install -d -o kafka -g kafka /var/lib/kafka/data
COPY --from=artifacts /build/lib /opt/kafka/libs
RUN rm /opt/kafka/libs/apicurio-registry-app-*
COPY docker/kafka/run.sh docker/kafka/healthcheck.sh docker/kafka/log4j2.properties /opt/kafka/
ENV KAFKA_LOG_DIRS=/var/lib/kafka/data \
    KAFKA_NUM_PARTITIONS=3 \
    KAFKA_DEFAULT_REPLICATION_FACTOR=1 \
    KAFKA_MIN_INSYNC_REPLICAS=1 \
    KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1 \
    KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR=1 \
    KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1 \
    KAFKA_AUTO_CREATE_TOPICS_ENABLE=false \
    KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=0 \
    KAFKA_GROUP_COORDINATOR_APPEND_LINGER_MS=0 \
    KAFKA_BROKER_SESSION_TIMEOUT_MS=3000 \
    KAFKA_BROKER_HEARTBEAT_INTERVAL_MS=500 \
    KAFKA_AUTO_LEADER_REBALANCE_ENABLE=true \
    KAFKA_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS=5 \
    KAFKA_HEAP_OPTS="-Xms1g -Xmx1g -Xmn640m" \
    KAFKA_JVM_PERFORMANCE_OPTS="-server -XX:+UseParallelGC -Djava.awt.headless=true"
USER kafka
WORKDIR /var/lib/kafka
VOLUME /var/lib/kafka/data
EXPOSE 9092 9093
HEALTHCHECK --interval=5s --timeout=6s --start-period=60s --retries=3 CMD ["/opt/kafka/healthcheck.sh"]
ENTRYPOINT ["/opt/kafka/run.sh"]
