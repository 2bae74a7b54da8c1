#!/usr/bin/env bash
# What was run on the lent H100 in the second GPU round (docs/performance.md, "GPU"): the benchmark table,
# the evaluation share, a ci-size parity study on the GPU and the CUDA-path checks, in one call.
#   DATA=<mirror> OUT=<folder for the results> bash benchmarks/gpu_round2.sh    (from the checkout root; the
# project need not be installed: PYTHONPATH below has the checkout, for benchmarks, and src/, for dip)
set -u
export PYTHONPATH=$PWD:$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 DIP_DATA_MIRROR=${DATA:?}
OUT=${OUT:-.gpurun}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
t=$(date +%s)
echo "== bench_fit (256, 512)"; python3 -m benchmarks.bench_fit --device cuda --repeats 20 \
  --json "$OUT/bench_cuda.json" 2>"$OUT/bench.err" | tee "$OUT/bench_cuda.md"
echo "[$(( $(date +%s) - t )) s]"
echo "== eval_cost (paper, graph auto)"; python3 -m benchmarks.eval_cost --profiles paper --device cuda --repeats 10 \
  2>&1 | tail -n 4 | tee "$OUT/eval_cost_cuda.md"
echo "[$(( $(date +%s) - t )) s]"
echo "== parity, ci profile on the GPU"; python3 -m benchmarks.parity --device cuda --jobs 6 \
  --modes tf32 fp32-graph tf32-graph --json "$OUT/parity_ci_cuda.json" 2>"$OUT/parity.err" | tee "$OUT/parity_ci_cuda.md"
echo "[$(( $(date +%s) - t )) s]"
echo "== cuda_check"; ITERS=200 bash benchmarks/cuda_check.sh 2>&1 | tee "$OUT/cuda_check.txt"
echo "[$(( $(date +%s) - t )) s]"
