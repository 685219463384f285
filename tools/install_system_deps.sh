#!/usr/bin/env bash
# Makes sure the command-line tools the pipeline calls are present:
# espeak-ng (synthetic corpus), sox and ffmpeg (audio conversion), chromium
# (the test that drives the server's microphone page in a real browser).
# Installs them with apt-get when running as root; otherwise says what to do.
set -eu
packages=(espeak-ng sox ffmpeg chromium)
missing=()
for p in "${packages[@]}"; do
  command -v "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "error: missing system tools: ${missing[*]}" >&2
echo "Install them, e.g. 'sudo apt-get install ${missing[*]}' (Debian/Ubuntu)" >&2
echo "or 'brew install ${missing[*]}' (macOS), then run make again." >&2
exit 1
