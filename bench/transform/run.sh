#!/bin/sh
# Batch transform throughput: score a large CSV dataset with the example
# XGBoost model through a transform job on the real inferbox binary (1 and
# 2 instances of ml.m5.large, MaxConcurrentTransforms 2, MultiRecord 6 MB),
# against python3-xgboost reading the same files (pandas.read_csv, else
# numpy.loadtxt) and predicting with the same thread count (2: an
# ml.m5.large's vCPUs). Reports rows/s end to end (job created → Completed,
# model load included), inferbox's peak resident memory (VmHWM) per run,
# and checks the outputs agree with python3-xgboost's.
#
#   sh bench/transform/run.sh [MB] [FILES]     (from the repository root; default 256 MB in 8 files)
#   CONCURRENT=1 sh bench/transform/run.sh     (MaxConcurrentTransforms 1 per instance)
#
# Needs Go, Debian's python3-xgboost and python3-numpy (python3-pandas optional).
set -eu
cd "$(dirname "$0")/../.."
REPO=$(pwd)
PY=/usr/bin/python3
MB=${1:-256}
FILES=${2:-8}
CONC=${CONCURRENT:-2} # MaxConcurrentTransforms per instance
dir=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT

go build -o "$dir/inferbox" ./cmd/inferbox
rows=$($PY bench/transform/make_data.py "$dir" "$MB" "$FILES" | awk '/^rows:/ {print $2}')
bytes=$(cat "$dir"/input/*.csv | wc -c)
echo "dataset: $rows rows, $bytes bytes in $FILES files"

port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
ib() { "$dir/inferbox" --server "$url" "$@"; }

for n in 1 2; do
	"$dir/inferbox" serve --listen "127.0.0.1:$port" --data "$dir/data-$n" --log json >"$dir/server-$n.log" 2>&1 &
	pid=$!
	until curl -fsS --max-time 1 "$url/healthz" >/dev/null 2>&1; do sleep 0.1; done
	ib model create xgb --image xgboost --model-data "file://$REPO/examples/xgboost/model" >/dev/null
	t0=$(date +%s.%N)
	ib --poll-interval 100ms transform create bench --model xgb --input "file://$dir/input/" --output "file://$dir/out-$n" \
		--instance-count "$n" --max-concurrent "$CONC" --max-payload-mb 6 --strategy MultiRecord --wait >"$dir/wait-$n.txt" 2>/dev/null
	t1=$(date +%s.%N)
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=""
	awk -v r="$rows" -v a="$t0" -v b="$t1" -v h="$hwm" -v n="$n" \
		'BEGIN {printf "inferbox %d instance(s): %.2f s, %.0f rows/s, VmHWM %.0f MiB\n", n, b - a, r / (b - a), h / 1024}'
	cat "$dir/wait-$n.txt"
done

OMP_NUM_THREADS=2 $PY bench/transform/score_python.py "$dir/input" "$dir/py-out" 2

# Agreement: every line of every output within 1e-6 (relative) of python's.
$PY - "$dir" <<'PYEOF'
import glob, os, sys
import numpy
d = sys.argv[1]
for path in sorted(glob.glob(os.path.join(d, "py-out", "*.out"))):
    want = numpy.loadtxt(path, dtype=numpy.float64)
    for n in (1, 2):
        got = numpy.loadtxt(os.path.join(d, "out-%d" % n, os.path.basename(path)), dtype=numpy.float64)
        assert got.shape == want.shape, (path, got.shape, want.shape)
        bad = numpy.abs(got - want) > 1e-6 * numpy.maximum(numpy.abs(want), 1)
        assert not bad.any(), (path, n, int(bad.sum()))
print("outputs: inferbox (1 and 2 instances) = python3-xgboost within 1e-6 on every row")
PYEOF
