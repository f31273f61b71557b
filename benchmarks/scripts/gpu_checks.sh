#!/usr/bin/env bash
# Every GPU check of issue 4 in one command, for a machine with an NVIDIA GPU (device time is short):
# what gantool sees, the GPU and TensorRT tests (they skip elsewhere), engines for the GAN and for the
# reference 256² CycleGAN translator, and `gantool bench` across backends and precisions.
#
#   pip install -e ".[test,trt]"   # or ".[test,gpu]" without TensorRT
#   bash benchmarks/scripts/gpu_checks.sh [RESULTS_DIR]   # default: benchmarks/results/gpu-YYYY-MM-DD
#
# Results: doctor.{txt,json}, pytest.txt, bench_*.json and gpu_checks.log (every command and its output), so
# the tables in benchmarks/RESULTS.md can be written from files, never from memory.
set -uo pipefail
cd "$(dirname "$0")/../.."
RESULTS=${1:-${OUT:-benchmarks/results/gpu-$(date +%F)}}
RUNS=${RUNS:-runs/gpu-checks}
mkdir -p "$RESULTS" "$RUNS"
LOG="$RESULTS/gpu_checks.log"
step() { echo "== $*" | tee -a "$LOG"; "$@" 2>&1 | tee -a "$LOG"; return "${PIPESTATUS[0]}"; }  # command + output to the log

nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 | tee "$RESULTS/nvidia-smi.csv"
gantool doctor | tee "$RESULTS/doctor.txt"
gantool doctor --json >"$RESULTS/doctor.json"
python -m pytest -q -rs 2>&1 | tee "$RESULTS/pytest.txt"   # -rs: every skip and its reason

# The GAN: the default training run (on the GPU), exported to ONNX and a TensorRT engine.
[ -f "$RUNS/digits/generator.safetensors" ] || step gantool train gan --out "$RUNS/digits" --device cuda
step gantool export "$RUNS/digits" --trt --max-batch 256 --force
# Issue 14: the INT8 QDQ file and, where TensorRT is installed, its INT8 engine, each judged against PyTorch FP32.
step gantool export "$RUNS/digits" --int8 --int8-report --force
if python -c "import tensorrt" 2>/dev/null; then
  step gantool export "$RUNS/digits" --trt --int8 --max-batch 256 --force
fi
# The reference translator (ResNet-9, ngf 64, random init) at 256², both directions.
[ -f "$RUNS/resnet9_256/generator_a2b.safetensors" ] ||
  step python benchmarks/scripts/reference_translator.py "$RUNS/resnet9_256" --size 256
step gantool export "$RUNS/resnet9_256" --trt --opt-batch 16 --max-batch 16 --force

# Issue 4's targets: 256² translator, batch 16 throughput and batch-1 latency, every backend and precision.
step gantool bench "$RUNS/digits" --device cuda --backends all --precisions fp32,fp16,bf16,int8 \
  --batch-sizes 1,16,256 --force --json "$RESULTS/bench_gan_gpu.json"
step gantool bench "$RUNS/resnet9_256" --device cuda --backends all --precisions fp32,fp16,bf16 \
  --sizes 256 --batch-sizes 1,16 --warmup-s 2 --max-s 5 --force --json "$RESULTS/bench_resnet9_256_gpu.json"

# End to end: 1000 samples from the engine, and the same from torch on the GPU, as a user runs them.
step gantool generate "$RUNS/digits/generator.fp16.engine" -n 1000 --out "$RUNS/samples_trt" --force
step gantool generate "$RUNS/digits" --backend torch --device cuda -n 1000 --out "$RUNS/samples_torch" --force
# Issue 12: training images/s on the GPU, gantool FP32 and AMP (bf16) against the plain FP32 batch-1 loop.
step python benchmarks/scripts/train_throughput.py --device cuda --amp off,bf16,fp16 --nproc 1 --steps 30 \
  --warmup 5 --json "$RESULTS/train_throughput_gpu.json"
echo "results in $RESULTS" | tee -a "$LOG"
