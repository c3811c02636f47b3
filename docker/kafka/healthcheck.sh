#!/bin/bash
# Asks the broker itself: an ApiVersions request (v0) on the first listener must be answered
# with our correlation id and error code 0. Kafka's kafka-broker-api-versions.sh asks the same,
# but starts a JVM (seconds of CPU) for every probe.
set -euo pipefail
port=$(sed -n 's|^listeners=[A-Za-z_]*://[^:,]*:\([0-9]*\).*|\1|p' /var/lib/kafka/server.properties)
exec 3<>"/dev/tcp/127.0.0.1/${port:?no listeners in server.properties}"
# size 10 | api_key 18 (ApiVersions) | version 0 | correlation id 42 | client id null
printf '\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x2a\xff\xff' >&3
reply=$(timeout 5 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')
[[ ${reply:8:12} == 0000002a0000 ]]
