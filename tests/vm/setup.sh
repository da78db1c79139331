#!/bin/sh
# What the cgroup v2 VM test needs, on a Debian 12 machine (root): QEMU, kmod, Debian's 6.1 kernel
# (downloaded and unpacked, not installed: its modules where virtme-ng looks for them) and
# virtme-ng in a virtual environment of its own. Idempotent; prints the kernel image's path.
set -eu
DIR=${VM_DIR:-/var/tmp/autograder-vm}
mkdir -p "$DIR"
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v modprobe >/dev/null || ! command -v busybox >/dev/null; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 kmod busybox-static >&2
fi
PACKAGE=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | cut -d' ' -f1 | sort -V | tail -1)
VERSION=${PACKAGE#linux-image-}
if [ ! -f "$DIR/boot/vmlinuz-$VERSION" ]; then
    (cd "$DIR" && apt-get download "$PACKAGE" >&2 && dpkg-deb -x "$PACKAGE"_*.deb . && rm -f "$PACKAGE"_*.deb)
fi
mkdir -p /lib/modules
[ -e "/lib/modules/$VERSION" ] || ln -s "$DIR/lib/modules/$VERSION" "/lib/modules/$VERSION"
if [ ! -x "$DIR/venv/bin/vng" ]; then
    python3 -m venv "$DIR/venv" >&2
    "$DIR/venv/bin/pip" install -q virtme-ng >&2
fi
echo "$DIR/boot/vmlinuz-$VERSION"
