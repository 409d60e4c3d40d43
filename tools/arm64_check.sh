#!/usr/bin/env bash
# Proof that the appliance installs and runs on arm64, on an x86 machine: a Debian 12 arm64
# root file system made with debootstrap, run under qemu-user emulation, where pip installs
# the aarch64 wheels, the suite's fast part runs, and one default model answers.
#
# Needs: root, Debian's qemu-user-static, debootstrap and binfmt support, and network access
# to Debian's and PyPI's package registries. Emulated timings mean nothing; correctness and
# install do. Skips (exit 0, with the reason) where the machine does not allow it.
#   sudo tools/arm64_check.sh [ROOT]        (default ROOT: /tmp/appliance-arm64)
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
root=${1:-/tmp/appliance-arm64}
skip() { echo "arm64 check skipped: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, binfmt)"
command -v debootstrap >/dev/null || skip "needs Debian's debootstrap (apt-get install debootstrap)"
[ -x /usr/bin/qemu-aarch64-static ] || skip "needs Debian's qemu-user-static"
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
    skip "binfmt_misc cannot be mounted here"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || skip "qemu-aarch64 is not registered with binfmt_misc"
set -e

if [ ! -x "$root/usr/bin/python3" ]; then
  echo "[1/4] debootstrap arm64 Debian 12 into $root (a few minutes)"
  debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$root" >/dev/null
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mkdir -p "$root/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
# No /sys: with the host's x86 /sys mounted, onnxruntime's cpuinfo crashes under qemu
# (segmentation fault); without it, it only warns that it cannot read the CPU list.
trap 'umount "$root/proc" 2>/dev/null || true' EXIT

echo "[2/4] copy the project"
rm -rf "$root/appliance-src" && mkdir -p "$root/appliance-src"
(cd "$here" && tar --exclude=.venv --exclude=.git --exclude='__pycache__' --exclude=models/.build \
   --exclude='models/.*' -cf - appliance tests tools pyproject.toml README.md models systemd) |
  tar -xf - -C "$root/appliance-src"

echo "[3/4] pip install the aarch64 wheels (emulated: slow)"
chroot "$root" /bin/bash -c 'cd /appliance-src && uname -m && python3 -m venv /venv &&
  /venv/bin/pip install --quiet --disable-pip-version-check -e ".[test]" 2>&1 | tail -3;
  /venv/bin/python -c "import onnxruntime, platform; print(platform.machine(), onnxruntime.__version__)"'

echo "[4/4] the suite's fast part, and one default model"
chroot "$root" /bin/bash -c 'cd /appliance-src && export ORT_DISABLE_TELEMETRY=1 &&
  /venv/bin/python -m pytest -q -p no:cacheprovider -m "not slow and not default_models" 2>&1 | tail -3 &&
  /venv/bin/python -c "
from skimage import data; from PIL import Image
Image.fromarray(data.chelsea()).save(\"/tmp/cat.jpg\")" &&
  /venv/bin/appliance infer /tmp/cat.jpg --model efficientnet-lite0 --models-dir /appliance-src/models --top-k 3'
echo "arm64 check done"
