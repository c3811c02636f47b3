#!/usr/bin/env bash
# The base image every Dockerfile here starts FROM (debian:<release>-slim), made on this machine
# with debootstrap from the Debian mirror apt already uses, then `docker import`ed under the name
# a user with a registry would pull. Machines with a registry need none of this.
# Usage: docker/base.sh [release]  (default: this machine's Debian release)
set -euo pipefail

release=${1:-$(. /etc/os-release && echo "${VERSION_CODENAME:?not a Debian release}")}
image="debian:${release}-slim"

# The mirror apt uses here: deb822 sources (URIs:) or one-line sources (deb URL suite ...).
mirror=$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
  } | grep -m1 '/debian/\?$' || true
)
mirror=${mirror:-http://deb.debian.org/debian}

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image: present, kept"
  exit 0
fi

root=$(mktemp -d /tmp/agentflux-debootstrap.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "$image: debootstrap $release from $mirror"
debootstrap --variant=minbase "$release" "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -30 "$root.log"; exit 1; }
rm -f "$root.log"
# The sources the official image lists: the release, its updates and its security fixes.
security=${mirror%/debian}/debian-security
[[ $mirror == */debian ]] || security=http://deb.debian.org/debian-security
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $release $release-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $release-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# What the official slim image leaves out: package lists, docs and caches (rebuilt by apt-get update).
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/locale/*
tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$image" >/dev/null
echo "$image: imported"
