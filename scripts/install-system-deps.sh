#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when something is missing.
set -euo pipefail
need=()
command -v age >/dev/null 2>&1 || need+=(age)
command -v 7z >/dev/null 2>&1 || need+=(p7zip-full)
command -v bsdtar >/dev/null 2>&1 || need+=(libarchive-tools)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v gnome-keyring-daemon >/dev/null 2>&1 || need+=(gnome-keyring)
command -v dbus-run-session >/dev/null 2>&1 || need+=(dbus dbus-daemon)
command -v npm >/dev/null 2>&1 || need+=(npm)
# Shows the man pages installed with the package (tests/system/test_man.py); `man --version`,
# not `command -v`: a minimised image may have a stub in its place.
man --version >/dev/null 2>&1 || need+=(man-db)
# Traces every write of an export, to show no plaintext is ever written (even to nameless files).
command -v strace >/dev/null 2>&1 || need+=(strace)
# Go's archive/zip test archives (hostile and odd ZIPs) for the decrypt path (issue 4).
ls -d /usr/share/go-*/src/archive/zip/testdata >/dev/null 2>&1 || need+=(golang-1.19-src)
# Go's sumdb note and tlog, built offline in GOPATH mode: an independent checker of the ledger's
# checkpoints, receipts, consistency proofs and cosignatures (tests/oracles/go, issue 13).
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ] || need+=(golang-golang-x-mod-dev)
if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "securexport: error: missing Debian packages ${need[*]} and not root" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Recommends included: this is the set the suite was verified with (gnome-keyring needs some).
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
echo "system packages: installed"
