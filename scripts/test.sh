#!/usr/bin/env bash
# The README's test command: sets up what the tests need on a fresh Debian
# machine (as root), then runs every check CI runs:
#   gofmt, go vet, staticcheck, go mod tidy diff, go test -race ./...,
#   and the AWS CLI end-to-end scenarios (SageMaker hosting, S3, batch
#   transform, and Bedrock + OpenAI when an installed CLI knows Bedrock).
# Set SKIP_SETUP=1 to skip the apt-get step.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive: the AWS CLI, boto3, XGBoost (parity
# reference), scikit-learn (its datasets train the test models).
pkgs=(awscli python3-boto3 python3-xgboost xgboost python3-sklearn)
if [ "${SKIP_SETUP:-0}" != 1 ]; then
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

echo "== go mod download"
go mod download

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go mod tidy"
go mod tidy -diff

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

# The kernels' fallbacks: pure Go (what CPUs without AVX2 and other
# architectures run), and an x86-64-v3 build, where the compiler may fuse
# multiply-adds in the Go reference code the assembly must match bit for bit.
echo "== go test -tags purego, GOAMD64=v3 (LLM kernels)"
go vet -tags purego ./internal/gguf/ ./internal/runtime/llama/
GOARCH=arm64 go vet ./internal/gguf/ ./internal/runtime/llama/
go test -count=1 -tags purego ./internal/gguf/ ./internal/runtime/llama/
GOAMD64=v3 go test -count=1 ./internal/gguf/ ./internal/runtime/llama/

echo "== AWS CLI scenario: SageMaker hosting"
bash scripts/aws-cli-scenario.sh

echo "== AWS CLI scenario: S3"
bash scripts/s3-scenario.sh

echo "== AWS CLI scenario: batch transform"
bash scripts/transform-scenario.sh

echo "== AWS CLI scenario: Bedrock and the OpenAI API"
bash scripts/bedrock-scenario.sh
