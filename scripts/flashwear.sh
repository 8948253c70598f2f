#!/usr/bin/env bash
# Flash wear (issue 12): how many bytes reach the block device per byte of
# MQTT payload stored, with weir's data directory on a fresh ext4 on a loop
# device. Drives the real weir binary with the firmware-sim fleet and reads
# /sys/block/loopN/stat (field 7: sectors written, of 512 bytes, counted
# below the filesystem: data, metadata and the ext4 journal) and weir's
# /metrics (records appended, fdatasyncs, commit groups) at the start and
# end of a measured window after a warm-up.
#
#   sudo bash scripts/flashwear.sh
#
# Needs root (losetup, mkfs.ext4 from e2fsprogs, mount), a free loop device
# and about (WARMUP + DURATION + 15s) per mode. Environment (defaults):
#   MODES="always interval"  durability.fsync of each run (interval: 10ms)
#   COMMIT_DELAY=                durability.commit_delay (fsync always;
#                                default: weir's own)
#   DEVICES=1000 RATE=5 SIZE=200   the fleet: devices × msg/s × payload bytes
#   SHARDS=4  SEGMENT_SIZE=16MiB   the stream
#   RETENTION=24h                  its retention: short (e.g. 30s, with a
#                                  WARMUP past the first deletions) measures
#                                  the steady state where deleted segments'
#                                  files are reused instead of zero-filled
#   WARMUP=20s DURATION=120s       unmeasured, then measured time
#   IMAGE_SIZE=4G                  the sparse loop image (in TMPDIR)
#   OUT=bench-results/flashwear-<date>  where the report and logs go
#   WEIR_BIN, SIM_BIN              prebuilt binaries (default: go build)
# Prints one line per mode and writes $OUT/flashwear.txt. The projection
# is the measured device write rate sustained for a year (TB = 10^12 B).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi

MODES=${MODES:-always interval}
COMMIT_DELAY=${COMMIT_DELAY:-}
DEVICES=${DEVICES:-1000} RATE=${RATE:-5} SIZE=${SIZE:-200}
SHARDS=${SHARDS:-4} SEGMENT_SIZE=${SEGMENT_SIZE:-16MiB} RETENTION=${RETENTION:-24h}
WARMUP=${WARMUP:-20s} DURATION=${DURATION:-120s} IMAGE_SIZE=${IMAGE_SIZE:-4G}
out=${OUT:-bench-results/flashwear-$(date -u +%Y%m%dT%H%M%SZ)}

die() { printf 'flashwear: %s\n' "$*" >&2; exit 2; }
secs() { # 90s, 2m, 1m30s -> seconds
  local d=$1 s=0
  [[ $d =~ ^([0-9]+m)?([0-9]+s)?$ && -n $d ]] || die "bad duration $d (use e.g. 120s or 2m)"
  [[ -n ${BASH_REMATCH[1]} ]] && s=$((s + ${BASH_REMATCH[1]%m} * 60))
  [[ -n ${BASH_REMATCH[2]} ]] && s=$((s + ${BASH_REMATCH[2]%s}))
  echo "$s"
}
warm=$(secs "$WARMUP") measure=$(secs "$DURATION")

[[ $(id -u) == 0 ]] || die "needs root (losetup, mkfs.ext4, mount); run with sudo"
for tool in losetup mkfs.ext4 mount umount curl awk; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (scripts/install-deps.sh installs e2fsprogs; losetup and mount are util-linux)"
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/weir-flashwear.XXXXXX")
loop="" mnt="$work/mnt" weir_pid="" sim_pid=""
cleanup() {
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  [[ -n $weir_pid ]] && kill "$weir_pid" 2>/dev/null && wait "$weir_pid" 2>/dev/null
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  [[ -n $loop ]] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

weir=${WEIR_BIN:-} sim=${SIM_BIN:-}
if [[ -z $weir ]]; then
  weir=$work/weir
  go build -o "$weir" ./gateway/cmd/weir
fi
if [[ -z $sim ]]; then
  sim=$work/firmware-sim
  go build -o "$sim" ./firmware-sim
fi

freeport() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# sectors: field 7 of the device's stat; write I/Os: field 5.
devstat() { awk -v f="$1" '{print $f}' "/sys/block/$(basename "$loop")/stat"; }
# metric NAME: the sum of a family's samples (all shards) on /metrics.
metric() { curl -fsS "http://$api/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" {s += $2} END {printf "%.0f\n", s}'; }

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "kernel: $(uname -srm)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "backing disk of the image: $(df -h --output=source,fstype "$work" | tail -1)"
  echo "fleet: $DEVICES devices x $RATE msg/s x $SIZE B QoS 1; stream: $SHARDS shards, segment_size $SEGMENT_SIZE, retention $RETENTION, commit_delay ${COMMIT_DELAY:-default}"
  echo "window: ${WARMUP} warm-up, ${DURATION} measured; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/flashwear.txt"

for mode in $MODES; do
  case $mode in always | interval) ;; *) die "unknown mode $mode (always | interval)" ;; esac
  truncate -s "$IMAGE_SIZE" "$work/disk.img"
  loop=$(losetup -f --show "$work/disk.img")
  # No lazy initialisation: ext4lazyinit would write during the window.
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$loop"
  mkdir -p "$mnt"
  mount "$loop" "$mnt"
  mqtt=127.0.0.1:$(freeport) api=127.0.0.1:$(freeport)
  cat >"$work/weir.yaml" <<EOF
