#!/usr/bin/env bash
# Builds the platform's images from the project's files: docker/base.sh first (the debian base,
# made here with debootstrap when no registry gives it), then Kafka, Apicurio Registry,
# PostgreSQL and the agentflux services. Versions come from agentflux/_local/pom.xml (Kafka,
# Apicurio) and pyproject.toml (agentflux): the tags compose/docker-compose.yml names.
#
# Each image's build context is exactly the files its Dockerfile copies, as a reproducible tar;
# its hash and the base image's id make a content tag (<image>:content-<hash>). An image whose
# content tag exists is not built again. RUN steps fetch from Debian's mirror, Maven Central and
# PyPI over the host's network (--network host).
# Usage: docker/build.sh [kafka|registry|postgres|services ...]  (default: all)
#        docker/build.sh --tags  (the image names and tags it builds, one a line; builds nothing)
set -euo pipefail
cd "$(dirname "$0")/.."

pom_version() { sed -n "s|.*<$1\.version>\([^<]*\)</$1\.version>.*|\1|p" agentflux/_local/pom.xml; }
project_version() { sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml; }

# The Debian release the Dockerfiles' FROM lines name (one for all of them).
release=$(sed -n 's/^FROM debian:\([a-z]*\)-slim.*/\1/p' docker/*.Dockerfile | sort -u)
[[ $release =~ ^[a-z]+$ ]] || { echo "the Dockerfiles name other bases than one debian:<release>-slim: $release" >&2; exit 1; }
base=debian:$release-slim

# image name, tag, then the files of its context (folders included whole, as git knows them).
declare -A tag files
tag[kafka]=$(pom_version kafka)
files[kafka]="docker/kafka.Dockerfile docker/kafka agentflux/_local/pom.xml"
tag[registry]=$(pom_version apicurio)
files[registry]="docker/registry.Dockerfile agentflux/_local/pom.xml"
tag[postgres]=15
files[postgres]="docker/postgres.Dockerfile docker/postgres"
tag[services]=$(project_version)
files[services]="docker/services.Dockerfile docker/services pyproject.toml setup.py README.md schemas agentflux"

context_tar() {
  # Tracked and new files, not ignored ones (no .so, caches or virtualenvs), plus the build
  # machine's own certificate authorities (docker/build-ca/README.md), in a fixed order with
  # fixed owners and times: the same files give the same bytes, hence the same hash.
  local staged ca
  staged=$(mktemp -d)
  # shellcheck disable=SC2086  # the file list is meant to split
  git ls-files --cached --others --exclude-standard -z -- ${files[$1]} docker/build-ca \
    | xargs -0 -r ls -d 2>/dev/null | tar -c --files-from=- | tar -x -C "$staged"
  # shellcheck disable=SC2086  # AGENTFLUX_BUILD_CA may name several files
  for ca in ${AGENTFLUX_BUILD_CA:-/usr/local/share/ca-certificates/*.crt}; do
    [[ -f $ca ]] && cp "$ca" "$staged/docker/build-ca/$(basename "${ca%.*}").crt"
  done
  tar -C "$staged" -c --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner .
  rm -rf "$staged"
}

build() {
  local name=$1 image="agentflux/$1:${tag[$1]}" content started
  content=$( { docker image inspect -f '{{.Id}}' "$base"; context_tar "$name" | sha256sum; } \
    | sha256sum | cut -c1-16)
  if docker image inspect "agentflux/$name:content-$content" >/dev/null 2>&1; then
    docker tag "agentflux/$name:content-$content" "$image"
    echo "$image: content-$content present, kept"
    return
  fi
  started=$SECONDS
  echo "$image: building (content-$content)"
  mkdir -p build/docker
  context_tar "$name" | DOCKER_BUILDKIT=0 docker build --network host \
    -f "docker/$name.Dockerfile" -t "$image" -t "agentflux/$name:content-$content" - \
    >"build/docker/$name.log" 2>&1 || { tail -40 "build/docker/$name.log"; return 1; }
  echo "$image: built in $((SECONDS - started)) s"
  # Earlier builds of this image are not kept: a cache that only grows would fill the disk.
  docker images "agentflux/$name" --format '{{.Tag}}' \
    | awk -v image="agentflux/$name" -v kept="content-$content" '/^content-/ && $0 != kept { print image ":" $0 }' \
    | xargs -r docker rmi >/dev/null
}

names=("$@")
((${#names[@]})) || names=(kafka registry postgres services)
if [[ ${names[0]} == --tags ]]; then
  for name in kafka registry postgres services; do echo "agentflux/$name:${tag[$name]}"; done
  exit 0
fi
docker/base.sh "$release"
for name in "${names[@]}"; do build "$name"; done
docker image prune -f >/dev/null  # the layers only those earlier builds used
