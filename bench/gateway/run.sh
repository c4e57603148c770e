#!/usr/bin/env bash
# Gateway benchmark: InvokeEndpoint on a trivial in-process model (one XGBoost
# tree of depth 1, one feature) against a bare net/http server that echoes the
# body, both driven by wrk with the same script and body.
#
#   bash bench/gateway/run.sh        (from anywhere; needs go, wrk, curl, python3)
#
# 1. Full load: `wrk -t2 -c32 -d15s --latency` against each server, ROUNDS
#    times alternating; prints requests/s, p50, p99 and the inferbox/echo ratio
#    (target >= 0.6).
# 2. Half load: wrk has no fixed-rate mode (wrk2 is not in Debian), so the
#    script paces the same 32 connections with a pause between requests
#    (WRK_DELAY_MS, read by invoke.lua), calibrated in three 4 s runs to land
#    near half of the full-load maximum, then runs DURATION there and reads
#    p50/p99 OverheadLatency (and ModelLatency) from the difference of two
#    scrapes of inferbox's /metrics histograms (target: p99 <= 1 ms). The echo
#    server is run with the same pacing for comparison of wrk's latencies.
#
# Environment: DURATION (15s), ROUNDS (2), CONNS (32), THREADS (2), and
# INFERBOX_BIN to measure a prebuilt binary instead of building ./cmd/inferbox.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
EP=gw
WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferbox-gw.XXXXXX")
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

wait_healthy() {
	local deadline=$((SECONDS + 20))
	while ((SECONDS < deadline)); do
		curl -fsS --max-time 1 "$1/healthz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "no answer from $1/healthz" >&2
	return 1
}

# control OP JSON: one SageMaker control-plane call (AWS JSON 1.1, unsigned:
# accepted on loopback when no access keys are configured).
control() {
	curl -fsS "$IB/" -H "X-Amz-Target: SageMaker.$1" -H "Content-Type: application/x-amz-json-1.1" -d "$2" >/dev/null
}

# bench URL CONNS DURATION: run wrk (at most one thread per connection), print "req/s p50_ms p99_ms non2xx".
bench() {
	local out t=$((${2} < THREADS ? ${2} : THREADS))
	out=$(wrk -t"$t" -c"$2" -d"$3" --latency -s "$HERE/invoke.lua" "$1")
	echo "$out" >>"$WORK/wrk.log"
	echo "$out" | awk '
		function ms(v) {
			if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
			if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
			if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
			return v
		}
		/^ +50%/ { p50 = ms($2) }
		/^ +99%/ { p99 = ms($2) }
		/^Requests\/sec:/ { rps = $2 }
		/Non-2xx or 3xx responses:/ { bad = $NF }
		END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, bad }'
}

echo "== build"
(cd "$REPO" && go build -o "$WORK/echo" ./bench/gateway/echo)
if [[ -n "${INFERBOX_BIN:-}" ]]; then
	cp "$INFERBOX_BIN" "$WORK/inferbox"
else
	(cd "$REPO" && go build -o "$WORK/inferbox" ./cmd/inferbox)
fi

ECHO_PORT=$(free_port)
"$WORK/echo" --listen "127.0.0.1:$ECHO_PORT" >"$WORK/echo.log" 2>&1 &
PIDS+=($!)
ECHO="http://127.0.0.1:$ECHO_PORT"

IB_PORT=$(free_port)
"$WORK/inferbox" serve --listen "127.0.0.1:$IB_PORT" --data "$WORK/data" --config "$HERE/config.yaml" \
	--log text >"$WORK/inferbox.log" 2>&1 &
PIDS+=($!)
IB="http://127.0.0.1:$IB_PORT"
wait_healthy "$ECHO"
wait_healthy "$IB"

echo "== deploy the one-tree model as endpoint $EP (1 instance, hosting.instance_concurrency 64)"
control CreateModel "{\"ModelName\":\"$EP\",\"PrimaryContainer\":{\"Image\":\"xgboost\",\"ModelDataUrl\":\"file://$HERE/model\"},\"ExecutionRoleArn\":\"arn:aws:iam::123456789012:role/bench\"}"
control CreateEndpointConfig "{\"EndpointConfigName\":\"$EP\",\"ProductionVariants\":[{\"VariantName\":\"AllTraffic\",\"ModelName\":\"$EP\",\"InstanceType\":\"ml.m5.xlarge\",\"InitialInstanceCount\":1}]}"
control CreateEndpoint "{\"EndpointName\":\"$EP\",\"EndpointConfigName\":\"$EP\"}"
deadline=$((SECONDS + 30))
until curl -fsS "$IB/" -H "X-Amz-Target: SageMaker.DescribeEndpoint" -H "Content-Type: application/x-amz-json-1.1" \
	-d "{\"EndpointName\":\"$EP\"}" | grep -q '"EndpointStatus":"InService"'; do
	((SECONDS < deadline)) || { echo "endpoint not InService" >&2; tail "$WORK/inferbox.log" >&2; exit 1; }
	sleep 0.2
