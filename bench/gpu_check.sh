#!/usr/bin/env bash
# Run ON the lent GPU machine, after bench/gpu_prepare.sh's calls left the onnxruntime-gpu wheel's
# parts in /tmp/ortparts: installs that wheel beside the machine's own packages, lets
# onnxruntime.preload_dlls() find the CUDA 13 / cuDNN 9 libraries that the machine's torch brought,
# and runs bench/bench_gpu.py (three WCBnet variants and the whole pipeline at 1 and 12 MP, CUDA
# fp32 and fp16, the machine's CPU beside them). Results land in $OUT (the device tool's) or
# build/gpu_check/: gpu.json, the printed tables in gpu.log, nvidia-smi's view.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-build/gpu_check}
PARTS=${ORT_PARTS:-/tmp/ortparts}
SITE=${ORT_SITE:-/tmp/ort_site}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"

if [ ! -d "$SITE/onnxruntime" ]; then
  wheel=/tmp/$(awk '{print $2}' .gpu/wheel.sha256)
  cat "$PARTS"/part* > "$wheel"
  (cd /tmp && sha256sum -c "$OLDPWD/.gpu/wheel.sha256") || { echo "the joined wheel is incomplete: send the missing parts" >&2; exit 1; }
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$wheel" || exit 1
fi
# preload_dlls() looks for the nvidia-* wheels beside onnxruntime, where onnxruntime-gpu[cuda,cudnn]
# would put them; here they are beside torch.
nvidia=$("$PYTHON" -c 'import importlib.util as u; s = u.find_spec("nvidia"); print(next(iter(s.submodule_search_locations)) if s else "")')
[ -n "$nvidia" ] && ln -sfn "$nvidia" "$SITE/nvidia"
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
"$PYTHON" -c 'import onnxruntime as o; print(o.__file__, o.__version__, o.get_available_providers())' | tee "$OUT/gpu.log"
"$PYTHON" -m bench.bench_gpu --models assets/models --fp16 .gpu/models_fp16 --sizes 1,12 \
  --photos /tmp/bench_photos --out "$OUT/gpu.json" 2>&1 | tee -a "$OUT/gpu.log"
exit "${PIPESTATUS[0]}"
