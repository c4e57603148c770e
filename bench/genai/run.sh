#!/usr/bin/env bash
# Foundation-model benchmark (bench/genai/genaibench):
#   1. time to first token and tokens/s at 1 and 8 concurrent chats, through
#      the OpenAI chat API (streamed, /v1/chat/completions on `inferbox
#      serve`) and through llama.Model.Generate called in-process;
#   2. batch (low-priority) throughput on an otherwise idle pool against the
#      same prompts sent on demand (genai.Service in-process);
#   3. interactive latency alone and beside a batch backlog.
#
#   bash bench/genai/run.sh        (from anywhere; needs go, curl, python3)
#
# Environment: MODEL (../shared/models/stories260K.gguf, else the demo
# examples/llm/model/kjv-tiny.gguf), N (requests per client, 40), MAX_TOKENS
# (128), ROUNDS (of part 1, 1), SLOTS (pool concurrency, 8, as the serve config below), BACKLOG (64).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MODEL=${MODEL:-$REPO/../shared/models/stories260K.gguf}
[[ -f $MODEL ]] || MODEL=$REPO/examples/llm/model/kjv-tiny.gguf
MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
N=${N:-40}
MAX_TOKENS=${MAX_TOKENS:-128}
SLOTS=${SLOTS:-8}
BACKLOG=${BACKLOG:-64}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferbox-genai.XXXXXX")
PID=

cleanup() {
	if [[ -n $PID ]]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

cd "$REPO"
go build -o "$WORK/inferbox" ./cmd/inferbox
go build -o "$WORK/genaibench" ./bench/genai/genaibench
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/config.yaml" <<YAML
log_level: warn
foundation_models:
  - id: meta.bench
    path: $MODEL
    chat_format: raw
genai:
  concurrency: $SLOTS
  max_instances: 1
YAML
"$WORK/inferbox" serve --listen "127.0.0.1:$PORT" --data "$WORK/data" --config "$WORK/config.yaml" \
	>"$WORK/serve.log" 2>&1 &
PID=$!
deadline=$((SECONDS + 30))
until curl -fsS --max-time 1 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
	((SECONDS < deadline)) || { cat "$WORK/serve.log" >&2; exit 1; }
	sleep 0.1
done

echo "model $(basename "$MODEL"), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1. TTFT and tokens/s: OpenAI chat API vs the engine in-process ($MAX_TOKENS tokens, greedy)"
B="$WORK/genaibench"
"$B" -mode http -url "http://127.0.0.1:$PORT" -model-id meta.bench -c 1 -n 3 -max-tokens 8 >/dev/null # warm the instance
for round in $(seq "${ROUNDS:-1}"); do for c in 1 8; do
	n=$((c == 1 ? N : N / 4))
	"$B" -mode direct -model "$MODEL" -c "$c" -n "$n" -max-tokens "$MAX_TOKENS"
	"$B" -mode http -url "http://127.0.0.1:$PORT" -model-id meta.bench -server-pid "$PID" -c "$c" -n "$n" -max-tokens "$MAX_TOKENS"
done; done
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
echo "== 2. batch vs on-demand, $((N * 4)) prompts at once, $SLOTS slots"
"$B" -mode batch -model "$MODEL" -slots "$SLOTS" -n $((N * 4)) -max-tokens "$MAX_TOKENS"
echo "== 3. interactive latency alone and beside $BACKLOG batch generations in flight"
"$B" -mode latency -model "$MODEL" -slots "$SLOTS" -n "$N" -max-tokens "$MAX_TOKENS" -backlog "$BACKLOG"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