done
INVOKE="$IB/endpoints/$EP/invocations"
answer=$(curl -fsS "$INVOKE" -H "Content-Type: text/csv" --data-binary $'0.5\n')
echo "inferbox answers 0.5 with: $answer; echo answers with: $(curl -fsS "$ECHO/" -H "Content-Type: text/csv" --data-binary $'0.5\n')"

echo "== warm up (3 s each)"
bench "$ECHO/" "$CONNS" 3s >/dev/null
bench "$INVOKE" "$CONNS" 3s >/dev/null

echo "== full load: wrk -t$THREADS -c$CONNS -d$DURATION --latency -s bench/gateway/invoke.lua"
printf '%-6s %-9s %10s %9s %9s %7s\n' round server "req/s" "p50 ms" "p99 ms" non2xx
max=0
for ((r = 1; r <= ROUNDS; r++)); do
	read -r e_rps e_p50 e_p99 e_bad < <(bench "$ECHO/" "$CONNS" "$DURATION")
	printf '%-6s %-9s %10s %9s %9s %7s\n' "$r" echo "$e_rps" "$e_p50" "$e_p99" "$e_bad"
	read -r i_rps i_p50 i_p99 i_bad < <(bench "$INVOKE" "$CONNS" "$DURATION")
	printf '%-6s %-9s %10s %9s %9s %7s\n' "$r" inferbox "$i_rps" "$i_p50" "$i_p99" "$i_bad"
	echo "       ratio inferbox/echo: $(awk -v i="$i_rps" -v e="$e_rps" 'BEGIN { printf "%.2f", i / e }') (target >= 0.60)"
	((i_rps > max)) && max=$i_rps
	((i_bad == 0)) || echo "       WARNING: $i_bad non-2xx answers from inferbox"
done

half=$((max / 2))
# Pace $CONNS connections to about half the maximum: a connection's cycle is
# its pause plus the request's latency, so rate = CONNS * 1000 / (pause + lat).
echo "== half load: maximum $max req/s, pacing -c$CONNS to about $half req/s (4 s calibration runs)"
pause=$(awk -v c="$CONNS" -v h="$half" 'BEGIN { printf "%.3f", c * 1000 / h }')
for i in 1 2 3; do
	read -r rps _ _ _ < <(WRK_DELAY_MS=$pause bench "$INVOKE" "$CONNS" 4s)
	echo "  WRK_DELAY_MS=$pause: $rps req/s"
	pause=$(awk -v c="$CONNS" -v h="$half" -v r="$rps" -v d="$pause" \
		'BEGIN { lat = c * 1000 / r - d; if (lat < 0) lat = 0; p = c * 1000 / h - lat; if (p < 0) p = 0; printf "%.3f", p }')
done
export WRK_DELAY_MS=$pause
curl -fsS "$IB/metrics" >"$WORK/before.prom"
read -r h_rps h_p50 h_p99 h_bad < <(bench "$INVOKE" "$CONNS" "$DURATION")
curl -fsS "$IB/metrics" >"$WORK/after.prom"
echo "  inferbox at -c$CONNS WRK_DELAY_MS=$pause for $DURATION: $h_rps req/s ($(awk -v h="$h_rps" -v m="$max" 'BEGIN { printf "%.0f", 100 * h / m }')% of max), wrk p50 $h_p50 ms, p99 $h_p99 ms, non2xx $h_bad"
read -r he_rps he_p50 he_p99 _ < <(bench "$ECHO/" "$CONNS" "$DURATION")
echo "  echo     at -c$CONNS WRK_DELAY_MS=$pause for $DURATION: $he_rps req/s, wrk p50 $he_p50 ms, p99 $he_p99 ms"
python3 "$HERE/histquantile.py" "$WORK/before.prom" "$WORK/after.prom" sagemaker_overhead_latency_microseconds "$EP" 0.5 0.99
python3 "$HERE/histquantile.py" "$WORK/before.prom" "$WORK/after.prom" sagemaker_model_latency_microseconds "$EP" 0.5 0.99
echo "  (target: p99 OverheadLatency <= 1000 us)"
