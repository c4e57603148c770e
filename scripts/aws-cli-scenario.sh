#!/usr/bin/env bash
# aws-cli-scenario.sh: the end-to-end SageMaker scenario, driven by the stock
# AWS CLI (and once by boto3) against a real inferbox server.
#
# It builds inferbox (or uses $INFERBOX_BIN), starts `inferbox serve` on a free
# loopback port with a fresh data directory, and walks a real-time endpoint
# through its life: create model/config/endpoint, wait, describe, list, invoke
# (checked numerically against python3-xgboost's predictions), error shapes,
# scaling the instance count, Application Auto Scaling, a blue/green update,
# a serverless endpoint (cold start, warm, scale to zero with
# hosting.serverless_idle_timeout 2s, cold again, provisioned concurrency), an
# async endpoint (input uploaded with `aws s3 cp`, invoke-endpoint-async, the
# output polled with `aws s3 ls` and checked, a failure object), and
# deletion. Every step prints `ok: <step>`; the last line is
# `N passed, M failed` (the CI log reader counts it). On a failure it prints the
# step's output and the server log's tail and exits non-zero.
#
# Environment:
#   INFERBOX_BIN  inferbox binary to use (default: build ./cmd/inferbox)
#   AWS_CLI       AWS CLI executable (default: /usr/bin/aws, Debian's, else `aws`)
#   PYTHON        python3 with boto3 (default: /usr/bin/python3)
#
# Waiters: the CLI's SageMaker waiters poll every 30 s and have no --delay
# flag. botocore loads its data files from AWS_DATA_PATH before its own, so
# the waits below use a copy of the stock EndpointInService/EndpointDeleted
# waiter definitions (same acceptors, delay 1 s) from that path: the real
# `aws sagemaker wait` code runs, only faster.
#
# Serverless: Debian's CLI (2.9.19, API model of early 2023) predates
# ProvisionedConcurrency and ServerlessUpdateConfig, so it refuses them
# client-side ("Unknown parameter"). The same AWS_DATA_PATH directory gets a
# copy of the CLI's own SageMaker model with those three members added as AWS's
# current model defines them (patch_sagemaker_model below); the calls that need
# them (`sm_new`) run the stock CLI code on that model. A CLI that already knows
# them is left alone. Whether an invocation paid a cold start is in the
# X-Inferbox-Cold-Start response header, read from `aws --debug`'s log of the
# response headers.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferbox-cli.XXXXXX")
SERVER_PID=""
PASSED=0

# Shared: CLI selection, cleanup, ok/fail/run/expect (scripts/scenario-lib.sh).
# shellcheck source=scenario-lib.sh
source "$REPO/scripts/scenario-lib.sh"
aas() { aws_ application-autoscaling "$@"; }
# wait_ WAITER ENDPOINT: the CLI's own waiter with the 1 s waiter definitions.
wait_() { AWS_DATA_PATH="$WORK/models" timeout 90 "$AWS_CLI" --endpoint-url "$URL" sagemaker wait "$1" --endpoint-name "$2"; }
# sm_new: sagemaker with the API model that knows ProvisionedConcurrency.
sm_new() { AWS_DATA_PATH="$WORK/models" "$AWS_CLI" --endpoint-url "$URL" sagemaker "$@"; }

# --- set-up -------------------------------------------------------------------

scenario_setup # build inferbox unless INFERBOX_BIN is set; dummy AWS credentials

mkdir -p "$WORK/models/sagemaker/2017-07-24"
cat >"$WORK/models/sagemaker/2017-07-24/waiters-2.json" <<'EOF'
{
  "version": 2,
  "waiters": {
    "EndpointInService": {
      "delay": 1, "maxAttempts": 60, "operation": "DescribeEndpoint",
      "acceptors": [
        {"expected": "InService", "matcher": "path", "state": "success", "argument": "EndpointStatus"},
        {"expected": "Failed", "matcher": "path", "state": "failure", "argument": "EndpointStatus"},
        {"expected": "ValidationException", "matcher": "error", "state": "failure"}
      ]
    },
    "EndpointDeleted": {
      "delay": 1, "maxAttempts": 60, "operation": "DescribeEndpoint",
      "acceptors": [
        {"expected": "ValidationException", "matcher": "error", "state": "success"},
        {"expected": "Failed", "matcher": "path", "state": "failure", "argument": "EndpointStatus"}
      ]
    }
  }
}
EOF

