#!/usr/bin/env bash
# Build the real Dapr sidecar (daprd) from the Go module proxy into tools/bin, once.
#
#   scripts/build-daprd.sh          daprd 1.18.0 -> tools/bin/daprd      (what `make setup` runs)
#   scripts/build-daprd.sh 1.16     daprd 1.16.0 -> tools/bin/daprd-1.16 (`make daprd-1.16`, opt-in)
#
# tools/ is the checkout's, or $KUGELDRILL_TOOLS_DIR: `kugeldrill setup` runs this same script
# (shipped in the wheel as kugeldrill/ground/build-daprd.sh) for an installed kugeldrill, with
# its per-user tools folder there.
#
# Why from source: Dapr publishes daprd as GitHub release assets and container images, which
# this project's machines cannot reach; the Go module proxy serves the source. The build is
# pinned (module version, build tags, component set, ldflags) so every machine runs the same
# sidecar.
#
# Components: daprd registers its component types in cmd/daprd/components/, one file per type.
# KUGELDRILL_DAPRD_COMPONENTS=redis (the default) keeps the Redis-backed ones (state, pub/sub,
# lock, configuration, binding), both stable name resolvers and the local secret stores —
# everything the embedded stack's and Kugelpos' own component files use — and drops the rest before
# compiling: the same runtime and the same Redis components as a full daprd, for about a
# seventh of the downloads and half the packages to compile. `stable` keeps every stable
# component (Dapr's `-tags stablecomponents` as it is).
#
# Idempotent: nothing happens when the target binary already reports the pinned version and
# (if this script built it) was built with today's recipe. Concurrent runs (CI starts the
# build early, `make setup` waits for it) are serialised with flock: the second finds the binary.
# Exit codes: 0 built or already there; 3 Go is missing (advice printed); 1 the build failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS_DIR=${KUGELDRILL_TOOLS_DIR:-$ROOT/tools}
TOOLS="$TOOLS_DIR/bin"
LINE=${1:-1.18}
say() { echo "setup: $*"; }

case "$LINE" in
    1.18)
        VERSION=1.18.0
        OUT="$TOOLS/daprd"
        REPLACE=""
        ;;
    1.16)
        # dapr v1.16.1/v1.16.2 are not served by the proxy (they need components-contrib
        # v1.16.3, which is not either); v1.16.0 is, but wants components-contrib v1.16.0,
        # which is not; v1.16.1 of components-contrib is served and is a patch release.
        VERSION=1.16.0
        OUT="$TOOLS/daprd-1.16"
        REPLACE="github.com/dapr/components-contrib=github.com/dapr/components-contrib@v1.16.1"
        ;;
    *)
        say "unknown daprd line '$LINE' (known: 1.18, 1.16)"
        exit 2
        ;;
esac
# Without one of Dapr's component tags the binary registers no components and panics at start.
TAGS=stablecomponents
COMPONENTS=${KUGELDRILL_DAPRD_COMPONENTS:-redis}
case "$COMPONENTS" in
    redis|stable) ;;
    *) say "KUGELDRILL_DAPRD_COMPONENTS=$COMPONENTS: expected redis or stable"; exit 2 ;;
esac
# As Dapr's Makefile: the version in `daprd --version`, /v1.0/metadata and every log line (ver=).
LDFLAGS="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$VERSION -X github.com/dapr/kit/logger.DaprVersion=$VERSION"
RECIPE="dapr v$VERSION; replace: ${REPLACE:-none}; tags: $TAGS; components: $COMPONENTS; ldflags: $LDFLAGS; CGO_ENABLED=0; -trimpath"
STAMP="$OUT.recipe"

