#!/usr/bin/env bash
# Async benchmark: one large payload end to end through a streaming model,
# against copying the same file on the same disk.
#
#   bash bench/async/bigpayload.sh     (from anywhere; needs go, curl, python3)
#
# One inferbox server (bench/async/config.yaml) with its data directory in
# the same temporary directory as the input file, so the server and cp use
# one disk. The model is a bring-your-own process that transforms its input
# line by line as it streams ("got:" + line): MODEL=go (the default) is
# bench/async/linemodel, MODEL=python the test fixture internal/runtime/
# process/testdata/server.py in its "lines" mode (answered once per read of
# up to 1 MiB). An async endpoint of one ml.m5.large instance, output to
# the embedded S3.
#
# 1. Input: SIZE_MB MiB of 128-byte lines (yes | head -c) in a file.
# 2. Copy: cp of that file on the same disk, then sync of the copy (the
#    server fsyncs its output object before the rename that publishes it).
# 3. Upload (reported separately, not part of the end-to-end time): one
#    unsigned PUT of the file to the embedded S3 (curl -T).
# 4. End to end: InvokeEndpointAsync (curl, unsigned) -> output object
#    readable (HEAD polled every 20 ms): download from the object store,
#    the model, the atomic Put of the output. Target: >= 0.3x the copy's
#    throughput (input bytes per second).
# 5. Memory: the server's VmHWM (peak resident memory) is reset through
#    /proc/<pid>/clear_refs after the upload, so it covers the end-to-end
#    run alone; VmRSS is also sampled every 50 ms. Target <= 128 MB.
#    The model process's VmHWM is reported too (it is a separate process).
# 6. The output is checked: its size and SHA-256 against sed 's/^/got:/'.
#
# Environment: SIZE_MB (1024), ROUNDS (1), MODEL (go or python), INFERBOX_BIN.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-1}
MODEL=${MODEL:-go}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferbox-bigpayload.XXXXXX")
PIDS=()
SAMPLER=

cleanup() {
	if [[ -n "$SAMPLER" ]]; then
		touch "$WORK/stop-sampling"
		wait "$SAMPLER" 2>/dev/null || true
	fi
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
now() { date +%s.%N; }
# cpu PID: user+system CPU seconds of a process so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
control() {
	curl -fsS "$IB/" -H "X-Amz-Target: SageMaker.$1" -H "Content-Type: application/x-amz-json-1.1" -d "$2"
}

echo "== build"
if [[ -n "${INFERBOX_BIN:-}" ]]; then
	cp "$INFERBOX_BIN" "$WORK/inferbox"
else
	(cd "$REPO" && go build -o "$WORK/inferbox" ./cmd/inferbox)
fi
case "$MODEL" in
go)
	(cd "$REPO" && go build -o "$WORK/linemodel" ./bench/async/linemodel)
	IMAGE="process:$WORK/linemodel"
	MODEL_PROC=linemodel
	;;
python)
	IMAGE="process:/usr/bin/python3 $REPO/internal/runtime/process/testdata/server.py"
	MODEL_PROC=server.py
	;;
*) echo "MODEL=$MODEL: want go or python" >&2; exit 2 ;;
esac
IB_PORT=$(free_port)
"$WORK/inferbox" serve --listen "127.0.0.1:$IB_PORT" --data "$WORK/data" --config "$HERE/config.yaml" \
	--log text >"$WORK/inferbox.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
IB="http://127.0.0.1:$IB_PORT"
deadline=$((SECONDS + 20))
until curl -fsS --max-time 1 "$IB/healthz" >/dev/null 2>&1; do
	((SECONDS < deadline)) || { echo "no answer from $IB/healthz" >&2; exit 1; }
	sleep 0.1
done
echo "  $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
echo "  model: $MODEL ($IMAGE)"
echo "  disk: $(df -h --output=source,fstype,size "$WORK" | tail -1)"

curl -fsS -X PUT "$IB/big" >/dev/null
control CreateModel "{\"ModelName\":\"lines\",\"PrimaryContainer\":{\"Image\":\"$IMAGE\"},\"ExecutionRoleArn\":\"arn:aws:iam::123456789012:role/bench\"}" >/dev/null
control CreateEndpointConfig '{"EndpointConfigName":"big","ProductionVariants":[{"VariantName":"AllTraffic","ModelName":"lines","InstanceType":"ml.m5.large","InitialInstanceCount":1}],"AsyncInferenceConfig":{"ClientConfig":{"MaxConcurrentInvocationsPerInstance":1},"OutputConfig":{"S3OutputPath":"s3://big/out","S3FailurePath":"s3://big/failed"}}}' >/dev/null
control CreateEndpoint '{"EndpointName":"big","EndpointConfigName":"big"}' >/dev/null
deadline=$((SECONDS + 60))
until control DescribeEndpoint '{"EndpointName":"big"}' | grep -q '"EndpointStatus":"InService"'; do
	((SECONDS < deadline)) || { echo "endpoint big not InService" >&2; tail "$WORK/inferbox.log" >&2; exit 1; }
	sleep 0.2
done
echo "  idle server: VmRSS $(( $(kb "$SERVER" VmRSS) / 1024 )) MiB"

echo "== 1. input: $SIZE_MB MiB of 128-byte lines"
LINE=$(printf 'x%.0s' {1..100})
{ yes "$(printf '%s %026d' "$LINE" 0)" || true; } | head -c $((SIZE_MB << 20)) >"$WORK/in.txt"
BYTES=$(stat -c %s "$WORK/in.txt")
LINES=$((BYTES / 128))
WANT_SIZE=$((BYTES + 4 * LINES))
WANT_SUM=$(sed 's/^/got:/' "$WORK/in.txt" | sha256sum | cut -d' ' -f1)

