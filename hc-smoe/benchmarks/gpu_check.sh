#!/usr/bin/env bash
# The GPU checks that cannot run on a CPU-only machine, in one call (a 15-minute GPU lease fits them: ~2-4 min of work):
#   1. tests/test_gpu_paths.py: `--device cuda` (model in CPU RAM, layer by layer on the GPU) and accelerate's
#      GPU + CPU + disk placement give bit-identical calibration statistics, merged weights and logits in bf16;
#   2. benchmarks/gpu_offload.py: the same two paths through merge.py on an 827M-parameter random Mixtral-class
#      model (wall time, peak GPU memory, groups, differing checkpoint tensors, eval-twice determinism).
#
#   bash hc-smoe/benchmarks/gpu_check.sh              # from the repository root (or from hc-smoe/)
#
# Logs go to $OUT if set (the device tool's output folder), else to hc-smoe/runs/gpu_check-<time>/.
# The Python is $PYTHON (default python3: a GPU image's torch + transformers, or an activated venv). If a folder of
# wheels exists ($WHL, default <repo root>/.whl, e.g. transformers==5.24.0 as pinned here), they are installed into
# /tmp/site first, without internet, and put first on PYTHONPATH. Exit status: 0 only if both checks passed.
# GPU_OFFLOAD_ARGS (default empty) is passed to gpu_offload.py, e.g. '--small' for a CPU smoke run of this script.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."                      # hc-smoe/
PY=${PYTHON:-python3}
OUTDIR=${OUT:-runs/gpu_check-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR"
WHL=${WHL:-../.whl}
if compgen -G "$WHL/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHL"/*.whl \
        || { echo "installing the wheels in $WHL failed"; exit 2; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1

{
    date -u
    git log -1 --format='commit %H' 2>/dev/null
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    "$PY" -c "import torch, transformers, accelerate, scipy; print('python', __import__('sys').version.split()[0], '| torch', torch.__version__, '| cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| accelerate', accelerate.__version__, '| scipy', scipy.__version__)"
} 2>&1 | tee "$OUTDIR/env.txt"

timeout 240 "$PY" -m pytest -q -rs tests/test_gpu_paths.py 2>&1 | tee "$OUTDIR/pytest_gpu_paths.log"
rc_test=${PIPESTATUS[0]}
if grep -q "skipped" "$OUTDIR/pytest_gpu_paths.log" && ! grep -q "passed" "$OUTDIR/pytest_gpu_paths.log"; then
    rc_test=3                                                # skipped = no CUDA seen: not a pass
fi

timeout 330 "$PY" benchmarks/gpu_offload.py ${GPU_OFFLOAD_ARGS:-} 2>&1 | tee "$OUTDIR/gpu_offload.log"
rc_bench=${PIPESTATUS[0]}

echo "gpu_check: test_gpu_paths exit $rc_test, gpu_offload exit $rc_bench (0 = passed; 124 = timed out)" | tee -a "$OUTDIR/env.txt"
[ "$rc_test" -eq 0 ] && [ "$rc_bench" -eq 0 ]