data_dir: "$mnt/data"
log: {level: warn, format: json}
mqtt:
  listen: $mqtt
durability:
  fsync: $mode${COMMIT_DELAY:+
  commit_delay: $COMMIT_DELAY}
api:
  listen: $api
streams:
  - name: telemetry
    shards: $SHARDS
    segment_size: $SEGMENT_SIZE
    retention: $RETENTION
    rate: {records_per_sec: 0, bytes_per_sec: 0}
routes:
  - filter: devices/+/telemetry
    stream: telemetry
    partition_key: "{topic.1}"
EOF
  "$weir" serve --config "$work/weir.yaml" 2>"$out/weir-$mode.log" &
  weir_pid=$!
  for _ in $(seq 100); do
    curl -fsS "http://$api/readyz" >/dev/null 2>&1 && break
    kill -0 "$weir_pid" 2>/dev/null || die "weir exited; see $out/weir-$mode.log"
    sleep 0.1
  done
  curl -fsS "http://$api/readyz" >/dev/null || die "weir not ready; see $out/weir-$mode.log"

  "$sim" --broker "tcp://$mqtt" --devices "$DEVICES" --rate "$RATE" --size "$SIZE" --payload binary \
    --qos 1 --ramp 5s --duration "$((warm + measure + 5))s" --progress 0 --summary json \
    >"$out/fleet-$mode.json" 2>"$out/fleet-$mode.log" &
  sim_pid=$!
  sleep "$warm"
  s0=$(devstat 7) w0=$(devstat 5) r0=$(metric weir_shard_appended_records_total)
  y0=$(metric weir_stream_syncs_total) g0=$(metric weir_stream_commit_groups_total)
  f0=$(find "$mnt/data" -name '*.seg' | wc -l)
  sleep "$measure"
  s1=$(devstat 7) w1=$(devstat 5) r1=$(metric weir_shard_appended_records_total)
  y1=$(metric weir_stream_syncs_total) g1=$(metric weir_stream_commit_groups_total)
  f1=$(find "$mnt/data" -name '*.seg' | wc -l)
  wait "$sim_pid" || true
  sim_pid=""
  kill "$weir_pid"
  wait "$weir_pid" || true
  weir_pid=""
  umount "$mnt"
  losetup -d "$loop"
  loop=""
  rm -f "$work/disk.img"

  awk -v mode="$mode" -v s="$((s1 - s0))" -v w="$((w1 - w0))" -v r="$((r1 - r0))" -v y="$((y1 - y0))" \
    -v g="$((g1 - g0))" -v segs="$((f1 - f0))" -v size="$SIZE" -v t="$measure" -v offered="$((DEVICES * RATE))" 'BEGIN {
      if (r == 0) { print "flashwear: " mode ": no record stored in the window" > "/dev/stderr"; exit 1 }
      bytes = s * 512; payload = r * size
      printf "fsync %-8s %8.0f records/s  device %6.2f MB/s (%5.1f KiB/write)  %5.2f device bytes per payload byte  %6.2f records/fdatasync  %6.2f records/group  %2d new segments  %6.1f TB/year\n",
        mode, r / t, bytes / t / 1e6, (w ? bytes / w / 1024 : 0), bytes / payload, (y ? r / y : 0), (g ? r / g : 0), segs, bytes / t * 365.25 * 86400 / 1e12
      if (r / t < 0.9 * offered)
        printf "  (the fleet offered %d records/s; stored %.0f%% of that: the machine could not keep up: slower syncs batch more records each, so the ratio is lower than at the full rate)\n", offered, 100 * r / t / offered
    }' | tee -a "$out/flashwear.txt"
done
echo "report in $out/flashwear.txt" >&2
