#!/usr/bin/env bash
# The GPU runner, measured in one command (docs/BENCHMARKS.md, "GPU runner"):
#
#     benchmarks/gpu/run.sh OUT [--device cuda|cpu] [--tiny] [--data-dir ROOT]
#
# Made for a GPU machine with no network whose `python3` holds torch: it makes a venv over that
# Python with the wheels of .whl/ (wheels.sh) and this checkout's grader (make-venv.sh), then
# grades each week's reference, a full-size training set, bare papermill against `grader grade`
# and `grader batch` at 1, 2 and 4 gradings at once, sampling the GPU's memory throughout.
# OUT gets summary.json, summary.md, run.log, versions.txt, nvidia-smi.txt, gpu.csv and
# reports.tar.gz (every grading's results.json, report.md and executed.ipynb).
#
# Every step has its own time limit, cut to what is left of BUDGET seconds (470) so that the
# whole stays under 8 minutes; a step that fails or times out is recorded and the next one runs.
# `PYTHON=... run.sh OUT --device cpu --tiny` is the dry run of the test suite: an interpreter
# that already holds the grader (no venv is made) and sizes a 2-core CPU grades in 2 minutes.
# shellcheck disable=SC2016 # the `bash -c '...' _ ARGS` below expand their own "$1"
set -uo pipefail # not -e: a failing step must not stop the others

usage="usage: $0 OUT [--device cuda|cpu] [--tiny] [--data-dir ROOT]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
out=$1
shift
device=cuda tiny=0 data_dir=
while [ $# -gt 0 ]; do
    case $1 in
        --device) device=$2; shift 2 ;;
        --tiny) tiny=1; shift ;;
        --data-dir) data_dir=$(cd "$2" && pwd) || exit 2; shift 2 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo" || exit 2 # `python -m grader.cli` then imports this checkout's grader
mkdir -p "$out" && out=$(cd "$out" && pwd)
# Not under /tmp: the sandbox gives student code an empty /tmp, where the venv would vanish.
work=$(mktemp -d /var/tmp/gpu-benchmark.XXXXXX) || exit 2
log=$out/run.log
measure=$repo/benchmarks/gpu/measure.py
started=$(date +%s)
budget=${BUDGET:-470}
reserve=20 # seconds kept for a step's kill grace and for the summary
: >"$log"

# What is measured. The defaults should take about 5 minutes on an H100.
weeks=(week2 week3 week4) # each week's reference, on the data as it is
full_weeks=(week3 week4)  # with the spec's GPU parameters, on a training set repeated up to
full_images=60000         # the full Fashion-MNIST's size: a full epoch, accuracy meaningless
full_profile=full
overhead_week=week3
overhead_rounds=2
batch_weeks=(week3 week4)
copies=4 # submissions in each batch, graded with each number of workers in turn:
concurrency=(1 2 4)
if [ "$tiny" = 1 ]; then # every kind of step once, on week 3, the quickest to grade
    weeks=(week3) full_weeks=(week3) full_images=2000 full_profile=subset
    overhead_rounds=1 batch_weeks=(week3) copies=2 concurrency=(2)
fi
if [ -z "$data_dir" ]; then # the real subset embedded in the package travels with the checkout
    raw=$(find "$repo/grader" -type d -path '*/FashionMNIST/raw' | head -n 1)
    data_dir=$(dirname "$(dirname "$raw")")
fi

# step NAME LIMIT COMMAND...: COMMAND with LIMIT seconds (fewer when the budget runs short),
# its output appended to the log, its exit status and times to steps.jsonl.
step() {
    local name=$1 limit=$2 begin rc
    shift 2
    local left=$((budget - ($(date +%s) - started) - reserve))
    [ "$limit" -le "$left" ] || limit=$left
    begin=$(date +%s.%N)
    if [ "$limit" -lt 10 ]; then
        echo "=== $name: skipped, out of time" >>"$log"
        rc=-1 limit=0
    else
        echo "=== $name (limit $limit s): $*" >>"$log"
        # -k: a grading that outlives SIGTERM (it first kills its kernel's tree) is killed 10 s on.
        timeout -k 10 "$limit" "$@" >>"$log" 2>&1
        rc=$?
    fi
    printf '{"name": "%s", "rc": %d, "limit": %d, "start": %s, "end": %s}\n' \
        "$name" "$rc" "$limit" "$begin" "$(date +%s.%N)" >>"$work/steps.jsonl"
    echo "$name: exit $rc after $(($(date +%s) - ${begin%.*})) s" >&2
}