# ratio A B: A/B formatted.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
mibs() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }

for ((r = 1; r <= ROUNDS; r++)); do
	echo "== round $r"
	load
	# 2. Copy on the same disk.
	t0=$(now)
	cp "$WORK/in.txt" "$WORK/copy.txt"
	t1=$(now)
	sync "$WORK/copy.txt"
	t2=$(now)
	rm -f "$WORK/copy.txt"
	cp_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
	cps_s=$(awk -v a="$t0" -v b="$t2" 'BEGIN { print b - a }')
	printf '  cp:            %6.2f s  %5s MiB/s   (cp + sync: %.2f s, %s MiB/s)\n' "$cp_s" "$(mibs "$cp_s")" "$cps_s" "$(mibs "$cps_s")"

	# 3. Upload (separate).
	t0=$(now)
	curl -fsS -T "$WORK/in.txt" -H 'Content-Type: text/plain' "$IB/big/in$r.txt" >/dev/null
	t1=$(now)
	up_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
	up_hwm=$(kb "$SERVER" VmHWM)
	printf '  upload (PUT):  %6.2f s  %5s MiB/s   server VmHWM so far %d MiB\n' "$up_s" "$(mibs "$up_s")" $((up_hwm / 1024))

	# 4. End to end, with VmHWM reset and VmRSS sampled.
	echo 5 >"/proc/$SERVER/clear_refs"
	MODEL_PID=$(pgrep -P "$SERVER" -f "$MODEL_PROC" | head -1 || true)
	[[ -n "$MODEL_PID" ]] && echo 5 >"/proc/$MODEL_PID/clear_refs"
	(
		peak=0
		while kill -0 "$SERVER" 2>/dev/null && [[ ! -e "$WORK/stop-sampling" ]]; do
			v=$(kb "$SERVER" VmRSS)
			((v > peak)) && peak=$v
			echo "$peak" >"$WORK/rss-peak"
			sleep 0.05
		done
	) &
	SAMPLER=$!
	cpu0=$(cpu "$SERVER"); mcpu0=$([[ -n "$MODEL_PID" ]] && cpu "$MODEL_PID" || echo 0)
	t0=$(now)
	hdr=$(curl -fsS -D - -o /dev/null -X POST "$IB/endpoints/big/async-invocations" \
		-H "X-Amzn-SageMaker-InputLocation: s3://big/in$r.txt" -H 'X-Amzn-SageMaker-Content-Type: text/plain' \
		-H 'X-Amzn-SageMaker-Custom-Attributes: mode=lines' -H 'Content-Length: 0')
	out=$(echo "$hdr" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-amzn-sagemaker-outputlocation" { print $2 }')
	key=${out#s3://big/}
	fail=$(echo "$hdr" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-amzn-sagemaker-failurelocation" { print $2 }')
	until curl -fsS -o /dev/null -I "$IB/big/$key" 2>/dev/null; do
		if curl -fsS -o /dev/null -I "$IB/big/${fail#s3://big/}" 2>/dev/null; then
			echo "  request failed: $(curl -fsS "$IB/big/${fail#s3://big/}")" >&2
			exit 1
		fi
		sleep 0.02
	done
	t1=$(now)
	cpu1=$(cpu "$SERVER"); mcpu1=$([[ -n "$MODEL_PID" ]] && cpu "$MODEL_PID" || echo 0)
	touch "$WORK/stop-sampling"
	wait "$SAMPLER" 2>/dev/null || true
	SAMPLER=
	rm -f "$WORK/stop-sampling"
	hwm=$(kb "$SERVER" VmHWM)
	model_hwm=$([[ -n "$MODEL_PID" ]] && kb "$MODEL_PID" VmHWM || echo 0)
	e2e_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
	printf '  end to end:    %6.2f s  %5s MiB/s   %sx cp, %sx cp + sync\n' "$e2e_s" "$(mibs "$e2e_s")" "$(ratio "$cp_s" "$e2e_s")" "$(ratio "$cps_s" "$e2e_s")"
	printf '  CPU during the run: server %.2f s, model process %.2f s\n' "$(sub "$cpu1" "$cpu0")" "$(sub "$mcpu1" "$mcpu0")"
	printf '  server memory during the run: VmHWM %d MiB, VmRSS peak (sampled) %d MiB; model process VmHWM %d MiB\n' \
		$((hwm / 1024)) $(($(cat "$WORK/rss-peak") / 1024)) $((model_hwm / 1024))

	# 6. Check the output.
	got_size=$(curl -fsS -I "$IB/big/$key" | tr -d '\r' | awk -F': ' 'tolower($1) == "content-length" { print $2 }')
	got_sum=$(curl -fsS "$IB/big/$key" | sha256sum | cut -d' ' -f1)
	if [[ "$got_size" != "$WANT_SIZE" || "$got_sum" != "$WANT_SUM" ]]; then
		echo "  output wrong: $got_size bytes sha256 $got_sum, want $WANT_SIZE bytes $WANT_SUM" >&2
		exit 1
	fi
	echo "  output checked: $got_size bytes, sha256 matches"
	curl -fsS -X DELETE "$IB/big/in$r.txt" >/dev/null
	curl -fsS -X DELETE "$IB/big/$key" >/dev/null
done
load
