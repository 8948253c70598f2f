#!/usr/bin/env bash
# Installs what weir's tests need on a fresh Debian (bookworm) machine.
# Idempotent: a second run installs nothing and takes about a second.
#
#   Debian: awscli (tests drive weir's Kinesis API with the AWS CLI),
#           mosquitto (reference broker and mosquitto_passwd),
#           mosquitto-clients (mosquitto_pub/mosquitto_sub: a separate Debian
#           package, not pulled in by mosquitto without recommends),
#           qemu-user-static (runs the arm64/armv7 builds),
#           fuse3 (fusermount3 for integration/lazyfs),
#           chromium (the headless browser integration/console_test.go drives
#           through chromedp; large, but the console is tested as a person sees it),
#           zstd (forwarder/s3sink checks its objects with Debian's zstd -d),
#           systemd (systemd-analyze verify of the packaged unit) and adduser
#           (the package's postinst), for integration TestRelease,
#           e2fsprogs (mkfs.ext4) and util-linux (losetup, mount) for
#           scripts/flashwear.sh, the flash-wear benchmark (run by hand, as root).
#   npm:    integration/package-lock.json, pinned: kinesalite 3.3.3,
#           aws-kinesis-agg 4.2.8, @aws-sdk/client-kinesis 3.1143.0, mqtt 5.16.0,
#           s3rver 3.7.1 (S3 emulator for forwarder/s3sink),
#           into integration/node_modules (cache in integration/.npm).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'install-deps: %s\n' "$*" >&2; }

SUDO=()
if [[ $(id -u) != 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    SUDO=(none)
  fi
fi

apt_packages=(awscli mosquitto mosquitto-clients qemu-user-static fuse3 chromium zstd systemd adduser e2fsprogs util-linux)
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)

missing=()
for p in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [[ ${SUDO[0]:-} == none ]]; then
    log "not root and no sudo: cannot install ${missing[*]}; tests that need them will fail"
  else
    log "apt: installing ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  log "apt: ${apt_packages[*]} already installed"
fi

# FUSE for integration/lazyfs; in a container the module may be built in
# or unavailable, and lazyfs's tests say so themselves.
if [[ ! -e /dev/fuse ]]; then
  modprobe fuse 2>/dev/null || "${SUDO[@]/none/true}" modprobe fuse 2>/dev/null || true
fi

# npm packages, exactly as locked. The stamp makes a second run free;
# npm ci wipes node_modules, so only run it when the lockfile changed.
lock=integration/package-lock.json
stamp=integration/node_modules/.weir-lock.sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" && -x integration/node_modules/.bin/kinesalite ]]; then
  log "npm: integration/node_modules up to date"
else
  log "npm: npm ci --prefix integration"
  npm ci --prefix integration --cache "$PWD/integration/.npm" --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
fi
