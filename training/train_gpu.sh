#!/usr/bin/env bash
# Train the `gpu` preset on a GPU machine that has torch (or JAX) and Keras 3 but no TensorFlow,
# from a source pack made with `python -m training.pack_sources pack` (see that module). Run it
# from the repository root; it needs numpy, opencv, scipy, tqdm and pillow as well.
#
#   bash training/train_gpu.sh PACK RUN_DIR [BUDGET_MINUTES] [TRAIN_COUNT]
#
# Unpacks the sources, synthesizes TRAIN_COUNT (default 48000) training and 400 validation
# images with all cores, caches their SEL, and trains for BUDGET_MINUTES (default 5) of
# training + validation time, on Keras' JAX backend if JAX is installed, else torch
# (KERAS_BACKEND overrides). RUN_DIR then holds best.weights.h5, which
# `python -m export.convert --run RUN_DIR` turns into ONNX on a machine with TensorFlow.
# The test split is left out here on purpose: it is synthesized and reported where the
# model is converted (`python -m training.train --report-only test`).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash training/train_gpu.sh PACK RUN_DIR [BUDGET_MINUTES] [TRAIN_COUNT]" >&2
    exit 2
fi
pack=$1
run_dir=$2
budget=${3:-5}
train_count=${4:-48000}
work=${WSLOC_WORK:-/tmp/wsloc_gpu}
workers=$(nproc)

python -m training.pack_sources unpack --pack "$pack" --out "$work/data"
# JAX (XLA) trains this model 4-5x faster than torch's eager mode on an H100
# (bench/bench_train_step.py; docs/performance.md); torch is the fallback.
if [ -z "${KERAS_BACKEND:-}" ]; then
    if python -c "import jax" 2>/dev/null; then KERAS_BACKEND=jax; else KERAS_BACKEND=torch; fi
fi
KERAS_BACKEND=$KERAS_BACKEND python -m training.train --preset gpu \
    --data "$work/data" --synth-dir "$work/synth" --out "$run_dir" \
    --train-count "$train_count" --test-count 0 \
    --time-budget-minutes "$budget" --workers "$workers"
