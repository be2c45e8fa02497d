#!/usr/bin/env bash
# Download, here, the wheels of neurofm's dependencies that a bare GPU machine's Python 3.12 image
# may lack (MNE, jsonargparse with its signature support, vector-quantize-pytorch and what they
# need beyond torch / numpy / scipy / lightning), into FOLDER (default .whl), for a machine that
# reaches no package index. There, before `bash benchmarks/gpu_checks.sh`:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site FOLDER/*.whl
#   export PYTHONPATH=/tmp/site
set -euo pipefail
FOLDER=${1:-.whl}
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$FOLDER" \
    mne decorator pooch platformdirs \
    jsonargparse docstring-parser typeshed-client \
    vector-quantize-pytorch einx frozendict loguru torch-einops-utils
du -sh "$FOLDER"