# patch_sagemaker_model: copy the CLI's SageMaker API model into AWS_DATA_PATH
# with ProvisionedConcurrency and ServerlessUpdateConfig added (see the header).
patch_sagemaker_model() {
	local py
	py=$(head -n 1 "$(command -v "$AWS_CLI")" | sed -n 's/^#! *//p' | cut -d' ' -f1)
	[[ -x "$py" ]] || return 0 # not a Python script: nothing to patch
	"$py" - "$WORK/models/sagemaker/2017-07-24/service-2.json" <<'EOF'
import gzip, importlib, json, os, sys
for mod in ("awscli.botocore", "botocore"):
    try:
        base = os.path.join(os.path.dirname(importlib.import_module(mod).__file__), "data/sagemaker/2017-07-24")
    except ImportError:
        continue
    for name, opener in (("service-2.json", open), ("service-2.json.gz", gzip.open)):
        if os.path.exists(os.path.join(base, name)):
            with opener(os.path.join(base, name), "rt") as f:
                model = json.load(f)
            break
    else:
        continue
    break
else:
    sys.exit(0)
shapes = model["shapes"]
if "ProductionVariantServerlessUpdateConfig" in shapes:
    sys.exit(0)  # the CLI is new enough
shapes["ServerlessProvisionedConcurrency"] = {"type": "integer", "box": True, "min": 1, "max": 200}
shapes["ProductionVariantServerlessConfig"]["members"]["ProvisionedConcurrency"] = {"shape": "ServerlessProvisionedConcurrency"}
shapes["ProductionVariantServerlessUpdateConfig"] = {"type": "structure", "members": {
    "MaxConcurrency": {"shape": "ServerlessMaxConcurrency"},
    "ProvisionedConcurrency": {"shape": "ServerlessProvisionedConcurrency"}}}
shapes["DesiredWeightAndCapacity"]["members"]["ServerlessUpdateConfig"] = {"shape": "ProductionVariantServerlessUpdateConfig"}
with open(sys.argv[1], "w") as f:
    json.dump(model, f)
EOF
}
patch_sagemaker_model || fail "patch sagemaker model" "could not copy the CLI's SageMaker API model"

# Serverless instances idle for 2 s are stopped (default 5m), so the scenario
# sees scale to zero in seconds.
cat >"$WORK/inferbox.yaml" <<'EOF'
hosting:
  serverless_idle_timeout: 2s
EOF

start_server --config "$WORK/inferbox.yaml"
ok "server healthy on $URL ($("$AWS_CLI" --version 2>&1 | cut -d' ' -f1))"

MODEL_URL="file://$REPO/examples/xgboost/model"
ROLE=arn:aws:iam::123456789012:role/inferbox-scenario
EP=cli-scenario
RESOURCE=endpoint/$EP/variant/AllTraffic
DIM=sagemaker:variant:DesiredInstanceCount

# --- create -------------------------------------------------------------------

run "create-model" sm create-model --model-name cli-model \
	--primary-container "Image=xgboost,ModelDataUrl=$MODEL_URL" --execution-role-arn "$ROLE"
expect_in "$WORK/out" "create-model" "model/cli-model"
ok "create-model"

run "create-endpoint-config" sm create-endpoint-config --endpoint-config-name cli-config \
	--production-variants VariantName=AllTraffic,ModelName=cli-model,InstanceType=ml.m5.large,InitialInstanceCount=1
expect_in "$WORK/out" "create-endpoint-config" "endpoint-config/cli-config"
ok "create-endpoint-config"

