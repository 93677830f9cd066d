#!/bin/sh
# Build a Debian 12 base image without a registry: debootstrap a minimal
# root file system and import it into podman (what `make test` uses as
# BASE_IMAGE on machines without registry access). Needs root.
#   containers/base-image.sh [IMAGE] [MIRROR]
# The host's CA bundle and local CAs are copied in, so that apt and pip in
# image builds trust what the host trusts (e.g. a TLS-intercepting proxy).
set -eu
image=${1:-localhost/debian:bookworm}
mirror=${2:-http://deb.debian.org/debian}

if podman image exists "$image"; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "$image is missing; build it as root: sudo sh $0 $image" >&2
    exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT INT TERM
echo "Building $image with debootstrap from $mirror (about a minute)..."
debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 || {
    cat "$dir.log" >&2; rm -f "$dir.log"; exit 1; }
rm -f "$dir.log"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$dir/etc/ssl/certs" "$dir/usr/local/share/ca-certificates"
    cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
    cp -r /usr/local/share/ca-certificates/. "$dir/usr/local/share/ca-certificates/" 2>/dev/null || true
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$dir/etc/pip.conf"
fi
rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"*
tar -C "$dir" -c . | podman import - "$image" >/dev/null
echo "$image ready"
