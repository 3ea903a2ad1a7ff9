#!/usr/bin/env bash
# Run HERE (the CPU machine) before bench/gpu_check.sh runs on a lent GPU machine. That machine
# reaches no package index and takes at most 64 MiB per call (the working tree included), while
# the onnxruntime-gpu wheel is about 256 MB; so the wheel travels in parts, one call each, and
# the GPU machine joins them. The CUDA and cuDNN libraries are already there (beside its torch).
#
#   bash bench/gpu_prepare.sh          # then make the device calls it prints, back to back
#
# GPU_PYTHON (default 3.12: the GPU machine's python3) and ORT_GPU_VERSION (default: the version
# requirements.txt resolves to here) pick the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

GPU_PYTHON=${GPU_PYTHON:-3.12}
ORT_GPU_VERSION=${ORT_GPU_VERSION:-$(python -m pip index versions onnxruntime-gpu 2>/dev/null | sed -n 's/^onnxruntime-gpu (\(.*\))$/\1/p')}
[ -n "$ORT_GPU_VERSION" ] || { echo "could not find onnxruntime-gpu's version; set ORT_GPU_VERSION" >&2; exit 1; }

# What every call sends anyway: tracked files and untracked ones that git does not ignore.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
part_mb=$(( (64 * 1024 * 1024 - tree_bytes) / 1024 / 1024 - 4 ))  # 4 MiB to spare
if [ "$part_mb" -lt 8 ]; then
  echo "the working tree is $((tree_bytes / 1024 / 1024)) MiB: too little of the 64 MiB per device call is left for the wheel" >&2
  exit 1
fi

rm -rf .gpu && mkdir -p .gpu/parts
python -m pip download -q --no-deps --only-binary=:all: --python-version "$GPU_PYTHON" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  -d .gpu "onnxruntime-gpu==$ORT_GPU_VERSION"
wheel=$(ls .gpu/onnxruntime_gpu-*.whl)
(cd .gpu && sha256sum "$(basename "$wheel")" > wheel.sha256)
split -b "${part_mb}M" -d -a 1 "$wheel" .gpu/parts/part
rm "$wheel"
python -m export.fp16 assets/models/wcbnet2.onnx assets/models/wcbnet3.onnx assets/models/wcbnet4.onnx \
  --out-dir .gpu/models_fp16

echo
echo "Prepared $(basename "$wheel") in $(ls .gpu/parts | wc -l) parts of ${part_mb} MiB, and fp16 models."
echo "Device calls, back to back (the machine goes back after 30 s idle, and the parts with it):"
for part in .gpu/parts/part*; do
  echo "  run(command='mkdir -p /tmp/ortparts && cp $part /tmp/ortparts/ && ls -l /tmp/ortparts', carry=['$part'], timeout_s=120)"
done
echo "  run(command='bash bench/gpu_check.sh', carry=['.gpu/models_fp16', '.gpu/wheel.sha256'], timeout_s=480)"
