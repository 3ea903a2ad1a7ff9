#!/usr/bin/env bash
# Train (or continue) the processing fingerprint on a lent GPU machine: one script, one call.
#
#   bash training/fingerprint_gpu.sh DATA RUN_DIR [MINUTES] [-- extra training.fingerprint options]
#
# DATA has the shared data's layout for the pristine photos only (bsds500/images/*/*.jpg,
# kodak/kodim*.png, casia1-train.csv with casia1/train/Au_*.jpg, cocoglide/dev/*_real.png: about
# 86 MB as they are, so they travel in two device calls, as bench/gpu_prepare.sh sends a wheel).
# A new RUN_DIR starts a larger net than the CPU's (10 x 64, which the H200 trains at about 9,000
# patches/s in the throughput measurement; data preparation, one process per core, bounds it near
# 16 x 900 patches/s); an existing RUN_DIR resumes exactly from its last checkpoint.
# Then, on the CPU machine: python -m export.fingerprint_export --run RUN_DIR.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash training/fingerprint_gpu.sh DATA RUN_DIR [MINUTES] [-- options]" >&2
    exit 2
fi
data=$1
run_dir=$2
minutes=${3:-10}
shift $(( $# >= 3 ? 3 : 2 ))
[ "${1:-}" = "--" ] && shift
workers=$(( $(nproc) - 1 ))
if [ -f "$run_dir/last.pt" ]; then
    python -m training.fingerprint --resume "$run_dir" --minutes "$minutes" --device cuda \
        --threads 1 --workers "$workers" --checkpoint-minutes 2 "$@"
else
    python -m training.fingerprint --out "$run_dir" --data "$data" --minutes "$minutes" --device cuda \
        --threads 1 --workers "$workers" --checkpoint-minutes 2 --channels 64 --layers 10 \
        --photos 64 --decay-last 0.15 "$@"
fi
