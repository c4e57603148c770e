#!/usr/bin/env bash
# Async benchmark: durable enqueue rate and warm end-to-end latency of an
# async endpoint.
#
#   bash bench/async/run.sh     (from anywhere; needs go, wrk, curl, python3)
#
# One inferbox server (bench/async/config.yaml: defaults, log level warn) with
# the tiny XGBoost model of bench/gateway (one tree, one feature) on two async
# endpoints of one ml.m5.large instance each, MaxConcurrentInvocationsPerInstance
# 4, output to the embedded S3 (s3://bench/<endpoint>/), input s3://bench/in.csv
# (the body "0.5\n"):
#
# 1. End-to-end latency when warm: endpoint e2e (SuccessTopic = a webhook in
#    bench/async/e2e), N requests one at a time after 10 warm-up requests:
#    submit -> success notification, then submit -> output readable (HEAD
#    polled every 1 ms). Target: p50 <= 20 ms.
# 2. Durable enqueue rate: endpoint enq (no notifications), wrk -t2 -cCONNS
#    -dDURATION with bench/async/enqueue.lua, ROUNDS rounds; every 202 is a
#    request stored in JetStream. The workers drain the queue at the same
#    time on the same two cores, as they would in use. Target >= 2,000/s.
#    Then the time the backlog takes to drain (processed/s).
#
# Environment: N (200), DURATION (10s), ROUNDS (2), CONNS (32), INFERBOX_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
N=${N:-200}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-32}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferbox-async.XXXXXX")
PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

load() { echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }

# control OP JSON: one SageMaker control-plane call, unsigned.
control() {
	curl -fsS "$IB/" -H "X-Amz-Target: SageMaker.$1" -H "Content-Type: application/x-amz-json-1.1" -d "$2"
}

# deploy_async NAME OUTPUT_CONFIG_JSON: async endpoint NAME on model tiny.
deploy_async() {
	control CreateEndpointConfig "{\"EndpointConfigName\":\"$1\",\"ProductionVariants\":[{\"VariantName\":\"AllTraffic\",\"ModelName\":\"tiny\",\"InstanceType\":\"ml.m5.large\",\"InitialInstanceCount\":1}],\"AsyncInferenceConfig\":{\"ClientConfig\":{\"MaxConcurrentInvocationsPerInstance\":4},\"OutputConfig\":$2}}" >/dev/null
	control CreateEndpoint "{\"EndpointName\":\"$1\",\"EndpointConfigName\":\"$1\"}" >/dev/null
	local deadline=$((SECONDS + 60))
	until control DescribeEndpoint "{\"EndpointName\":\"$1\"}" | grep -q '"EndpointStatus":"InService"'; do
		((SECONDS < deadline)) || { echo "endpoint $1 not InService" >&2; tail "$WORK/inferbox.log" >&2; exit 1; }
		sleep 0.2
	done
}

# backlog NAME: ApproximateBacklogSize of an endpoint.
backlog() {
	curl -fsS "$IB/metrics" | awk -v m="sagemaker_async_approximate_backlog_size{endpoint=\"$1\"}" '$1 == m { print $2 }'
}

echo "== build"
(cd "$REPO" && go build -o "$WORK/e2e" ./bench/async/e2e)
if [[ -n "${INFERBOX_BIN:-}" ]]; then
	cp "$INFERBOX_BIN" "$WORK/inferbox"
else
	(cd "$REPO" && go build -o "$WORK/inferbox" ./cmd/inferbox)
fi
IB_PORT=$(free_port)
"$WORK/inferbox" serve --listen "127.0.0.1:$IB_PORT" --data "$WORK/data" --config "$HERE/config.yaml" \
	--log text >"$WORK/inferbox.log" 2>&1 &
PIDS+=($!)
IB="http://127.0.0.1:$IB_PORT"
deadline=$((SECONDS + 20))
until curl -fsS --max-time 1 "$IB/healthz" >/dev/null 2>&1; do
	((SECONDS < deadline)) || { echo "no answer from $IB/healthz" >&2; exit 1; }
	sleep 0.1
done
echo "  $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"

curl -fsS -X PUT "$IB/bench" >/dev/null
printf '0.5\n' | curl -fsS -X PUT --data-binary @- -H 'Content-Type: text/csv' "$IB/bench/in.csv" >/dev/null
control CreateModel "{\"ModelName\":\"tiny\",\"PrimaryContainer\":{\"Image\":\"xgboost\",\"ModelDataUrl\":\"file://$REPO/bench/gateway/model\"},\"ExecutionRoleArn\":\"arn:aws:iam::123456789012:role/bench\"}" >/dev/null
WH_PORT=$(free_port)
deploy_async e2e "{\"S3OutputPath\":\"s3://bench/e2e\",\"NotificationConfig\":{\"SuccessTopic\":\"http://127.0.0.1:$WH_PORT/\"}}"
deploy_async enq '{"S3OutputPath":"s3://bench/enq"}'

echo "== 1. end-to-end latency of a tiny async request, warm, one at a time (target: p50 <= 20 ms)"
load
"$WORK/e2e" -url "$IB" -endpoint e2e -input s3://bench/in.csv -webhook "127.0.0.1:$WH_PORT" -n "$N" | sed 's/^/  /'

echo "== 2. durable enqueue rate: wrk -t2 -c$CONNS -d$DURATION, bench/async/enqueue.lua (target >= 2,000 202s/s)"
for ((r = 1; r <= ROUNDS; r++)); do
	load
	before=$(curl -fsS "$IB/metrics" | awk '$1 == "sagemaker_async_requests_accepted_total{endpoint=\"enq\"}" { print $2 }')
	out=$(WRK_INPUT=s3://bench/in.csv wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$HERE/enqueue.lua" "$IB/endpoints/enq/async-invocations")
	after=$(curl -fsS "$IB/metrics" | awk '$1 == "sagemaker_async_requests_accepted_total{endpoint=\"enq\"}" { print $2 }')
	echo "$out" | awk -v r="$r" -v acc="$(( ${after%.*} - ${before:-0} ))" '
		/^Requests\/sec:/ { rps = $2 }
		/^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
		/Non-2xx or 3xx responses:/ { bad = $NF }
		END { printf "  round %d: %.0f requests/s, latency p50 %s p99 %s, non-2xx %d, accepted (server counter) %d\n", r, rps, p50, p99, bad, acc }'
	# Drain: how fast the queued requests are processed afterwards.
	b0=$(backlog enq); t0=$(date +%s.%N)
	while [[ "$(backlog enq)" != 0 ]]; do sleep 0.2; done
	t1=$(date +%s.%N)
	awk -v b="$b0" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "           backlog of %d after wrk drained in %.1f s (%.0f processed/s)\n", b, t1 - t0, b / (t1 - t0) }'
done
load