run "create-endpoint" sm create-endpoint --endpoint-name $EP --endpoint-config-name cli-config
expect_in "$WORK/out" "create-endpoint" "endpoint/$EP"
ok "create-endpoint"

run "wait endpoint-in-service" wait_ endpoint-in-service $EP
ok "wait endpoint-in-service"

run "describe-endpoint" sm describe-endpoint --endpoint-name $EP \
	--query '[EndpointStatus, ProductionVariants[0].CurrentInstanceCount]' --output text
expect "describe-endpoint" "$(printf 'InService\t1')"
ok "describe-endpoint: InService, 1 instance"

run "list-endpoints" sm list-endpoints --query 'Endpoints[].EndpointName' --output text
expect "list-endpoints" "$EP"
ok "list-endpoints"

run "list-models" sm list-models --query 'Models[].ModelName' --output text
expect "list-models" "cli-model"
ok "list-models"

run "list-endpoint-configs" sm list-endpoint-configs --query 'EndpointConfigs[].EndpointConfigName' --output text
expect "list-endpoint-configs" "cli-config"
ok "list-endpoint-configs"

# --- invoke -------------------------------------------------------------------

# check_predictions STEP FILE: FILE matches sample.expected to 1e-6 relative.
check_predictions() {
	local n
	n=$(grep -c '' "$2" || true)
	[[ "$n" == "$(grep -c '' "$REPO/examples/xgboost/sample.expected")" ]] || fail "$1" "$n lines of predictions"
	paste -d' ' "$2" "$REPO/examples/xgboost/sample.expected" | awk '
		{ d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2
		  if (NF != 2 || d > 1e-6 * m + 1e-12) { print "line " NR ": got " $1 ", want " $2; bad++ } }
		END { exit bad > 0 }' >"$WORK/err" || fail "$1" "predictions differ from sample.expected"
}

run "invoke-endpoint" aws_ sagemaker-runtime invoke-endpoint --endpoint-name $EP \
	--content-type text/csv --body "fileb://$REPO/examples/xgboost/sample.csv" "$WORK/out.csv"
expect_in "$WORK/out" "invoke-endpoint" '"InvokedProductionVariant": "AllTraffic"'
check_predictions "invoke-endpoint" "$WORK/out.csv"
ok "invoke-endpoint: predictions match python3-xgboost"

# --- error shapes -------------------------------------------------------------

run_fails "describe missing endpoint" sm describe-endpoint --endpoint-name no-such-endpoint
expect_in "$WORK/err" "describe missing endpoint" "ValidationException"
expect_in "$WORK/err" "describe missing endpoint" "Could not find endpoint"
ok "describe missing endpoint: ValidationException"

run_fails "invoke missing endpoint" aws_ sagemaker-runtime invoke-endpoint --endpoint-name no-such-endpoint \
	--content-type text/csv --body "fileb://$REPO/examples/xgboost/sample.csv" "$WORK/missing.csv"
expect_in "$WORK/err" "invoke missing endpoint" "ValidationError"
ok "invoke missing endpoint: ValidationError"

# --- boto3 --------------------------------------------------------------------

run "boto3" env INFERBOX_URL="$URL" EP="$EP" SAMPLE="$REPO/examples/xgboost/sample.csv" \
	EXPECTED="$REPO/examples/xgboost/sample.expected" "$PYTHON" - <<'EOF'
import os, sys
import boto3
from botocore.exceptions import ClientError

url, ep = os.environ["INFERBOX_URL"], os.environ["EP"]
sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1")
rt = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1")

sm.get_waiter("endpoint_in_service").wait(EndpointName=ep, WaiterConfig={"Delay": 1, "MaxAttempts": 30})

with open(os.environ["SAMPLE"], "rb") as f:
    out = rt.invoke_endpoint(EndpointName=ep, ContentType="text/csv", Body=f.read())
