#!/usr/bin/env bash
# Runs weir's benchmarks and writes the results to bench-results/ (for
# BENCHMARKS.md): the machine, every `go test -bench` benchmark (repeated
# for benchstat) and the end-to-end ingest benchmark (weir vs a bare mochi
# broker: throughput ratio, paced latency, idle footprint).
#
# Environment: BENCHTIME (default 1s), COUNT (default 5),
# E2E_DURATION (per throughput/latency run, default 10s), E2E_ROUNDS
# (runs per broker, default 3), OUT (directory).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi

out=${OUT:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
echo "writing to $out" >&2

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "go: $(go version)"
  echo "kernel: $(uname -srm)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
  echo "disk: $(df -h --output=source,fstype . | tail -1)"
} | tee "$out/machine.txt"

echo "== go test -bench (benchtime ${BENCHTIME:-1s}, count ${COUNT:-5})" >&2
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" -count "${COUNT:-5}" -timeout 60m ./... | tee "$out/go-bench.txt"

echo "== end-to-end: weir vs bare mochi" >&2
go build -o "$out/weir-bench" ./gateway/cmd/weir-bench
"$out/weir-bench" --mode all --duration "${E2E_DURATION:-10s}" --rounds "${E2E_ROUNDS:-3}" --json-file "$out/e2e.json" | tee "$out/e2e.txt"
rm -f "$out/weir-bench"
echo "results in $out" >&2
