#!/usr/bin/env bash
# bedrock-scenario.sh: the foundation-model service end to end with the stock
# AWS CLI (bedrock and bedrock-runtime) and curl (the OpenAI API) against a
# real inferbox server.
#
# It builds inferbox (or uses $INFERBOX_BIN) and starts `inferbox serve` with
# ../shared/models/stories260K.gguf registered three times — as a Meta Llama,
# an Amazon Titan Text and a Mistral model id — then: lists and describes
# the foundation models; InvokeModel with each provider's body (greedy text
# equal across the three); Converse; Bedrock's wording for bad input;
# imports the model as a custom model from the embedded S3 (CreateModelImportJob),
# checks on-demand use is refused, reaches it through a provisioned
# throughput, runs a batch inference job (CreateModelInvocationJob) and reads
# its outputs and manifest from S3; then the OpenAI chat API (plain and SSE)
# and an OpenAI batch through /v1/files and /v1/batches. Every step prints
# `ok: <step>`; the last line is `N passed, M failed`.
#
# Debian's AWS CLI (2.9.19) predates Bedrock. The scenario uses the first
# `aws` on PATH (or $AWS_CLI) whose botocore knows bedrock-runtime Converse,
# and says so and exits 0 when there is none (the Go SDK tests in
# internal/server cover the same APIs).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/inferbox-bedrock.XXXXXX")
SERVER_PID=""
PASSED=0

# Pick a CLI with Bedrock before scenario-lib.sh defaults AWS_CLI.
if [[ -z "${AWS_CLI:-}" ]]; then
	while read -r cli; do
		if "$cli" bedrock-runtime converse help >/dev/null 2>&1; then
			AWS_CLI=$cli
			break
		fi
	done < <(type -ap aws)
fi
if [[ -z "${AWS_CLI:-}" ]]; then
	echo "skipped: no AWS CLI on PATH knows bedrock-runtime (Debian's $(/usr/bin/aws --version 2>&1 | cut -d' ' -f1) predates Bedrock)"
	rm -rf "$WORK"
	exit 0
fi

# shellcheck source=scenario-lib.sh
source "$REPO/scripts/scenario-lib.sh"

MODEL="$REPO/../shared/models/stories260K.gguf"
[[ -f $MODEL ]] || fail "model" "$MODEL is missing (see ../shared/models/README.md)"
br() { aws_ bedrock "$@"; }
brt() { aws_ bedrock-runtime "$@"; }
# json EXPR: evaluate a python expression over $WORK/out parsed as JSON (as j).
json() { "$PYTHON" -c "import json,sys; j=json.load(open(sys.argv[1])); print(($1))" "$WORK/out"; }

scenario_setup
start_server --foundation-model "meta.stories=$MODEL" \
	--foundation-model "amazon.titan-text-stories=$MODEL" \
	--foundation-model "mistral.stories-instruct=$MODEL"
ok "server healthy on $URL ($("$AWS_CLI" --version 2>&1 | cut -d' ' -f1))"

# --- catalog ------------------------------------------------------------------

run "list-foundation-models" br list-foundation-models --output json
[[ $(json "sorted(m['modelId'] for m in j['modelSummaries'])") == "['amazon.titan-text-stories', 'meta.stories', 'mistral.stories-instruct']" ]] ||
	fail "list-foundation-models" "unexpected model ids"
ok "list-foundation-models: three models"
run "get-foundation-model" br get-foundation-model --model-identifier meta.stories --output json
[[ $(json "j['modelDetails']['providerName'], j['modelDetails']['inferenceTypesSupported']") == "('Meta', ['ON_DEMAND', 'PROVISIONED'])" ]] ||
	fail "get-foundation-model" "provider or inference types"
ok "get-foundation-model: Meta, ON_DEMAND and PROVISIONED"

# --- InvokeModel with three providers' bodies, Converse -------------------------