got = [float(x) for x in out["Body"].read().decode().split()]
want = [float(x) for x in open(os.environ["EXPECTED"]).read().split()]
if len(got) != len(want) or any(abs(g - w) > 1e-6 * abs(w) + 1e-12 for g, w in zip(got, want)):
    sys.exit(f"invoke_endpoint: got {got}, want {want}")

try:
    sm.describe_endpoint(EndpointName="no-such-endpoint")
    sys.exit("describe_endpoint on a missing endpoint did not raise")
except ClientError as e:
    code = e.response["Error"]["Code"]
    if code != "ValidationException":
        sys.exit(f"describe_endpoint: error code {code}, want ValidationException")
print("boto3 ok")
EOF
expect "boto3" "boto3 ok"
ok "boto3: waiter, invoke_endpoint, ClientError ValidationException"

# --- instance count -----------------------------------------------------------

run "update-endpoint-weights-and-capacities" sm update-endpoint-weights-and-capacities --endpoint-name $EP \
	--desired-weights-and-capacities VariantName=AllTraffic,DesiredInstanceCount=2
ok "update-endpoint-weights-and-capacities to 2"
run "wait after scaling" wait_ endpoint-in-service $EP
run "describe after scaling" sm describe-endpoint --endpoint-name $EP \
	--query '[EndpointStatus, ProductionVariants[0].CurrentInstanceCount]' --output text
expect "describe after scaling" "$(printf 'InService\t2')"
ok "describe-endpoint: InService, 2 instances"

# --- Application Auto Scaling -------------------------------------------------

run "register-scalable-target" aas register-scalable-target --service-namespace sagemaker \
	--resource-id "$RESOURCE" --scalable-dimension $DIM --min-capacity 1 --max-capacity 4
ok "register-scalable-target"

run "put-scaling-policy" aas put-scaling-policy --service-namespace sagemaker --policy-name cli-policy \
	--resource-id "$RESOURCE" --scalable-dimension $DIM --policy-type TargetTrackingScaling \
	--target-tracking-scaling-policy-configuration \
	'{"TargetValue":70.0,"PredefinedMetricSpecification":{"PredefinedMetricType":"SageMakerVariantInvocationsPerInstance"},"ScaleInCooldown":300,"ScaleOutCooldown":60}' \
	--query PolicyARN --output text
expect_in "$WORK/out" "put-scaling-policy" "policyName/cli-policy"
ok "put-scaling-policy"

run "describe-scalable-targets" aas describe-scalable-targets --service-namespace sagemaker \
	--resource-ids "$RESOURCE" --query 'ScalableTargets[].[ResourceId, MinCapacity, MaxCapacity]' --output text
expect "describe-scalable-targets" "$(printf '%s\t1\t4' "$RESOURCE")"
ok "describe-scalable-targets"

run "describe-scaling-policies" aas describe-scaling-policies --service-namespace sagemaker \
	--resource-id "$RESOURCE" \
	--query 'ScalingPolicies[].[PolicyName, PolicyType, TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType]' \
	--output text
expect "describe-scaling-policies" "$(printf 'cli-policy\tTargetTrackingScaling\tSageMakerVariantInvocationsPerInstance')"
ok "describe-scaling-policies"

run "delete-scaling-policy" aas delete-scaling-policy --service-namespace sagemaker --policy-name cli-policy \
	--resource-id "$RESOURCE" --scalable-dimension $DIM
run "describe-scaling-policies after delete" aas describe-scaling-policies --service-namespace sagemaker \
	--resource-id "$RESOURCE" --query 'length(ScalingPolicies)' --output text
expect "describe-scaling-policies after delete" "0"
ok "delete-scaling-policy"

run "deregister-scalable-target" aas deregister-scalable-target --service-namespace sagemaker \
	--resource-id "$RESOURCE" --scalable-dimension $DIM
run "describe-scalable-targets after deregister" aas describe-scalable-targets --service-namespace sagemaker \
	--resource-ids "$RESOURCE" --query 'length(ScalableTargets)' --output text
