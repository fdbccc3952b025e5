#!/usr/bin/env bash
# What the whole test suite needs besides the venv: Debian's Docker engine, debootstrap and Chromium, a running
# engine with no bridge network (containers get loopback only), the base image and the component image built from
# this tree. `make test` and CI both run this one script. It installs what is missing where it can (root with
# apt-get); elsewhere it stops at once with the command to run, so that no test is ever skipped for a missing part.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "tests/setup-host.sh: $*" >&2; exit 1; }
root() { [[ $(id -u) == 0 ]]; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]})); then
  root && command -v apt-get >/dev/null \
    || fail "the tests need ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
  echo "installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# Debian's client builds with BuildKit without the buildx plugin; another client on the PATH may not.
DOCKER=${DOCKER:-$(test -x /usr/bin/docker && echo /usr/bin/docker || command -v docker)}
if ! "$DOCKER" info >/dev/null 2>&1; then
  root || fail "no Docker engine answers; start one: sudo dockerd --bridge=none --iptables=false --ip-masq=false &"
  echo "starting dockerd (no bridge network)"
  (dockerd --bridge=none --iptables=false --ip-masq=false >/tmp/dockerd.log 2>&1 &)
  for _ in $(seq 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
  "$DOCKER" info >/dev/null 2>&1 || fail "dockerd did not start; its log is /tmp/dockerd.log"
fi

"$DOCKER" image inspect tfpipe-base:bookworm >/dev/null 2>&1 || make --no-print-directory base-image DOCKER="$DOCKER"
make --no-print-directory images DOCKER="$DOCKER" BASE_IMAGE=tfpipe-base:bookworm