run "invoke-model (Meta)" brt invoke-model --model-id meta.stories \
	--body '{"prompt":"Once upon a time","max_gen_len":24,"temperature":0}' "$WORK/meta.json"
META=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$WORK/meta.json")
[[ $META == ", there was a little girl named Lily."* ]] || fail "invoke-model (Meta)" "generation '$META'"
expect_in "$WORK/meta.json" "invoke-model (Meta)" '"stop_reason":"length"'
ok "invoke-model, Meta body: '$META'"
run "invoke-model (Titan)" brt invoke-model --model-id amazon.titan-text-stories \
	--body '{"inputText":"Once upon a time","textGenerationConfig":{"maxTokenCount":24,"temperature":0}}' "$WORK/titan.json"
[[ $("$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(r["outputText"]+"|"+r["completionReason"])' "$WORK/titan.json") == "$META|LENGTH" ]] ||
	fail "invoke-model (Titan)" "$(cat "$WORK/titan.json")"
ok "invoke-model, Titan body: same text, completionReason LENGTH"
run "invoke-model (Mistral)" brt invoke-model --model-id mistral.stories-instruct \
	--body '{"prompt":"Once upon a time","max_tokens":24,"temperature":0}' "$WORK/mistral.json"
[[ $("$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1]))["outputs"][0]; print(r["text"]+"|"+r["stop_reason"])' "$WORK/mistral.json") == "$META|length" ]] ||
	fail "invoke-model (Mistral)" "$(cat "$WORK/mistral.json")"
ok "invoke-model, Mistral body: same text, stop_reason length"
run "converse" brt converse --model-id meta.stories --output json \
	--messages '[{"role":"user","content":[{"text":"Once upon a time"}]}]' \
	--inference-config maxTokens=12,temperature=0
[[ $(json "j['stopReason'], j['usage']['outputTokens'], j['output']['message']['role'], j['metrics']['latencyMs'] >= 0") == "('max_tokens', 12, 'assistant', True)" ]] ||
	fail "converse" "$(cat "$WORK/out")"
ok "converse: stopReason max_tokens, usage and metrics reported"
run "invoke-model (Titan, stop sequence)" brt invoke-model --model-id amazon.titan-text-stories \
	--body '{"inputText":"Once upon a time","textGenerationConfig":{"maxTokenCount":24,"temperature":0,"stopSequences":["Lily"]}}' "$WORK/titan.json"
[[ $("$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print(r["outputText"]+"|"+r["completionReason"])' "$WORK/titan.json") == ", there was a little girl named |STOP_CRITERIA_MET" ]] ||
	fail "invoke-model (Titan, stop sequence)" "$(cat "$WORK/titan.json")"
ok "invoke-model, Titan stopSequences: cut before the stop sequence, STOP_CRITERIA_MET"

run_fails "extraneous key" brt invoke-model --model-id amazon.titan-text-stories --body '{"inputText":"x","foo":1}' "$WORK/x.json"
expect_in "$WORK/err" "extraneous key" "ValidationException"
expect_in "$WORK/err" "extraneous key" "Malformed input request: #: extraneous key [foo] is not permitted"
ok "invoke-model with an unknown field: ValidationException, Bedrock's wording"
run_fails "temperature out of range" brt converse --model-id meta.stories \
	--messages '[{"role":"user","content":[{"text":"hi"}]}]' --inference-config temperature=3
expect_in "$WORK/err" "temperature out of range" "ValidationException"
run_fails "unknown model" brt converse --model-id meta.nope --messages '[{"role":"user","content":[{"text":"hi"}]}]'
expect_in "$WORK/err" "unknown model" "(ValidationException) when calling the Converse operation: The provided model identifier is invalid."
ok "converse: out-of-range temperature and unknown model refused"

# --- custom model import, provisioned throughput --------------------------------

run "s3 mb" aws_ s3 mb s3://models
run "s3 cp model" aws_ s3 cp "$MODEL" s3://models/stories/model.gguf
run "create-model-import-job" br create-model-import-job --job-name import-1 --imported-model-name my-stories \
	--role-arn arn:aws:iam::123456789012:role/inferbox --model-data-source s3DataSource={s3Uri=s3://models/stories/}
for _ in $(seq 100); do
	run "get-model-import-job" br get-model-import-job --job-identifier import-1 --output json
	status=$(json "j['status']")
	[[ $status == InProgress ]] || break
	sleep 0.1
done
[[ $status == Completed ]] || fail "get-model-import-job" "status $status"
IMPORTED=$(json "j['importedModelArn']")
ok "create-model-import-job from s3://: Completed ($IMPORTED)"
run_fails "custom model on demand" brt converse --model-id "$IMPORTED" --messages '[{"role":"user","content":[{"text":"hi"}]}]'
expect_in "$WORK/err" "custom model on demand" "The provided model doesn't support on-demand throughput."
ok "converse on the imported model directly: ValidationException"
run "create-provisioned-model-throughput" br create-provisioned-model-throughput --model-units 1 \
	--provisioned-model-name pt-stories --model-id "$IMPORTED" --output json
PT=$(json "j['provisionedModelArn']")
for _ in $(seq 100); do
	run "get-provisioned-model-throughput" br get-provisioned-model-throughput --provisioned-model-id "$PT" --output json
	status=$(json "j['status']")
	[[ $status == Creating ]] || break
	sleep 0.1
done
[[ $status == InService ]] || fail "provisioned throughput" "status $status"
run "converse through the provisioned throughput" brt converse --model-id "$PT" --output json \
	--messages '[{"role":"user","content":[{"text":"Once upon a time"}]}]' --inference-config maxTokens=12,temperature=0
PTTEXT=$(json "j['output']['message']['content'][0]['text']")
run "converse on the foundation model" brt converse --model-id meta.stories --output json \
	--messages '[{"role":"user","content":[{"text":"Once upon a time"}]}]' --inference-config maxTokens=12,temperature=0
[[ $(json "j['output']['message']['content'][0]['text']") == "$PTTEXT" ]] || fail "converse through the provisioned throughput" "'$PTTEXT' differs from the foundation model's"
ok "provisioned throughput on the imported model: InService, same greedy text as the foundation model"
run_fails "delete-imported-model in use" br delete-imported-model --model-identifier my-stories
ok "delete-imported-model refused while a provisioned throughput uses it"
run "delete-provisioned-model-throughput" br delete-provisioned-model-throughput --provisioned-model-id "$PT"
run "delete-imported-model" br delete-imported-model --model-identifier my-stories
ok "delete-provisioned-model-throughput, then delete-imported-model"

# --- batch inference ------------------------------------------------------------

{
	for i in 1 2 3; do
		printf '{"recordId":"r%d","modelInput":{"prompt":"Once upon a time","max_gen_len":24,"temperature":0}}\n' "$i"
	done
	echo '{"recordId":"bad","modelInput":"not an object"}'
} >"$WORK/records.jsonl"
run "s3 cp records" aws_ s3 cp "$WORK/records.jsonl" s3://models/batch-in/records.jsonl
run "create-model-invocation-job" br create-model-invocation-job --job-name batch-1 --model-id meta.stories \
	--role-arn arn:aws:iam::123456789012:role/inferbox --output json \
	--input-data-config s3InputDataConfig={s3Uri=s3://models/batch-in/} \
	--output-data-config s3OutputDataConfig={s3Uri=s3://models/batch-out/}
JOB=$(json "j['jobArn']")
for _ in $(seq 300); do
	run "get-model-invocation-job" br get-model-invocation-job --job-identifier "$JOB" --output json
	status=$(json "j['status']")
	case $status in Submitted | Validating | Scheduled | InProgress) sleep 0.1 ;; *) break ;; esac
done
# A record that fails is counted, not a reason to stop: Completed
# (PartiallyCompleted means the timeout ran out).
[[ $status == Completed && $(json "j['successRecordCount'], j['errorRecordCount']") == "(3, 1)" ]] ||
	fail "get-model-invocation-job" "status $status, want Completed with 3 successes and 1 error"
ok "create-model-invocation-job: Completed, 3 records and a malformed one counted"
run "s3 cp outputs" aws_ s3 cp --recursive s3://models/batch-out/ "$WORK/batch-out"
OUT=$(find "$WORK/batch-out" -name 'records.jsonl.out')
MANIFEST=$(find "$WORK/batch-out" -name 'manifest.json.out')
[[ -n $OUT && -n $MANIFEST ]] || fail "batch outputs" "$(find "$WORK/batch-out" -type f)"
[[ $("$PYTHON" -c '
import json,sys
rows=[json.loads(l) for l in open(sys.argv[1])]
ok=[r["modelOutput"]["generation"] for r in rows if "modelOutput" in r]
bad=[r["recordId"] for r in rows if "error" in r]
print(len(ok), len(set(ok)), ok[0]==sys.argv[2], bad)' "$OUT" "$META") == "3 1 True ['bad']" ]] ||
	fail "batch outputs" "$(cat "$OUT")"
expect_in "$MANIFEST" "manifest" '"errorRecordCount":1'
ok "batch outputs: three generations equal to InvokeModel's, the bad record's error, manifest counts"

# --- OpenAI API -----------------------------------------------------------------

oai() { curl -sS --fail-with-body -H 'Content-Type: application/json' "$@"; }
run "chat completion" oai "$URL/v1/chat/completions" \
	-d '{"model":"meta.stories","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":12,"temperature":0}'
[[ $(json "j['object'], j['choices'][0]['finish_reason'], j['usage']['completion_tokens']") == "('chat.completion', 'length', 12)" ]] ||
	fail "chat completion" "$(cat "$WORK/out")"
ok "/v1/chat/completions: 12 tokens, finish_reason length"
run "chat completion (SSE)" oai -N "$URL/v1/chat/completions" \
	-d '{"model":"meta.stories","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":12,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}'
[[ $(tail -n 2 "$WORK/out" | head -n 1) == "data: [DONE]" ]] || fail "chat completion (SSE)" "no data: [DONE]"
expect_in "$WORK/out" "chat completion (SSE)" '"completion_tokens":12'
ok "/v1/chat/completions streamed: chunks, usage, data: [DONE]"
for i in 1 2; do
	printf '{"custom_id":"c%d","method":"POST","url":"/v1/chat/completions","body":{"model":"meta.stories","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":8,"temperature":0}}\n' "$i"
done >"$WORK/oai.jsonl"
run "upload file" curl -sS --fail-with-body "$URL/v1/files" -F purpose=batch -F "file=@$WORK/oai.jsonl"
FILE=$(json "j['id']")
run "create batch" oai "$URL/v1/batches" -d "{\"input_file_id\":\"$FILE\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}"
BATCH=$(json "j['id']")
for _ in $(seq 300); do
	run "get batch" oai "$URL/v1/batches/$BATCH"
	status=$(json "j['status']")
	case $status in validating | in_progress | finalizing) sleep 0.1 ;; *) break ;; esac
done
[[ $status == completed ]] || fail "get batch" "status $status"
[[ $(json "sorted(j['request_counts'].items())") == "[('completed', 2), ('failed', 0), ('total', 2)]" ]] || fail "batch counts" "$(cat "$WORK/out")"
run "batch output" oai "$URL/v1/files/$(json "j['output_file_id']")/content"
[[ $(grep -c '"status_code":200' "$WORK/out") == 2 ]] || fail "batch output" "$(cat "$WORK/out")"
ok "/v1/files and /v1/batches: completed, 2 of 2, output file with two 200 responses"

echo "$PASSED passed, 0 failed"