expect "describe-scalable-targets after deregister" "0"
ok "deregister-scalable-target"

# --- blue/green update --------------------------------------------------------

run "create-model (green)" sm create-model --model-name cli-model-green \
	--primary-container "Image=xgboost,ModelDataUrl=$MODEL_URL" --execution-role-arn "$ROLE"
run "create-endpoint-config (green)" sm create-endpoint-config --endpoint-config-name cli-config-green \
	--production-variants VariantName=AllTraffic,ModelName=cli-model-green,InstanceType=ml.m5.large,InitialInstanceCount=1
ok "create green model and config"

run "update-endpoint" sm update-endpoint --endpoint-name $EP --endpoint-config-name cli-config-green
ok "update-endpoint to cli-config-green"
run "wait after update" wait_ endpoint-in-service $EP
run "describe after update" sm describe-endpoint --endpoint-name $EP \
	--query '[EndpointStatus, EndpointConfigName, ProductionVariants[0].CurrentInstanceCount]' --output text
expect "describe after update" "$(printf 'InService\tcli-config-green\t1')"
ok "describe-endpoint: InService on cli-config-green"

run "invoke after update" aws_ sagemaker-runtime invoke-endpoint --endpoint-name $EP \
	--content-type text/csv --body "fileb://$REPO/examples/xgboost/sample.csv" "$WORK/out2.csv"
check_predictions "invoke after update" "$WORK/out2.csv"
ok "invoke-endpoint after update"

# --- serverless ---------------------------------------------------------------

SL=cli-serverless

# invoke_sl STEP OUT WANT: InvokeEndpoint on the serverless endpoint with
# --debug; the predictions must match and the X-Inferbox-Cold-Start header
# (from the debug log of the response headers) must start with WANT. The
# header is left in $COLD.
invoke_sl() {
	run "$1" aws_ --debug sagemaker-runtime invoke-endpoint --endpoint-name $SL \
		--content-type text/csv --body "fileb://$REPO/examples/xgboost/sample.csv" "$2"
	COLD=$(sed -n "s/.*'X-Inferbox-Cold-Start': '\([^']*\)'.*/\1/p" "$WORK/err" | tail -n 1)
	[[ "$COLD" == "$3"* ]] || fail "$1" "X-Inferbox-Cold-Start is '$COLD', want '$3…'"
	check_predictions "$1" "$2"
}

run "create-endpoint-config (serverless)" sm create-endpoint-config --endpoint-config-name cli-sl-config \
	--production-variants 'VariantName=AllTraffic,ModelName=cli-model,ServerlessConfig={MemorySizeInMB=2048,MaxConcurrency=5}'
expect_in "$WORK/out" "create-endpoint-config (serverless)" "endpoint-config/cli-sl-config"
run "create-endpoint (serverless)" sm create-endpoint --endpoint-name $SL --endpoint-config-name cli-sl-config
run "wait endpoint-in-service (serverless)" wait_ endpoint-in-service $SL
ok "create serverless endpoint: MemorySizeInMB=2048, MaxConcurrency=5"

run "describe-endpoint (serverless)" sm describe-endpoint --endpoint-name $SL \
	--query '[EndpointStatus, ProductionVariants[0].CurrentInstanceCount, ProductionVariants[0].CurrentServerlessConfig.MemorySizeInMB, ProductionVariants[0].CurrentServerlessConfig.MaxConcurrency]' \
	--output text
expect "describe-endpoint (serverless)" "$(printf 'InService\t0\t2048\t5')"
ok "describe-endpoint: InService, 0 instances, CurrentServerlessConfig 2048 MB / 5"

invoke_sl "invoke serverless (cold)" "$WORK/sl1.csv" "true; duration_ms="
ok "invoke-endpoint serverless: cold start ($COLD), predictions match"

invoke_sl "invoke serverless (warm)" "$WORK/sl2.csv" "false"
ok "invoke-endpoint serverless again: warm (X-Inferbox-Cold-Start: false)"