# Current: reports the pinned version and, if we built it, with today's recipe (a binary
# put there by hand has no stamp and is taken as it is).
is_current() {
    [ -x "$OUT" ] || return 1
    [ "$("$OUT" --version 2>/dev/null | head -n1)" = "$VERSION" ] || return 1
    [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" = "$RECIPE" ]
}

is_current && exit 0

if ! command -v go >/dev/null 2>&1; then
    say "daprd $VERSION is not in tools/bin and Go is not installed, so it cannot be built."
    say "  Install Go >= 1.24 (go.dev/dl; with GOTOOLCHAIN=auto, the default, Go fetches the"
    say "  1.26 toolchain dapr $VERSION asks for) and re-run 'make setup', or put a daprd $VERSION"
    say "  binary (release asset daprd_linux_amd64.tar.gz) at $OUT."
    say "  Drills need it: every Dapr sidecar they start is daprd."
    exit 3
fi

mkdir -p "$TOOLS"
exec 9>"$TOOLS/.daprd-build.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
    is_current && exit 0  # another run built it while we waited
fi

LOG="$TOOLS_DIR/daprd-$LINE-build.log"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kugeldrill-daprd.XXXXXX")
heartbeat=""
cleanup() {
    [ -n "$heartbeat" ] && kill "$heartbeat" 2>/dev/null || true
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # run the clean-up when setup stops the build

start=$(date +%s)
say "building daprd $VERSION (-tags $TAGS, $COMPONENTS components) from the Go module proxy into ${OUT#"$ROOT"/}:"
say "  the first build downloads and compiles for minutes; later ones reuse the Go caches (log: ${LOG#"$ROOT"/})"
: > "$LOG"
(   # one progress line a minute, so a long CI step does not look hung
    while sleep 60 </dev/null >/dev/null 2>&1; do  # an orphaned sleep must not hold our stdout open
        mods=$(grep -c '^go: downloading' "$LOG" 2>/dev/null || true)
        what="compiling"
        [ "${mods:-0}" -gt 0 ] && what="${mods} modules downloaded so far"
        say "  daprd build running for $(( ($(date +%s) - start) / 60 )) min ($what)"
    done
) &
heartbeat=$!

build() {
    local dir
    dir=$(go mod download -json "github.com/dapr/dapr@v$VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
    [ -n "$dir" ] && [ -d "$dir" ] || { echo "go mod download gave no module directory"; return 1; }
    # The module cache is read-only; the build (and a replace) needs a writable copy.
    cp -r "$dir" "$WORK/src"
    chmod -R u+w "$WORK/src"
    cd "$WORK/src"
    local mod=()
    if [ "$COMPONENTS" = redis ]; then
        find cmd/daprd/components -maxdepth 1 -name '*.go' ! -name '*_redis.go' \
            ! -name 'nameresolution_mdns.go' ! -name 'nameresolution_kubernetes.go' \
            ! -name 'secretstores_local_env.go' ! -name 'secretstores_local_file.go' ! -name 'zz_notag.go' -delete
        ls cmd/daprd/components
    fi
    if [ -n "$REPLACE" ]; then
        go mod edit -replace "$REPLACE"
        mod=(-mod=mod)  # the replaced module's go.sum lines are added as it is fetched
    fi
    # -trimpath: cache entries do not depend on this temporary directory, so a rebuild (a new
    # clone, CI) reuses the Go build cache. CGO off as in Dapr's release builds (static binary).
    CGO_ENABLED=0 go build "${mod[@]}" -trimpath -tags "$TAGS" -ldflags "$LDFLAGS" -o "$WORK/daprd" ./cmd/daprd
}

if ! (build) >>"$LOG" 2>&1; then
    tail -n 30 "$LOG" | sed 's/^/    /'
    say "building daprd $VERSION failed after $(( $(date +%s) - start ))s (log above, also in ${LOG#"$ROOT"/})"
    exit 1
fi
mv -f "$WORK/daprd" "$OUT"
echo "$RECIPE" > "$STAMP"
if ! is_current; then
    say "the built $OUT does not report version $VERSION ('$("$OUT" --version 2>&1 | head -n1)')"
    exit 1
fi
say "daprd $VERSION built in $(( $(date +%s) - start ))s ($(du -h "$OUT" | cut -f1))"
