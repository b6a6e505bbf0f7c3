#!/usr/bin/env bash
# One-command, idempotent set-up: a .venv with kugeldrill installed, redis-server,
# toxiproxy-server/toxiproxy-cli, and the real Dapr sidecar (daprd, built from source with Go).
# Quiet when everything is already in place.
#
# daprd is the longest step on a fresh machine (minutes of downloads and compiling), so it
# starts first, in the background, and the other steps run meanwhile. It is the only Dapr
# sidecar kugeldrill runs: without it (no Go to build it) setup fails, saying how to get it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS="$ROOT/tools/bin"
PY=${PYTHON:-python3}
say() { echo "setup: $*"; }

# --- daprd (background) ---------------------------------------------------------
# Its own process group, so an early failure below stops the whole build (go and its children).
daprd_pid=""
stop_daprd_build() {
    if [ -n "$daprd_pid" ] && kill -0 "$daprd_pid" 2>/dev/null; then
        kill -TERM -- "-$daprd_pid" 2>/dev/null || true
        wait "$daprd_pid" 2>/dev/null || true
    fi
}
trap stop_daprd_build EXIT
if command -v setsid >/dev/null 2>&1; then
    setsid scripts/build-daprd.sh &
else
    scripts/build-daprd.sh &
fi
daprd_pid=$!

# --- Python environment -------------------------------------------------------
stamp=".venv/.kugeldrill-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
        say "Python >= 3.11 is required (found: $("$PY" --version 2>&1)). Install python3.11+ and re-run, or set PYTHON=/path/to/python3.11."
        exit 1
    fi
    say "creating .venv and installing kugeldrill (editable) ..."
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e ".[dev,native]" > .venv/install.log 2>&1 \
        || { cat .venv/install.log; say "pip install failed (log above, also in .venv/install.log)"; exit 1; }
    echo "$want" > "$stamp"
fi

# --- redis-server ---------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        say "installing redis-server with apt-get ..."
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
        # The package may start a system instance; drills start their own on free ports.
    else
        say "redis-server not found. Install it: 'sudo apt-get install redis-server' (Debian/Ubuntu),"
        say "  'brew install redis' (macOS), or run the container image 'redis:7'."
        exit 1
    fi
fi

# --- glibc locale sources (the native Kugelpos compiles ja_JP.UTF-8 from them) ----------
if [ ! -f /usr/share/i18n/locales/ja_JP ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing glibc locale sources (locales) with apt-get ..."
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq locales >/dev/null || say "could not install locales; 'kugeldrill kugelpos up' will say what is missing"
fi

# --- toxiproxy-server / toxiproxy-cli -------------------------------------------------
# `kugeldrill setup` holds the recipe (go install of the pinned release into tools/bin).
have_toxiproxy() { command -v toxiproxy-server >/dev/null 2>&1 || [ -x "$TOOLS/toxiproxy-server" ]; }
if ! have_toxiproxy; then
    say "installing toxiproxy into tools/bin ..."
    .venv/bin/kugeldrill setup --only toxiproxy-server || exit 1
fi

# --- daprd (wait) ------------------------------------------------------------------
daprd_rc=0
wait "$daprd_pid" || daprd_rc=$?
daprd_pid=""
if [ "$daprd_rc" != 0 ]; then
    # build-daprd.sh printed why (3: Go is missing, with how to get it; else the build log).
    say "setup failed: real daprd is required (every Dapr sidecar kugeldrill starts is daprd); fix the above and run 'make setup' again (it builds daprd with scripts/build-daprd.sh)"
    exit 1
fi
exit 0
