#!/usr/bin/env bash
# Serverless benchmark: cold starts from zero instances and the warm invoke
# overhead of a serverless endpoint against a real-time one.
#
#   bash bench/serverless/run.sh     (from anywhere; needs go, wrk, hyperfine, curl, python3)
#
# One inferbox server (bench/serverless/config.yaml: serverless idle timeout
# 200 ms, hosting.instance_concurrency 64, log level warn) serves:
#
# 1. XGBoost cold start: endpoint sl-xgb, examples/xgboost/model (100 trees,
#    30 features), ServerlessConfig 2048 MB / MaxConcurrency 5. TRIALS times:
#    wait until DescribeEndpoint shows CurrentInstanceCount 0, then time one
#    InvokeEndpoint of examples/xgboost/sample.csv (5 rows) from the client
#    (bench/serverless/coldstart cold), with the X-Inferbox-Cold-Start
#    duration; then the ModelSetupTime histogram over the same trials
#    (bench/gateway/histquantile.py on two /metrics scrapes). Target: median
#    client time <= 50 ms.
# 2. Bring-your-own Python cold start: the same for examples/byo-python
#    (Image = the path of serve.py, a child process), plus what Python's own
#    start costs: hyperfine of `/usr/bin/python3 -c pass` and of serve.py's
#    imports, and serve.py started alone to its first 200 on /ping with 1 ms
#    polling (coldstart pystart).
# 3. Warm overhead: endpoint rt (real-time, ml.m5.large, 1 instance) and
#    endpoint slw (serverless, 4096 MB, MaxConcurrency 64 = ProvisionedConcurrency
#    64: one instance, always warm; both get 2 runtime threads here) on the
#    same model and body. A Go closed-loop client (coldstart warm, every
#    request's latency kept) at 1 and CONNS connections, then wrk with
#    bench/serverless/invoke.lua at CONNS connections as bench/gateway does;
#    ROUNDS rounds alternating; prints req/s, mean, p50, p99 and the
#    serverless/real-time ratios (target <= 1.2x latency, >= 1/1.2
#    throughput). wrk's mean and p99 are printed but not trusted at one
#    connection (they disagree with its own request rate there).
#
# The load average is printed before each part: the machine is shared.
#
# Environment: TRIALS (25), DURATION (10s), ROUNDS (3), CONNS (32), and
# INFERBOX_BIN to measure a prebuilt binary instead of building ./cmd/inferbox.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TRIALS=${TRIALS:-25}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
PY=/usr/bin/python3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferbox-sl.XXXXXX")
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

# control OP JSON: one SageMaker control-plane call (AWS JSON 1.1, unsigned:
# accepted on loopback when no access keys are configured); prints the answer.
control() {
	curl -fsS "$IB/" -H "X-Amz-Target: SageMaker.$1" -H "Content-Type: application/x-amz-json-1.1" -d "$2"
}

# deploy NAME VARIANT_JSON: endpoint config and endpoint NAME, waited InService.
deploy() {
	control CreateEndpointConfig "{\"EndpointConfigName\":\"$1\",\"ProductionVariants\":[$2]}" >/dev/null
	control CreateEndpoint "{\"EndpointName\":\"$1\",\"EndpointConfigName\":\"$1\"}" >/dev/null
	local deadline=$((SECONDS + 60))
	until control DescribeEndpoint "{\"EndpointName\":\"$1\"}" | grep -q '"EndpointStatus":"InService"'; do
		if ((SECONDS >= deadline)) || control DescribeEndpoint "{\"EndpointName\":\"$1\"}" | grep -q '"EndpointStatus":"Failed"'; then
			echo "endpoint $1 not InService:" >&2
			control DescribeEndpoint "{\"EndpointName\":\"$1\"}" >&2
			tail "$WORK/inferbox.log" >&2
			exit 1
		fi
		sleep 0.2
	done
}

model() {
	control CreateModel "{\"ModelName\":\"$1\",\"PrimaryContainer\":{\"Image\":\"$2\",\"ModelDataUrl\":\"file://$3\"},\"ExecutionRoleArn\":\"arn:aws:iam::123456789012:role/bench\"}" >/dev/null
}

serverless() { echo "{\"VariantName\":\"AllTraffic\",\"ModelName\":\"$1\",\"ServerlessConfig\":{$2}}"; }

# setup_time ENDPOINT: ModelSetupTime between metrics scrapes before.prom and after.prom.
setup_time() {
	python3 "$REPO/bench/gateway/histquantile.py" "$WORK/before.prom" "$WORK/after.prom" \
		sagemaker_model_setup_time_microseconds "$1" 0.5 0.9
}

