#!/usr/bin/env bash
# Release builds of weir: static, stripped binaries for Linux amd64, arm64
# and armv7 (Raspberry Pi OS 32-bit), and a .deb package of each.
#
#   scripts/release.sh                     everything, into dist/
#   scripts/release.sh --arch amd64        one architecture (comma-separated list)
#   VERSION=1.4.0 scripts/release.sh       the version to stamp (default: git describe)
#   OUT=/tmp/rel scripts/release.sh        another output directory
#
# Output: OUT/weir-VERSION-linux-ARCH (binary), OUT/weir_DEBVERSION_DEBARCH.deb,
# OUT/SHA256SUMS. Needs go and dpkg-deb (Debian's dpkg package), nothing else:
# CGO_ENABLED=0 makes the binaries static, so they need no libc on the board.
#
# The package installs /usr/bin/weir, /etc/weir/weir.yaml (a conffile: the
# embedded defaults with data in /var/lib/weir, loopback only), the systemd
# unit from configs/weir.service, and creates the system user weir and
# /var/lib/weir (packaging/debian/postinst). The unit is copied with two
# changes: the binary's path (/usr/local/bin for a hand install, /usr/bin in
# the package) and, instead of DynamicUser=yes, the package's static weir
# user, so that /var/lib/weir is a plain directory the operator can back up
# and the files in /etc/weir can be given to group weir.
set -euo pipefail
cd "$(dirname "$0")/.."

archs=amd64,arm64,armv7
while (($#)); do
	case $1 in
	--arch) archs=$2; shift 2 ;;
	*) echo "usage: $0 [--arch amd64,arm64,armv7]" >&2; exit 2 ;;
	esac
done

out=${OUT:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if git rev-parse --git-dir >/dev/null 2>&1; then
	revision=$(git rev-parse --short=12 HEAD)
	[[ -z $(git status --porcelain --untracked-files=no) ]] || revision+=-dirty
	version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null)}
else
	revision=unknown
	version=${VERSION:-dev}
fi
version=${version#v}

# Debian versions must start with a digit and use only [A-Za-z0-9.+~-]; an
# untagged tree is 0+git<describe>, which sorts below any tagged release.
debversion=$(printf '%s' "$version" | tr -c 'A-Za-z0-9.+~' '+')
[[ $debversion =~ ^[0-9] ]] || debversion=0+git$debversion

log() { printf 'release: %s\n' "$*" >&2; }

build() { # build GOARCH GOARM NAME
	local goarch=$1 goarm=$2 bin=$out/weir-$version-linux-$3
	log "building $bin"
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X main.version=$version -X main.revision=$revision" \
		-o "$bin" ./gateway/cmd/weir
	printf '%s' "$bin"
}

package() { # package BINARY DEBARCH
	local bin=$1 arch=$2
	local deb=$out/weir_${debversion}_$arch.deb
	local root
	root=$(mktemp -d)
	trap 'rm -rf "$root"' RETURN
	install -D -m 0755 "$bin" "$root/usr/bin/weir"
	install -D -m 0644 packaging/weir.yaml "$root/etc/weir/weir.yaml"
	install -d -m 0755 "$root/lib/systemd/system"
	{
		# The tree's header tells how to install by hand; the package did.
		printf '# weir.service from the weir package (configs/weir.service, run as user weir).\n'
		printf '# Override with systemctl edit weir; check a changed config with\n'
		printf '# weir check-config /etc/weir/weir.yaml\n\n'
		sed -e '1,/^\[Unit\]/{/^\[Unit\]/!d}' \
			-e 's#/usr/local/bin/weir#/usr/bin/weir#g' \
			-e 's#^DynamicUser=yes$#User=weir\nGroup=weir#' \
			-e 's#^\(\# /var/lib/weir, owned by the\) dynamic user\(.*\)#\1 weir user (the package creates it)\2#' \
			configs/weir.service
	} >"$root/lib/systemd/system/weir.service"
	chmod 0644 "$root/lib/systemd/system/weir.service"
	install -D -m 0644 configs/weir.example.yaml "$root/usr/share/doc/weir/examples/weir.example.yaml"
	install -D -m 0644 configs/weir.secure.yaml "$root/usr/share/doc/weir/examples/weir.secure.yaml"
	install -D -m 0644 README.md "$root/usr/share/doc/weir/README.md"
	install -d -m 0755 "$root/DEBIAN"
	install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
	echo /etc/weir/weir.yaml >"$root/DEBIAN/conffiles"
	cat >"$root/DEBIAN/control" <<CONTROL
Package: weir
Version: $debversion
Architecture: $arch
Maintainer: weir maintainers <weir@localhost>
Depends: adduser
Section: net
Priority: optional
Installed-Size: $(du -sk "$root" | cut -f1)
Homepage: https://github.com/weir-gateway/weir
Description: edge telemetry gateway: MQTT in, Kinesis-style streams on disk
 weir runs an MQTT broker whose publishes are stored durably in
 Kinesis-style sharded logs, read locally through a Kinesis-compatible
 API and forwarded upstream in order, at least once.
 .
 Revision $revision. The gateway listens on loopback only until configured.
CONTROL
	log "packaging $deb"
	# gzip: a quarter of xz's CPU for a package a quarter bigger (5 MiB).
	dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" >/dev/null
}

IFS=, read -ra list <<<"$archs"
for a in "${list[@]}"; do
	case $a in
	amd64) package "$(build amd64 '' amd64)" amd64 ;;
	arm64) package "$(build arm64 '' arm64)" arm64 ;;
	armv7) package "$(build arm 7 armv7)" armhf ;;
	*) echo "release: unknown architecture $a (amd64, arm64, armv7)" >&2; exit 2 ;;
	esac
done
(cd "$out" && sha256sum weir-"$version"-linux-* weir_"$debversion"_*.deb >SHA256SUMS)
log "done: $out"
