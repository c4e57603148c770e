#!/usr/bin/env bash
# transform-scenario.sh: batch transform end to end, driven by the stock AWS
# CLI (and inferbox's own CLI for progress) against a real inferbox server.
#
# It builds inferbox (or uses $INFERBOX_BIN), starts `inferbox serve` on a free
# loopback port with a fresh data directory, uploads a multi-file CSV dataset
# to the embedded S3 with `aws s3 cp --recursive`, runs a transform job with
# the example XGBoost model, waits with `aws sagemaker wait
# transform-job-completed-or-stopped`, downloads the outputs and checks them
# line by line against python3-xgboost's predictions (1e-6 relative), then
# lists jobs, runs a job that fails on a record the model rejects (Failed,
# naming the file and the record) and stops a slow one. Every step prints
# `ok: <step>`; the last line is `N passed, M failed`. On a failure it prints
# the step's output and the server log's tail and exits non-zero.
#
# Environment:
#   INFERBOX_BIN  inferbox binary to use (default: build ./cmd/inferbox)
#   AWS_CLI       AWS CLI executable (default: /usr/bin/aws, Debian's, else `aws`)
#   PYTHON        python3 with xgboost and numpy (default: /usr/bin/python3)
#
# Waiter: the CLI's TransformJobCompletedOrStopped waiter polls every 60 s. As
# in aws-cli-scenario.sh, a copy of the stock definition (same acceptors,
# delay 1 s) is loaded from AWS_DATA_PATH, so the real waiter code runs faster.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferbox-transform.XXXXXX")
SERVER_PID=""
PASSED=0

# Shared: CLI selection, cleanup, ok/fail/run/expect (scripts/scenario-lib.sh).
# shellcheck source=scenario-lib.sh
source "$REPO/scripts/scenario-lib.sh"

# wait_job NAME: the CLI's own waiter with the 1 s definition; its exit status.
wait_job() { AWS_DATA_PATH="$WORK/models" timeout 90 "$AWS_CLI" --endpoint-url "$URL" sagemaker wait transform-job-completed-or-stopped --transform-job-name "$1"; }
ib() { "$INFERBOX_BIN" --server "$URL" "$@"; }

# --- set-up -------------------------------------------------------------------

scenario_setup # build inferbox unless INFERBOX_BIN is set; dummy AWS credentials

mkdir -p "$WORK/models/sagemaker/2017-07-24"
cat >"$WORK/models/sagemaker/2017-07-24/waiters-2.json" <<'JSON'
{
  "version": 2,
  "waiters": {
    "TransformJobCompletedOrStopped": {
      "delay": 1, "maxAttempts": 60, "operation": "DescribeTransformJob",
      "acceptors": [
        {"expected": "Completed", "matcher": "path", "state": "success", "argument": "TransformJobStatus"},
        {"expected": "Stopped", "matcher": "path", "state": "success", "argument": "TransformJobStatus"},
        {"expected": "Failed", "matcher": "path", "state": "failure", "argument": "TransformJobStatus"},
        {"expected": "ValidationException", "matcher": "error", "state": "failure"}
      ]
    }
  }
}
JSON

start_server
ok "server healthy on $URL ($("$AWS_CLI" --version 2>&1 | cut -d' ' -f1))"

MODEL_URL="file://$REPO/examples/xgboost/model"
FIXTURE="process:$PYTHON $REPO/internal/runtime/process/testdata/server.py"
ROLE=arn:aws:iam::123456789012:role/inferbox-scenario
RES=InstanceType=ml.m5.large,InstanceCount=1

# --- dataset --------------------------------------------------------------------

