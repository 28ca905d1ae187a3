#!/usr/bin/env bash
# Debian packages ScaiWave needs on the machine: ffmpeg/ffprobe (egress media, audio decoding),
# espeak-ng and sox (test speech), pocketsphinx-testdata (human speech clips for tests), chromium
# (the admin's browser tests, driven by Playwright with executable_path=/usr/bin/chromium), docker-compose
# (its `config` checks docker-compose.yml in scaiwave/tests/test_compose.py; no Docker engine is needed) and caddy
# (the TLS front of `make prod-check`).
# Installs only what is missing; needs root (as on our machines and CI).
set -euo pipefail
wanted=(ffmpeg espeak-ng sox pocketsphinx-testdata chromium docker-compose caddy)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
echo "system packages: ${wanted[*]} present"