# Idle for hosting.serverless_idle_timeout (2s): back to zero instances.
deadline=$((SECONDS + 20))
while :; do
	run "describe-endpoint (scale to zero)" sm describe-endpoint --endpoint-name $SL \
		--query 'ProductionVariants[0].CurrentInstanceCount' --output text
	[[ "$(tr -d '[:space:]' <"$WORK/out")" == 0 ]] && break
	((SECONDS < deadline)) || fail "scale to zero" "CurrentInstanceCount $(cat "$WORK/out") after 20 s"
	sleep 0.5
done
ok "scale to zero after the idle timeout: CurrentInstanceCount 0"

invoke_sl "invoke serverless (cold again)" "$WORK/sl3.csv" "true; duration_ms="
ok "invoke-endpoint after scale to zero: cold start again ($COLD)"

run "update-endpoint-weights-and-capacities (serverless)" sm_new update-endpoint-weights-and-capacities \
	--endpoint-name $SL \
	--desired-weights-and-capacities 'VariantName=AllTraffic,ServerlessUpdateConfig={MaxConcurrency=10,ProvisionedConcurrency=2}'
run "wait after serverless update" wait_ endpoint-in-service $SL
# Provisioned concurrency 2 at hosting.instance_concurrency 4: one instance,
# warm through idle periods.
deadline=$((SECONDS + 20))
while :; do
	run "describe after serverless update" sm_new describe-endpoint --endpoint-name $SL \
		--query '[EndpointStatus, ProductionVariants[0].CurrentInstanceCount, ProductionVariants[0].CurrentServerlessConfig.MaxConcurrency, ProductionVariants[0].CurrentServerlessConfig.ProvisionedConcurrency]' \
		--output text
	[[ "$(tr -d '\r' <"$WORK/out" | sed -e 's/[[:space:]]*$//')" == "$(printf 'InService\t1\t10\t2')" ]] && break
	((SECONDS < deadline)) || expect "describe after serverless update" "$(printf 'InService\t1\t10\t2')"
	sleep 0.5
done
ok "update-endpoint-weights-and-capacities: MaxConcurrency 10, ProvisionedConcurrency 2, 1 warm instance"

run "delete-endpoint (serverless)" sm delete-endpoint --endpoint-name $SL
run "wait endpoint-deleted (serverless)" wait_ endpoint-deleted $SL
run "delete-endpoint-config (serverless)" sm delete-endpoint-config --endpoint-config-name cli-sl-config
ok "delete serverless endpoint and config"

# --- async --------------------------------------------------------------------

AS=cli-async
run "s3 mb" aws_ s3 mb s3://cli-async
run "s3 cp input" aws_ s3 cp --only-show-errors "$REPO/examples/xgboost/sample.csv" s3://cli-async/in/sample.csv
ok "s3 cp the input to the embedded S3"

# (This CLI's API model predates OutputConfig.S3FailurePath: failures go
# under S3OutputPath as <id>-error.out.)
run "create-endpoint-config (async)" sm create-endpoint-config --endpoint-config-name cli-async-config \
	--production-variants VariantName=AllTraffic,ModelName=cli-model,InstanceType=ml.m5.large,InitialInstanceCount=1 \
	--async-inference-config '{"ClientConfig":{"MaxConcurrentInvocationsPerInstance":2},"OutputConfig":{"S3OutputPath":"s3://cli-async/out"}}'
expect_in "$WORK/out" "create-endpoint-config (async)" "endpoint-config/cli-async-config"
run "create-endpoint (async)" sm create-endpoint --endpoint-name $AS --endpoint-config-name cli-async-config
run "wait endpoint-in-service (async)" wait_ endpoint-in-service $AS
ok "create async endpoint: AsyncInferenceConfig with S3OutputPath"