# Four CSV files of rows made from the example's sample rows, each feature
# scaled per row, and python3-xgboost's predictions for each file.
mkdir -p "$WORK/dataset/sub" "$WORK/expected"
run "make dataset" env REPO="$REPO" WORK="$WORK" "$PYTHON" - <<'PY'
import os, numpy, xgboost
repo, work = os.environ["REPO"], os.environ["WORK"]
base = [l.split(",") for l in open(repo + "/examples/xgboost/sample.csv").read().split()]
booster = xgboost.Booster(model_file=repo + "/examples/xgboost/model/xgboost-model")
for name, n in [("part-1.csv", 1500), ("part-2.csv", 700), ("part-3.csv", 1), ("sub/part-4.csv", 1200)]:
    rows = []
    for i in range(n):
        cols = base[(i + n) % len(base)]
        rows.append([float(v) * (0.8 + 0.4 * ((i * 7 + c * 3) % 41) / 40) for c, v in enumerate(cols)])
    with open(work + "/dataset/" + name, "w") as f:
        for r in rows:
            f.write(",".join("%.7g" % v for v in r) + "\n")
    x = numpy.genfromtxt(work + "/dataset/" + name, delimiter=",", dtype=numpy.float32, ndmin=2)
    with open(work + "/expected/" + name.replace("/", "_"), "w") as f:
        for p in booster.predict(xgboost.DMatrix(x)):
            f.write(repr(float(p)) + "\n")
PY
ok "dataset: 4 CSV files, 3401 rows, python3-xgboost predictions"

run "s3 mb" aws_ s3 mb s3://batch
run "s3 cp --recursive" aws_ s3 cp --recursive "$WORK/dataset" s3://batch/input/
run "s3 ls" aws_ s3 ls --recursive s3://batch/input/
[[ $(wc -l <"$WORK/out") == 4 ]] || fail "s3 cp --recursive" "want 4 objects under s3://batch/input/"
ok "s3 cp --recursive: 4 objects uploaded"

run "create-model" sm create-model --model-name batch-xgb \
	--primary-container "Image=xgboost,ModelDataUrl=$MODEL_URL" --execution-role-arn "$ROLE"
run "create-model fixture" sm create-model --model-name batch-slow \
	--primary-container "Image=$FIXTURE" --execution-role-arn "$ROLE"
ok "create-model (xgboost, BYO fixture)"

# --- a job that completes -------------------------------------------------------

run "create-transform-job" sm create-transform-job --transform-job-name scores --model-name batch-xgb \
	--transform-input '{"DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://batch/input/"}},"ContentType":"text/csv","SplitType":"Line"}' \
	--transform-output '{"S3OutputPath":"s3://batch/output","Accept":"text/csv","AssembleWith":"Line"}' \
	--transform-resources "$RES" --batch-strategy MultiRecord --max-payload-in-mb 1 --max-concurrent-transforms 4
expect_in "$WORK/out" "create-transform-job" "transform-job/scores"
ok "create-transform-job"

run "wait transform-job-completed-or-stopped" wait_job scores
ok "wait transform-job-completed-or-stopped"

run "describe-transform-job" sm describe-transform-job --transform-job-name scores \
	--query '[TransformJobStatus, TransformResources.InstanceCount, BatchStrategy, MaxPayloadInMB]' --output text
expect "describe-transform-job" "$(printf 'Completed\t1\tMultiRecord\t1')"
ok "describe-transform-job: Completed"

run "inferbox transform describe" ib transform describe scores
expect_in "$WORK/out" "inferbox transform describe" "4/4 objects"
expect_in "$WORK/out" "inferbox transform describe" "3401 records"
run "inferbox transform wait" ib transform wait scores
expect_in "$WORK/out" "inferbox transform wait" "Transform job scores Completed"
ok "inferbox transform describe/wait: progress 4/4 objects, 3401 records"

