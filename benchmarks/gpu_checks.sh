#!/usr/bin/env bash
# The GPU checks the open work waits for, in one run on a machine with an NVIDIA GPU (about
# 6-8 minutes on an H100/H200), from the repository root:
#   - P5: the cached streaming step of gpt2meg_trf over 306 channels on CUDA, every variant
#     (target p99 <= 10 ms on H100) -> benchmarks/results/P5_cuda.json
#   - P3: the training step in bf16 with its MFU -> benchmarks/results/P3_cuda_bf16.json
#   - next-band prototype and VAR variant: 40 steps in bf16-mixed on the GPU, then resumed
#     exactly to 60 steps (the Lightning engine's CUDA bf16 path and resume)
# A bare machine without neurofm's dependencies: `bash benchmarks/gpu_wheels.sh` here first, and
# install the wheels there as that script says.
# Usage: bash benchmarks/gpu_checks.sh [OUTPUT_FOLDER]   (PY=... picks the Python; default
# .venv/bin/python when present, else python3). Each check runs even if an earlier one failed;
# the exit status counts the failures.
set -uo pipefail
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT_DIR=${1:-gpu_checks}
mkdir -p "$OUT_DIR"
failed=0
step() { echo "== $*"; "$@" || { echo "!! failed: $*"; failed=$((failed + 1)); }; }
neurofm() { "$PY" -c 'from neurofm.cli.main import main; raise SystemExit(main())' "$@"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
[ -d prepared/eegbci_sample ] || step neurofm prepare configs/prepare/eegbci_sample.yaml
step "$PY" -m benchmarks.P5_latency full --device cuda
step "$PY" benchmarks/P3_train_step.py --device cuda --d-model 768 --n-layers 12 --bf16
for cfg in next_band next_band_var; do
    gpu=(--trainer.accelerator gpu --trainer.precision bf16-mixed --trainer.val_check_interval 20
         --output.dir "$OUT_DIR/$cfg" --output.checkpoint_every_n_steps 20)
    step neurofm fit --config "configs/fit/next_band/$cfg.yaml" "${gpu[@]}" --trainer.max_steps 40
    step neurofm fit --config "configs/fit/next_band/$cfg.yaml" "${gpu[@]}" --trainer.max_steps 60 \
        --resume true
    cp "$OUT_DIR/$cfg/metrics.csv" "$OUT_DIR/${cfg}_metrics.csv" 2>/dev/null || true
done
cp benchmarks/results/P5_cuda.json benchmarks/results/P3_cuda_bf16.json "$OUT_DIR/" 2>/dev/null
echo "== $failed check(s) failed; results in $OUT_DIR"
exit "$failed"
