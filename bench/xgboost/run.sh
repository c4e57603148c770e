#!/bin/sh
# Compare inferbox's pure-Go XGBoost predictor with python3-xgboost's
# Booster.predict, both on one thread, on the same 200-tree depth-6
# binary:logistic model and the same 10,000 rows.
#
#   sh bench/xgboost/run.sh        (from the repository root)
#
# Needs Debian's python3-xgboost (apt-get install -y python3-xgboost) and Go.
set -eu
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

$PY bench/xgboost/make_model.py "$dir"
py_out=$(OMP_NUM_THREADS=1 $PY bench/xgboost/bench_python.py "$dir")
echo "$py_out"
py=$(echo "$py_out" | awk '/^python rows\/s:/ {print $3}')

go_out=$(XGBOOST_BENCH_DIR="$dir" GOMAXPROCS=1 go test ./internal/runtime/xgboost/ \
	-run '^$' -bench '^Benchmark(Predict|InvokeCSV)$' -benchtime 3s -count 3 -cpu 1)
echo "$go_out" | grep '^Benchmark'
# Best of the runs, as for python.
gobest=$(echo "$go_out" | awk '/^BenchmarkPredict/ {for (i = 1; i < NF; i++) if ($(i+1) == "rows/s" && $i > b) b = $i} END {print b}')
invbest=$(echo "$go_out" | awk '/^BenchmarkInvokeCSV/ {for (i = 1; i < NF; i++) if ($(i+1) == "rows/s" && $i > b) b = $i} END {print b}')
echo "go Predict rows/s:   $gobest"
echo "go Invoke CSV rows/s: $invbest (parse + score + format)"
echo "ratio go/python (Predict vs Booster.predict): $(awk -v g="$gobest" -v p="$py" 'BEGIN {printf "%.2f", g / p}')x"
