#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need,
# checks formatting and vet, builds for amd64, arm64 and armv7 (running the
# ARM builds, and the storage and API unit tests, under qemu), smoke-fuzzes
# every fuzz target, then runs every test, unit and end-to-end, under the
# race detector. It ends with go
# test's own summary lines. Fits in 20 minutes on 2 cores (the fuzz
# smoke, ~40 targets, is a third of it: each run is mostly the instrumented
# build, so the count is kept modest; fuzz longer by hand).
#
# Environment: FUZZTIME (per fuzz target, default 50000x: an execution
# count, because a -fuzztime duration can end a run with a spurious
# "context deadline exceeded" from go test itself), TEST_TIMEOUT
# (go test -timeout, default 12m), WEIR_CRASH_LOOPS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
if [[ -z ${HOME:-} ]]; then
  HOME=$(getent passwd "$(id -u)" | cut -d: -f6)
  export HOME
fi

t0=$SECONDS
step() { printf '\n=== %s (%ds)\n' "$*" "$((SECONDS - t0))"; }

step "install dependencies"
bash scripts/install-deps.sh

step "gofmt"
mapfile -t gofiles < <(git ls-files --cached --others --exclude-standard -- '*.go')
unformatted=$( ((${#gofiles[@]})) && gofmt -l "${gofiles[@]}" || true)
if [[ -n $unformatted ]]; then
  echo "gofmt: these files need formatting:" >&2
  echo "$unformatted" >&2
  exit 1
fi

step "go vet ./..."
go vet ./...

step "go build ./..."
go build ./...

step "cross-compile linux/arm64 and linux/arm (GOARM=7)"
xdir=$(mktemp -d)
trap 'rm -rf "$xdir"' EXIT
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build ./...
# go-fuse v2.12.1 does not compile for 32-bit ARM (its splice code wants
# int64 where syscall returns int there). Only the power-cut test
# filesystem uses it, and that never runs on a gateway: leave out every
# package that depends on it, and say so.
mapfile -t arm_pkgs < <(CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go list \
  -f '{{.ImportPath}}{{range .Deps}}{{if eq . "github.com/hanwen/go-fuse/v2/fuse"}} fuse{{end}}{{end}}' ./... |
  awk '$2 == "fuse" { print "  (arm: skipping " $1 ", it needs go-fuse)" > "/dev/stderr"; next } { print $1 }')
CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go build "${arm_pkgs[@]}"
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -o "$xdir/weir-arm64" ./gateway/cmd/weir
CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go build -o "$xdir/weir-armv7" ./gateway/cmd/weir
# Built is not the same as runs: start each ARM binary under emulation.
qemu-aarch64-static "$xdir/weir-arm64" version
qemu-arm-static "$xdir/weir-armv7" version

step "unit tests of wal, shards, gateway/api, gateway/consumer, internal/tlsmem under qemu (arm64, armv7)"
# ARM is the target, not a cross-compile: the storage and API packages'
# tests run emulated, where armv7's 64-bit atomics must be 8-byte aligned
# (and tlsmem's field offsets into crypto/tls differ on 32-bit).
# Left out here (they run natively below): tests that measure timing, which
# emulation distorts.
qemu_skip='^(TestCommitDelayGroupsConcurrentAppenders)$'
for arch in arm64 arm; do
  emu=qemu-aarch64-static
  [[ $arch == arm ]] && emu=qemu-arm-static
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch GOARM=7 go test -exec "$emu" -count=1 -timeout 15m \
    -skip "$qemu_skip" ./wal ./shards ./gateway/api ./gateway/consumer ./internal/tlsmem
done

step "fuzz smoke (${FUZZTIME:-50000x} per target)"
# Each target is bounded: a fuzz input that hangs the code is a failure
# like any other, not a reason to stall the whole run.
while read -r pkg target; do
  start=$SECONDS
  if ! timeout -k 10 300 go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-50000x}" "$pkg" >"$xdir/fuzz.log" 2>&1; then
    cat "$xdir/fuzz.log"
    echo "fuzz $pkg $target: failed or did not finish within 300s" >&2
    exit 1
  fi
  echo "fuzz $pkg $target: ok ($((SECONDS - start))s)"
done < <(go test -list '^Fuzz' ./... | awk '/^Fuzz/ { t[++n] = $1 } /^ok / { for (i = 1; i <= n; i++) print $2, t[i]; n = 0 }')

step "vendored mochi: upstream's tests, the idle- and publish-stack thresholds"
# third_party/mochi-mqtt-server is a module of its own, so ./... does not
# reach it. Upstream's tests run against the patched server.go and
# clients.go; the stack threshold is built without -race, whose frames are
# larger (PATCHES.md).
(
  cd third_party/mochi-mqtt-server
  go vet .
  go test -race -count=1 .
  go test -count=1 -run '^TestIdleClientStacks$' .
)
# The publish path's stack threshold goes through weir's hooks and store,
# so it lives in ingest; like the idle one it is built without -race.
go test -count=1 -run '^(TestPublishStack|TestPingStack)$' ./ingest/

step "go test -race ./... (unit and end-to-end)"
# A FUSE server that dies with its own mount still open (integration/lazyfs)
# leaves a test process that no signal ends, and go test waiting for it
# forever. Past the test timeout plus a minute, abort the FUSE connections
# of the lazyfs mounts this run made, so the run ends (failed) instead.
abort_own_lazyfs_mounts() {
  awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "fuse.lazyfs") print $3, $5, $(i+2); break } }' /proc/self/mountinfo |
    while read -r dev mnt src; do
      pid=${src#lazyfs@}
      pid=${pid%%:*}
      # Only mounts served by a descendant of this script.
      p=$pid
      while [[ -n $p && $p != 0 && $p != 1 && $p != "$$" ]]; do
        p=$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null || true)
      done
      [[ $p == "$$" ]] || continue
      echo "test.sh: aborting the stuck FUSE mount $mnt (server pid $pid)" >&2
      echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort" 2>/dev/null || true
      umount -l "$mnt" 2>/dev/null || true
    done
}
timeout=${TEST_TIMEOUT:-12m}
case $timeout in
  *m) limit=$((${timeout%m} * 60)) ;;
  *s) limit=${timeout%s} ;;
  *) limit=720 ;;
esac
(
  sleep $((limit + 60)) &
  nap=$!
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  wait "$nap" && abort_own_lazyfs_mounts
) &
watchdog=$!
# -count=1: the end-to-end tests exec binaries built from other packages,
# which go test's result cache cannot see.
# The end-to-end package (integration) runs without -race: what it tests
# runs in separate weir processes, and its simulated devices use paho,
# whose reconnect path (v1.5.1: client.resume vs the outgoing writer) has a
# data race of its own that made runs fail at random. Every other package,
# harness, lazyfs and firmware-sim included, runs under -race.
rc=0
mapfile -t race_pkgs < <(go list ./... | grep -vx 'github.com/weir-gateway/weir/integration')
go test -race -count=1 -timeout "$timeout" "${race_pkgs[@]}" || rc=$?
go test -count=1 -timeout "$timeout" ./integration/ || rc=$?
kill "$watchdog" 2>/dev/null || true
exit "$rc"
