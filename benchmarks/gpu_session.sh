#!/usr/bin/env bash
# Every GPU figure of the README in one run on one GPU, in the order they matter, each part under its own time
# limit (and all of them under DEADLINE seconds, default 1200) so that a slow part costs only itself:
#
#   benchmarks/gpu_session.sh DATA_DIR OUT
#
# DATA_DIR holds cifar10/cifar-10-batches-py (the 10,000/10,000 subset of ../shared/data, or all of CIFAR-10).
# What each part measured lands in OUT as soon as it ends (at most 10 files):
#   parts.txt             the GPU, torch, and each part's exit status and seconds
#   paper.tar.gz          `reproduce paper-gpu` (the paper at its own scale, first: its plan, tables, findings,
#                         results.json, phases.json and study.log)
#   bench_scale_bn.json   8 stacked BatchNorm references of gpu-cifar10-paper-pgd8 against one model
#   preset.tar.gz         `reproduce cifar10-fast --device cuda`: its tables, results.json and study.log
#   bench_fast.json       time to accuracy of fast-cnn and small-cnn, and a target plus 16 PGD references
#                         (written after every model, so a part cut short keeps what it measured)
#   bench_gpu-*.json      PGD-7 training throughput of WRN-16-4 and WRN-34-10 with each speed switch
#   bench_scale.json      16 stacked digits reference models against one by one
#   slice.tar.gz          the GPU PGD recipe (gpu-cifar10-fast-pgd8) on DATA_DIR's training split, and PGD-50
#   logs.tar.gz           every part's standard error
# PARTS (default all) names the parts to run, e.g. PARTS="preset bench_fast". Where one command may run 10 minutes
# at most, run the paper alone first (PARTS=paper DEADLINE=590), then the rest (PARTS="bench_scale_bn preset ...").
# PYTHON runs robustmia (default: the checkout's .venv/bin/python where `make` made it, else python3 with
# robustmia installed or src/ on PYTHONPATH).
set -u
if [ $# -ne 2 ] || [ ! -d "$1/cifar10/cifar-10-batches-py" ]; then
  echo "usage: benchmarks/gpu_session.sh DATA_DIR OUT, where DATA_DIR holds cifar10/cifar-10-batches-py" >&2; exit 2
fi
data=$(cd "$1" && pwd); out_arg=$2
cd "$(dirname "$0")/.."
py=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if ! $py -c 'import sys, torch, robustmia; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
  echo "gpu_session: $py sees no CUDA GPU (or cannot import robustmia); run it on a GPU machine, with PYTHON set" >&2; exit 2
fi
out=$(cd - >/dev/null && mkdir -p "$out_arg" && cd "$out_arg" && pwd)
work=$(mktemp -d); logs="$work/logs"; mkdir -p "$logs"
deadline=$(( $(date +%s) + ${DEADLINE:-1200} ))
export PYTHONUNBUFFERED=1

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' 2>&1
  nproc; } > "$out/parts.txt"

# part NAME CAP_SECONDS STDOUT_FILE COMMAND...: run it under min(CAP, time left), log its status and seconds
part() {
  local name=$1 cap=$2 stdout=$3; shift 3
  [[ " ${PARTS:-$name} " == *" $name "* ]] || return 0
  local left=$(( deadline - $(date +%s) )); local limit=$(( cap < left ? cap : left ))
  if (( limit < 10 )); then echo "$name skipped: no time left" >> "$out/parts.txt"; return; fi
  local start=$(date +%s)
  timeout "$limit" "$@" > "$stdout" 2> "$logs/$name.log"
  echo "$name rc=$? seconds=$(( $(date +%s) - start )) limit=$limit" >> "$out/parts.txt"
  tar -czf "$out/logs.tar.gz" -C "$logs" .
}

paper="$work/paper-gpu"
[[ " ${PARTS:-paper} " == *" paper "* ]] && $py -m robustmia reproduce paper-gpu --data-dir "$data" --plan --json \
  > "$logs/paper-plan.json" 2> "$logs/paper-plan.log"
part paper 580 "$logs/paper.out" $py -m robustmia reproduce paper-gpu --data-dir "$data" --out "$paper" --device cuda --quiet
cp "$logs/paper-plan.json" "$paper/" 2>/dev/null
(cd "$paper" 2>/dev/null && tar -czf "$out/paper.tar.gz" --exclude='*.safetensors' --exclude='*.npz' --exclude='*.pt' \
  $(ls -d paper-plan.json report/tables report/findings.md report/figures results.json phases.json study.log spec.yaml 2>/dev/null))

part bench_scale_bn 90 "$out/bench_scale_bn.json" $py benchmarks/bench_scale.py --device cuda --sections batchnorm \
  --recipe gpu-cifar10-paper-pgd8 --data-dir "$data" --k 8 --members 16000 --epochs 1

study="$work/cifar10-fast"
part preset 230 "$logs/preset.out" $py -m robustmia reproduce cifar10-fast --data-dir "$data" --out "$study" --device cuda --quiet
(cd "$study" 2>/dev/null && tar -czf "$out/preset.tar.gz" --exclude='*.safetensors' --exclude='*.npz' --exclude='*.pt' \
  $(ls -d report/tables results.json study.log spec.yaml 2>/dev/null))

part bench_fast 600 "$logs/bench_fast.out" $py benchmarks/bench_fast.py --device cuda --data-dir "$data" \
  --models fast-cnn,small-cnn --budget 10 --pgd-budget 15 --pgd-members 500 --references 16 --out "$out/bench_fast.json"

part bench_gpu-wrn-16-4 50 "$out/bench_gpu-wrn-16-4.json" $py benchmarks/bench_gpu.py --models wrn-16-4 --rounds 5 --warmup 2
# WRN-34-10 without torch.compile, whose compilation of the big network would take most of the part's time
part bench_gpu-wrn-34-10 50 "$out/bench_gpu-wrn-34-10.json" $py benchmarks/bench_gpu.py --models wrn-34-10 --rounds 5 --warmup 2 \
  --settings baseline,channels_last,bf16

part bench_scale 35 "$out/bench_scale.json" $py benchmarks/bench_scale.py --device cuda --sections stacked

slice="$work/slice"
part slice_train 90 "$logs/slice_train.out" $py -m robustmia train --recipe gpu-cifar10-fast-pgd8 --data-dir "$data" \
  --out "$slice" --device cuda --quiet
part slice_evaluate 40 "$logs/slice_evaluate.json" $py -m robustmia evaluate "$slice" --attack-steps 50 --step-size 2/255 \
  --max-examples 1000 --bound none --device cuda --json
cp "$logs/slice_evaluate.json" "$slice/" 2>/dev/null
(cd "$slice" 2>/dev/null && tar -czf "$out/slice.tar.gz" --exclude='*.safetensors' --exclude='*.pt' .)
cat "$out/parts.txt"
