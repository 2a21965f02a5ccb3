#!/usr/bin/env bash
# The GPU check in one command (issue 12).
#   Here (with .NET):  scripts/gpu-check.sh publish [DIR]   publishes gpu-check self-contained for linux-x64
#                      into DIR (default .gpu/check, git-ignored), about 35 MB with partial trimming.
#   On the GPU host:   scripts/gpu-check.sh run [DIR]       verifies every fixture and the demo model on CUDA
#                      under five settings (auto: warp GEMV + cuBLAS; the ILGPU tiled GEMM; the grouped expert
#                      GEMV for every token count; GEMMs even for one token; bf16 activations, with their own
#                      tolerance), then prints the benchmark JSON (copy bandwidth, bf16 GEMV, cuBLAS GEMM,
#                      MoE blocks at T = 1, 16, 256, 4096 in both precisions, decode of random-weight models
#                      of real size).
# Fixtures are read from tests/fixtures and models/moe-tiny-py under the repository root; results go to
# $OUT (the device tool's output folder) when it is set.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-run}
dir=${2:-.gpu/check}
cd "$root"
case "$cmd" in
  publish)
    mkdir -p "$(dirname "$dir")"
    dotnet publish tests/Orleans.MoE.Gpu.Check/Orleans.MoE.Gpu.Check.csproj -c Release -r linux-x64 --self-contained true \
      -p:InvariantGlobalization=true -p:PublishTrimmed=true -p:TrimMode=partial -o "$dir" > /tmp/gpu-check-publish.log \
      || { grep -E "error|warn" /tmp/gpu-check-publish.log >&2; exit 1; }
    du -sh "$dir"
    ;;
  run)
    export LD_LIBRARY_PATH=/usr/local/cuda/targets/x86_64-linux/lib:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
    out=${OUT:-/tmp/gpu-check}
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader 2>&1 | tee "$out/nvidia-smi.txt" || true
    models=(tests/fixtures/mixtral-tiny tests/fixtures/mixtral-tiny-bf16 tests/fixtures/qwen2moe-tiny tests/fixtures/qwen3moe-tiny
            tests/fixtures/olmoe-tiny tests/fixtures/deepseekv3-tiny models/moe-tiny-py)
    status=0
    timeout "${VERIFY_TIMEOUT:-240}" "$dir/gpu-check" verify --device cuda --variants "${models[@]}" 2>&1 | tee "$out/verify.txt" || status=$?
    timeout "${BENCH_TIMEOUT:-300}" "$dir/gpu-check" bench --device cuda ${BENCH_ARGS:-} 2>&1 | tee "$out/bench.jsonl" || status=$?
    exit $status
    ;;
  *)
    echo "usage: $0 publish|run [DIR]" >&2
    exit 2
    ;;
esac
