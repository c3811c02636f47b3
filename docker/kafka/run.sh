#!/bin/bash
# Starts one KRaft node: every KAFKA_<NAME> variable becomes the property <name> (lower case,
# _ -> .), the convention of the apache/kafka image, except the JVM ones Kafka's scripts read.
# CLUSTER_ID formats an empty data folder once; later starts find the folder formatted.
set -euo pipefail
config=/var/lib/kafka/server.properties
: >"$config"
for name in $(compgen -e); do
  case $name in
    KAFKA_HEAP_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_OPTS) ;;
    KAFKA_*)
      key=${name#KAFKA_}
      key=${key,,}
      printf '%s=%s\n' "${key//_/.}" "${!name}" >>"$config"
      ;;
  esac
done
java=(java -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties -cp '/opt/kafka/libs/*')
if [[ ! -f ${KAFKA_LOG_DIRS}/meta.properties ]]; then
  "${java[@]}" kafka.tools.StorageTool format -t "${CLUSTER_ID:?set CLUSTER_ID to format}" -c "$config"
fi
# Word splitting of the option variables is wanted: each holds several JVM options.
# shellcheck disable=SC2086
exec java ${KAFKA_HEAP_OPTS} ${KAFKA_JVM_PERFORMANCE_OPTS} ${KAFKA_OPTS:-} \
  -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties -cp '/opt/kafka/libs/*' \
  kafka.Kafka "$config"