run "s3 cp outputs" aws_ s3 cp --recursive s3://batch/output/ "$WORK/got/"
run "compare outputs" env WORK="$WORK" "$PYTHON" - <<'PY'
import os
work = os.environ["WORK"]
for name in ["part-1.csv", "part-2.csv", "part-3.csv", "sub/part-4.csv"]:
    got = open(work + "/got/" + name + ".out").read().splitlines()
    want = open(work + "/expected/" + name.replace("/", "_")).read().splitlines()
    assert len(got) == len(want), "%s: %d lines, want %d" % (name, len(got), len(want))
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = float(g), float(w)
        assert abs(g - w) <= 1e-6 * max(abs(w), 1), "%s line %d: %r, python3-xgboost %r" % (name, i + 1, g, w)
PY
ok "s3 cp outputs: every line matches python3-xgboost (1e-6)"

# --- a job that fails -------------------------------------------------------------

printf '%s\n%s\nnot,a,number\n' "$(head -1 "$WORK/dataset/part-1.csv")" "$(sed -n 2p "$WORK/dataset/part-1.csv")" >"$WORK/bad.csv"
run "s3 cp bad" aws_ s3 cp "$WORK/bad.csv" s3://batch/bad/rows.csv
run "create-transform-job bad" sm create-transform-job --transform-job-name bad-rows --model-name batch-xgb \
	--transform-input '{"DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://batch/bad/"}},"ContentType":"text/csv","SplitType":"Line"}' \
	--transform-output '{"S3OutputPath":"s3://batch/bad-out","Accept":"text/csv","AssembleWith":"Line"}' \
	--transform-resources "$RES" --batch-strategy SingleRecord
run_fails "wait on a failing job" wait_job bad-rows
run "describe failed job" sm describe-transform-job --transform-job-name bad-rows --query '[TransformJobStatus, FailureReason]' --output text
expect_in "$WORK/out" "describe failed job" "Failed"
expect_in "$WORK/out" "describe failed job" "s3://batch/bad/rows.csv: record 3"
ok "failing job: Failed, naming s3://batch/bad/rows.csv record 3"

# --- list ---------------------------------------------------------------------------

run "list-transform-jobs" sm list-transform-jobs --query 'TransformJobSummaries[].[TransformJobName, TransformJobStatus]' --output text
expect "list-transform-jobs" "$(printf 'bad-rows\tFailed\nscores\tCompleted')"
run "list-transform-jobs filtered" sm list-transform-jobs --status-equals Completed --query 'TransformJobSummaries[].TransformJobName' --output text
expect "list-transform-jobs filtered" "scores"
ok "list-transform-jobs (and --status-equals)"

# --- stop ---------------------------------------------------------------------------

# The BYO fixture echoes each record after 200 ms: 50 records take 10 s.
seq 1 50 >"$WORK/slow.txt"
run "s3 cp slow" aws_ s3 cp "$WORK/slow.txt" s3://batch/slow/records.txt
run "create-transform-job slow" sm create-transform-job --transform-job-name slow --model-name batch-slow \
	--transform-input '{"DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://batch/slow/"}},"ContentType":"text/plain","SplitType":"Line"}' \
	--transform-output '{"S3OutputPath":"s3://batch/slow-out","AssembleWith":"Line"}' \
	--transform-resources "$RES" --batch-strategy SingleRecord --max-concurrent-transforms 1 \
	--environment TEST_SLEEP_MS=200
run "stop-transform-job" sm stop-transform-job --transform-job-name slow
run "wait stopped" wait_job slow
run "describe stopped" sm describe-transform-job --transform-job-name slow --query TransformJobStatus --output text
expect "describe stopped" "Stopped"
run "list stopped outputs" aws_ s3api list-objects-v2 --bucket batch --prefix slow-out/ --query 'length(Contents || `[]`)' --output text
expect "list stopped outputs" "0"
run_fails "stop an ended job" sm stop-transform-job --transform-job-name slow
expect_in "$WORK/err" "stop an ended job" "ValidationException"
ok "stop-transform-job: Stopped, no outputs; stopping again is a ValidationException"

echo "$PASSED passed, 0 failed"