# bench URL CONNS: run wrk, print "req/s mean_ms p50_ms p99_ms non2xx".
bench() {
	local out t=$((${2} < 2 ? ${2} : 2))
	out=$(WRK_BODY="$BODY" wrk -t"$t" -c"$2" -d"$DURATION" --latency -s "$HERE/invoke.lua" "$1")
	echo "$out" >>"$WORK/wrk.log"
	echo "$out" | awk '
		function ms(v) {
			if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
			if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
			if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
			return v
		}
		/^ +Latency +[0-9.]+(us|ms|s) / { mean = ms($2) }
		/^ +50%/ { p50 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/^Requests\/sec:/ { rps = $2 }
		/Non-2xx or 3xx responses:/ { bad = $NF }
		END { printf "%.0f %.3f %.3f %.3f %d\n", rps, mean, p50, p99, bad }'
}

echo "== build"
(cd "$REPO" && go build -o "$WORK/coldstart" ./bench/serverless/coldstart)
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

XGB=$REPO/examples/xgboost
BYO=$REPO/examples/byo-python

echo "== 1. XGBoost cold start: $TRIALS trials, zero -> first response (target: median <= 50 ms)"
load
model sl-xgb xgboost "$XGB/model"
deploy sl-xgb "$(serverless sl-xgb '"MemorySizeInMB":2048,"MaxConcurrency":5')"
curl -fsS "$IB/metrics" >"$WORK/before.prom"
"$WORK/coldstart" cold --url "$IB" --endpoint sl-xgb --body "$XGB/sample.csv" --trials "$TRIALS"
curl -fsS "$IB/metrics" >"$WORK/after.prom"
echo "  ModelSetupTime (sagemaker_model_setup_time_microseconds, same trials):"
setup_time sl-xgb

echo "== 2. bring-your-own Python cold start (examples/byo-python/serve.py as a child process)"
load
hyperfine -N --warmup 3 --runs 30 --export-json "$WORK/py.json" \
	"$PY -c pass" \
	"$PY -c 'import http.server,json,math,os,signal,sys,threading'" >"$WORK/hyperfine.log" 2>&1
python3 - "$WORK/py.json" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f"  hyperfine {r['command']!r}: median {r['median']*1000:.2f} ms (mean {r['mean']*1000:.2f} ± {r['stddev']*1000:.2f})")
EOF
grep '^import\|^from' "$BYO/serve.py" | tr '\n' ' ' | sed 's/^/  (serve.py: /; s/ $/)\n/'
"$WORK/coldstart" pystart --command "$PY $BYO/serve.py" --model "$BYO/model" --trials 20 | sed 's/^/  /'
model sl-byo "$BYO/serve.py" "$BYO/model"
deploy sl-byo "$(serverless sl-byo '"MemorySizeInMB":1024,"MaxConcurrency":5')"
curl -fsS "$IB/metrics" >"$WORK/before.prom"
"$WORK/coldstart" cold --url "$IB" --endpoint sl-byo --body "$BYO/sample.csv" --trials "$((TRIALS < 20 ? TRIALS : 20))"
curl -fsS "$IB/metrics" >"$WORK/after.prom"
echo "  ModelSetupTime:"
setup_time sl-byo

echo "== 3. warm overhead: real-time vs serverless with provisioned concurrency (target <= 1.2x)"
load
BODY=$XGB/sample.csv
deploy rt '{"VariantName":"AllTraffic","ModelName":"sl-xgb","InstanceType":"ml.m5.large","InitialInstanceCount":1}'
deploy slw "$(serverless sl-xgb '"MemorySizeInMB":4096,"MaxConcurrency":64,"ProvisionedConcurrency":64')"
for ep in rt slw; do
	echo "  $ep: $(control DescribeEndpoint "{\"EndpointName\":\"$ep\"}" | python3 -c 'import json,sys; v=json.load(sys.stdin)["ProductionVariants"][0]; print(v["CurrentInstanceCount"], "instance(s)")'), cold-start header: $(curl -fsS -o /dev/null -D - "$IB/endpoints/$ep/invocations" -H 'Content-Type: text/csv' --data-binary "@$BODY" | tr -d '\r' | sed -n 's/^X-Inferbox-Cold-Start: //Ip')" | sed 's/header: $/header: none (real-time)/'
done
DURATION_SAVED=$DURATION
DURATION=3s
bench "$IB/endpoints/rt/invocations" "$CONNS" >/dev/null
bench "$IB/endpoints/slw/invocations" "$CONNS" >/dev/null
DURATION=$DURATION_SAVED
for c in 1 "$CONNS"; do
	"$WORK/coldstart" warm --url "$IB" --endpoints rt,slw --body "$BODY" --conns "$c" --duration "$DURATION" --rounds "$ROUNDS" | sed 's/^/  /'
	load
done
echo "  wrk -t2 -c$CONNS -d$DURATION --latency -s bench/serverless/invoke.lua (body: examples/xgboost/sample.csv), as bench/gateway does"
printf '  %-6s %-11s %9s %9s %9s %9s %7s\n' round endpoint "req/s" "mean ms" "p50 ms" "p99 ms" non2xx
for ((r = 1; r <= ROUNDS; r++)); do
	read -r a_rps a_mean a_p50 a_p99 a_bad < <(bench "$IB/endpoints/rt/invocations" "$CONNS")
	printf '  %-6s %-11s %9s %9s %9s %9s %7s\n' "$r" real-time "$a_rps" "$a_mean" "$a_p50" "$a_p99" "$a_bad"
	read -r b_rps b_mean b_p50 b_p99 b_bad < <(bench "$IB/endpoints/slw/invocations" "$CONNS")
	printf '  %-6s %-11s %9s %9s %9s %9s %7s\n' "$r" serverless "$b_rps" "$b_mean" "$b_p50" "$b_p99" "$b_bad"
	awk -v ar="$a_rps" -v am="$a_mean" -v a5="$a_p50" -v a9="$a_p99" -v br="$b_rps" -v bm="$b_mean" -v b5="$b_p50" -v b9="$b_p99" \
		'BEGIN { printf "         serverless/real-time: mean %.2fx, p50 %.2fx, p99 %.2fx, throughput %.2fx\n", bm / am, b5 / a5, b9 / a9, br / ar }'
done
load
echo "  serverless instances after the runs: $(control DescribeEndpoint '{"EndpointName":"slw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["ProductionVariants"][0]["CurrentInstanceCount"])') (1 = never scaled out or cold-started)"
