#!/usr/bin/env bash
# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
# The GPU checks of one lent-GPU session, as one script with one deadline (issue 12):
#   the inference table (eager, CUDA-graph and setting variants; +no-triton: the portable deformable sampler;
#   +nchw-product: the deformable product channels-first, i.e. a channels-first decoder; +no-triton+nchw-product is
#   the eager forward of the session-6 run;
#   +sdpa-efficient: the memory-efficient attention kernel), the CUDA tests, the deformable sampler alone
#   (portable vs Triton, tile sweep), a profile of the eager forward, `birefnet-hf segment` end to end,
#   fine-tuning memory at 2048, training steps, then the inductor-compiled variants (minutes each for Swin-L)
#   while time is left.
# Steps run in order of value; each is cut at the deadline, and a failing step does not stop the next.
#
#   bash benchmarks/gpu_checks.sh                        # on a GPU machine, from the repository root
#   SECONDS_BUDGET=400 OUT=/tmp/gpu bash benchmarks/gpu_checks.sh
#   DEVICE=cpu BACKBONE=pvt_v2_b0 SIZE=128 SMOKE=1 bash benchmarks/gpu_checks.sh   # the script itself, on a CPU
#
# Everything goes to $OUT/log.txt (and the profile table to $OUT/profile.txt); the tables are printed again last.
set -u
OUT=${OUT:-gpu-out}
DEVICE=${DEVICE:-cuda}
BACKBONE=${BACKBONE:-swin_v1_l}
SIZE=${SIZE:-1024}
SMOKE=${SMOKE:-0}
BUDGET=${SECONDS_BUDGET:-480}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DEADLINE=$((SECONDS + BUDGET))

step() {  # step NAME LIMIT_S COMMAND...: run with min(LIMIT_S, time left) seconds
    local name=$1 limit=$2 left=$((DEADLINE - SECONDS))
    shift 2
    if ((left < 15)); then
        echo "=== $name: not run (deadline)" | tee -a "$LOG"
        return
    fi
    ((limit > left)) && limit=$left
    echo "=== $name (limit ${limit} s, at ${SECONDS} s)" | tee -a "$LOG"
    timeout --kill-after=5 "$limit" "$@" >>"$LOG" 2>&1
    echo "=== $name: exit $? after $((SECONDS)) s" | tee -a "$LOG"
}

BENCH=(python benchmarks/gpu.py --device "$DEVICE" --backbone "$BACKBONE" --size "$SIZE")

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1
    python -c "import torch, transformers, timm; print('torch', torch.__version__, 'transformers', transformers.__version__, 'timm', timm.__version__)"
    nproc
} >>"$LOG" 2>&1

if [[ $SMOKE == 1 ]]; then
    step inference 300 "${BENCH[@]}" --batch-sizes 1 2 --repeats 2 --warmup 1 --variants fp32 bf16 autocast-bf16 \
        bf16+no-triton
    step deformable-sampler 120 python benchmarks/deformable_sampler.py --smoke
    step profile 120 "${BENCH[@]}" --no-inference --batch-sizes 1 --variants bf16 --repeats 1 --warmup 1 --profile "$OUT/profile.txt"
    step train 300 "${BENCH[@]}" --no-inference --train --train-variants eager --train-batch-sizes 2 --repeats 2 --warmup 1
    step segment 900 python benchmarks/gpu_segment_check.py --device "$DEVICE" --resolution 128 --images 3
    step demo-bf16 600 python examples/run_demo.py --output_dir "$OUT/demo" --overwrite --num_train 16 --num_val 4 \
        --num_test 2 --max_train_steps 8 --mixed_precision bf16 --eval_steps 4
else
    step inference 240 "${BENCH[@]}" --batch-sizes 1 8 --variants bf16 bf16+no-triton bf16+nchw-product \
        bf16+no-triton+nchw-product graph-bf16 graph-bf16+no-triton graph-bf16+nchw-product \
        graph-bf16+no-triton+nchw-product graph-bf16+sdpa-efficient fp16 graph-fp16 bf16+no-pad bf16+benchmark \
        graph-bf16+benchmark bf16+channels-last autocast-bf16 fp32-tf32
    step cuda-tests 150 python -m pytest tests/test_cuda.py -q -p no:cacheprovider -k "not cuda_graph_compile"
    step deformable-sampler 90 python benchmarks/deformable_sampler.py --blocks 32x128 64x64 16x128
    step profile 75 "${BENCH[@]}" --no-inference --batch-sizes 1 8 --variants bf16 --profile "$OUT/profile.txt"
    step segment 90 python benchmarks/gpu_segment_check.py --device "$DEVICE"
    step finetune-memory 120 python benchmarks/finetune_memory.py --device "$DEVICE" --backbone swin_v1_l --size 2048 \
        --batch_size 1 --repeats 2 --options full+gc+bf16 lora+gc+bf16 freeze_backbone+gc+bf16
    step train 90 "${BENCH[@]}" --no-inference --train --train-variants eager eager-ckpt --train-batch-sizes 2 4
    step regional 360 "${BENCH[@]}" --batch-sizes 1 8 --variants regional-graph-bf16 regional-backbone-graph-bf16 \
        regional-bf16
    step cudagraph-b1 300 "${BENCH[@]}" --batch-sizes 1 --variants cudagraph-bf16
    step cuda-graph-compile-test 200 python -m pytest tests/test_cuda.py -q -p no:cacheprovider -k cuda_graph_compile
    step compiled-b8 300 "${BENCH[@]}" --batch-sizes 8 --variants compiled-bf16
    step train-compiled 300 "${BENCH[@]}" --no-inference --train --train-variants compiled --train-batch-sizes 4
fi

echo "=== summary"
grep -E '^(device:|bf16 matmul|###|\||per forward|  [a-zA-Z:_]+: [0-9]+ per forward|=== |[0-9]+ (passed|failed)|FAILED|ERROR|segment-check:)' "$LOG"