run "invoke-endpoint-async" aws_ sagemaker-runtime invoke-endpoint-async --endpoint-name $AS \
	--input-location s3://cli-async/in/sample.csv --content-type text/csv \
	--query '[InferenceId, OutputLocation]' --output text
read -r INFERENCE_ID OUTPUT_LOCATION <"$WORK/out"
[[ "$OUTPUT_LOCATION" == "s3://cli-async/out/$INFERENCE_ID.out" ]] ||
	fail "invoke-endpoint-async" "OutputLocation '$OUTPUT_LOCATION' for InferenceId '$INFERENCE_ID'"
ok "invoke-endpoint-async: 202, InferenceId $INFERENCE_ID, OutputLocation $OUTPUT_LOCATION"

deadline=$((SECONDS + 30))
until aws_ s3 ls "$OUTPUT_LOCATION" >"$WORK/out" 2>"$WORK/err"; do
	((SECONDS < deadline)) || fail "wait for the async output" "no $OUTPUT_LOCATION after 30 s"
	sleep 0.2
done
run "s3 cp output" aws_ s3 cp --only-show-errors "$OUTPUT_LOCATION" "$WORK/async.csv"
check_predictions "async output" "$WORK/async.csv"
ok "async output in S3 (s3 ls, s3 cp): predictions match python3-xgboost"

run_fails "invoke-endpoint on async" aws_ sagemaker-runtime invoke-endpoint --endpoint-name $AS \
	--content-type text/csv --body "fileb://$REPO/examples/xgboost/sample.csv" "$WORK/sync.csv"
expect_in "$WORK/err" "invoke-endpoint on async" "ValidationError"
ok "invoke-endpoint on an async endpoint: ValidationError"

run "invoke-endpoint-async (missing input)" aws_ sagemaker-runtime invoke-endpoint-async --endpoint-name $AS \
	--input-location s3://cli-async/in/missing.csv --content-type text/csv --query InferenceId --output text
# This CLI's model has no FailureLocation in the answer either: the
# documented name is <S3OutputPath>/<InferenceId>-error.out.
FAILURE_LOCATION="s3://cli-async/out/$(tr -d '[:space:]' <"$WORK/out")-error.out"
deadline=$((SECONDS + 30))
until aws_ s3 cp --only-show-errors "$FAILURE_LOCATION" "$WORK/failure.txt" >"$WORK/out" 2>"$WORK/err"; do
	((SECONDS < deadline)) || fail "wait for the failure object" "no $FAILURE_LOCATION after 30 s"
	sleep 0.2
done
expect_in "$WORK/failure.txt" "async failure object" "s3://cli-async/in/missing.csv"
ok "invoke-endpoint-async with a missing input: failure object names it"

run "delete-endpoint (async)" sm delete-endpoint --endpoint-name $AS
run "wait endpoint-deleted (async)" wait_ endpoint-deleted $AS
run "delete-endpoint-config (async)" sm delete-endpoint-config --endpoint-config-name cli-async-config
ok "delete async endpoint and config"

# --- delete -------------------------------------------------------------------

run "delete-endpoint" sm delete-endpoint --endpoint-name $EP
ok "delete-endpoint"
run "wait endpoint-deleted" wait_ endpoint-deleted $EP
run "list-endpoints after delete" sm list-endpoints --query 'length(Endpoints)' --output text
expect "list-endpoints after delete" "0"
ok "wait endpoint-deleted"

for c in cli-config cli-config-green; do
	run "delete-endpoint-config $c" sm delete-endpoint-config --endpoint-config-name $c
done
run "list-endpoint-configs after delete" sm list-endpoint-configs --query 'length(EndpointConfigs)' --output text
expect "list-endpoint-configs after delete" "0"
ok "delete-endpoint-config"

for m in cli-model cli-model-green; do
	run "delete-model $m" sm delete-model --model-name $m
done
run "list-models after delete" sm list-models --query 'length(Models)' --output text
expect "list-models after delete" "0"
ok "delete-model"

echo "$PASSED passed, 0 failed"