skip() { # skip NAME WHY: a step that does not apply here
    echo "=== $1: skipped, $2" >>"$log"
    printf '{"name": "%s", "rc": -1, "limit": 0, "skipped": "%s"}\n' "$1" "$2" >>"$work/steps.jsonl"
}

grade() { # grade NAME LIMIT WEEK OPTIONS...: `grader grade` of WEEK's reference solution
    local name=$1 limit=$2 week=$3
    shift 3
    step "$name" "$limit" "$python" -m grader.cli grade "$week" "solutions/$week/$week.ipynb" \
        --device "$device" --isolation auto --student reference --seed 0 \
        --out "$work/steps/$name" "$@"
}

if [ -n "${PYTHON:-}" ]; then
    python=$PYTHON
    skip setup "PYTHON is set"
else
    step setup 150 "$repo/benchmarks/gpu/make-venv.sh" "$work/venv"
    python=$work/venv/bin/python
    [ -x "$python" ] || python=python3 # so that the steps still run and say what is missing
fi

if [ "$device" = cuda ]; then
    step nvidia-smi 30 bash -c 'nvidia-smi >"$1" 2>&1' _ "$out/nvidia-smi.txt"
    # Device-wide memory and utilisation every 200 ms; each step's peak is read off afterwards.
    nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu,memory.total,name \
        --format=csv,noheader,nounits -lms 200 >"$out/gpu.csv" 2>>"$log" &
    sampler=$!
else
    skip nvidia-smi "--device $device"
fi
step versions 90 bash -c '"$1" "$2" versions >"$3" 2>&1' _ "$python" "$measure" "$out/versions.txt"

for week in "${weeks[@]}"; do
    grade "grade-$week" 150 "$week" --data-dir "$data_dir"
done

step full-data 60 "$python" "$measure" data "$data_dir" "$work/full-data" \
    --train-images "$full_images"
for week in "${full_weeks[@]}"; do
    grade "full-$week" 240 "$week" --data-dir "$work/full-data" --profile "$full_profile"
done

# Bare papermill and `grader grade` on the same notebook and data, alternating.
for round in $(seq "$overhead_rounds"); do
    step "overhead-papermill-$round" 120 "$python" "$measure" papermill "$overhead_week" \
        --data-dir "$data_dir" --device "$device" --out "$work/steps/overhead-papermill-$round"
    grade "overhead-grader-$round" 120 "$overhead_week" --data-dir "$data_dir"
done

for week in "${batch_weeks[@]}"; do
    class=$work/class-$week
    mkdir -p "$class"
    for number in $(seq "$copies"); do
        cp "solutions/$week/$week.ipynb" "$class/student$number.ipynb"
    done
    for workers in "${concurrency[@]}"; do
        step "batch-$week-w$workers" 240 "$python" -m grader.cli batch "$week" "$class" \
            --pattern '{login}.ipynb' --workers "$workers" --device "$device" --isolation auto \
            --data-dir "$data_dir" --out "$work/steps/batch-$week-w$workers"
    done
done

[ -z "${sampler:-}" ] || kill "$sampler"
"$python" "$measure" summarise "$work" "$out" --seconds "$(($(date +%s) - started))"
summarised=$? # 1 when a step failed or ran out of time
tar -czf "$out/reports.tar.gz" -C "$work" steps.jsonl steps 2>>"$log"
rm -rf "$work"
exit "$summarised"
