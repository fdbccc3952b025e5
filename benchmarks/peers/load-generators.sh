#!/usr/bin/env bash
# The load generators `make bench-peers` drives: wrk (REST) and h2load (gRPC), Debian packages wrk and
# nghttp2-client. Installed where they can be (root with apt-get), as tests/setup-host.sh does for the test
# suite; elsewhere it stops at once with one line naming what is missing and the command that installs it.
set -euo pipefail

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
((${#missing[@]})) || exit 0
if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "benchmarks/peers/load-generators.sh: the benchmark needs ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
  || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; } \
  || { echo "benchmarks/peers/load-generators.sh: apt-get could not install ${missing[*]}" >&2; exit 1; }
