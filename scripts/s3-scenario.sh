#!/usr/bin/env bash
# The S3 end-to-end scenario: starts inferbox on a free loopback port with a
# fresh data directory, drives its embedded S3 API with the AWS CLI (mb, cp of
# a file over 64 MB both ways, ls, sync, rm --recursive, head-object, ranged
# get-object, error cases), then deploys a model from s3:// and invokes it.
# Prints "ok: <step>" per check and a final "N passed, M failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/inferbox" ./cmd/inferbox || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/inferbox" serve --listen "127.0.0.1:$port" --data "$work/data" --log json >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

export AWS_ACCESS_KEY_ID=inferbox AWS_SECRET_ACCESS_KEY=inferbox AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
aws() { command aws --endpoint-url "http://127.0.0.1:$port" "$@"; }

passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }
check() { local name=$1; shift; if "$@" >"$work/out" 2>&1; then ok "$name"; else fail "$name"; sed 's/^/    /' "$work/out" | tail -5; fi; }

check "mb s3://data" aws s3 mb s3://data

head -c $((70 << 20)) /dev/urandom >"$work/big.bin"
check "cp 70 MB up (multipart)" aws s3 cp --only-show-errors "$work/big.bin" s3://data/big/big.bin
check "cp 70 MB down" aws s3 cp --only-show-errors s3://data/big/big.bin "$work/big.down"
check "downloaded bytes match" cmp "$work/big.bin" "$work/big.down"
check "multipart ETag" bash -c "aws() { command aws --endpoint-url http://127.0.0.1:$port s3api \"\$@\"; }; aws head-object --bucket data --key big/big.bin --query ETag --output text | grep -q -- '-[0-9]*\"\$'"
check "on-disk object is the file" cmp "$work/big.bin" "$work/data/objects/data/big/big.bin"

mkdir -p "$work/dir/sub"
for i in 1 2 3; do echo "row $i" >"$work/dir/f$i.csv"; done
echo nested >"$work/dir/sub/n.txt"
check "sync a directory" aws s3 sync --only-show-errors "$work/dir" s3://data/dir
check "ls lists the synced files" bash -c "command aws --endpoint-url http://127.0.0.1:$port s3 ls s3://data/dir/ | grep -q 'PRE sub/' && command aws --endpoint-url http://127.0.0.1:$port s3 ls --recursive s3://data/dir/ | grep -c csv | grep -qx 3"
check "sync again copies nothing" bash -c "[ -z \"\$(command aws --endpoint-url http://127.0.0.1:$port s3 sync $work/dir s3://data/dir)\" ]"

check "head-object" bash -c "command aws --endpoint-url http://127.0.0.1:$port s3api head-object --bucket data --key dir/f1.csv --query ContentLength --output text | grep -qx 6"
check "ranged get-object" bash -c "command aws --endpoint-url http://127.0.0.1:$port s3api get-object --bucket data --key dir/f2.csv --range bytes=4-4 $work/range.out >/dev/null && [ \"\$(cat $work/range.out)\" = 2 ]"

if aws s3api get-object --bucket data --key no/such/key "$work/x" >"$work/err" 2>&1; then
  fail "missing key fails"
else
  grep -q NoSuchKey "$work/err" && ok "missing key fails with NoSuchKey" || fail "missing key fails with NoSuchKey"
fi
if aws s3 mb s3://Bad_Name >"$work/err" 2>&1; then fail "invalid bucket name refused"; else grep -q InvalidBucketName "$work/err" && ok "invalid bucket name refused" || fail "invalid bucket name refused"; fi
if aws s3 rb s3://data >"$work/err" 2>&1; then fail "non-empty bucket kept"; else grep -q BucketNotEmpty "$work/err" && ok "rb of a non-empty bucket fails with BucketNotEmpty" || fail "rb BucketNotEmpty"; fi

check "rm --recursive" aws s3 rm --recursive s3://data/dir
check "nothing left under dir/" bash -c "[ -z \"\$(command aws --endpoint-url http://127.0.0.1:$port s3 ls --recursive s3://data/dir/)\" ]"

# A model from s3://: the XGBoost example packed as SageMaker packs models.
tar -czf "$work/model.tar.gz" -C examples/xgboost/model xgboost-model
check "upload model.tar.gz" aws s3 cp --only-show-errors "$work/model.tar.gz" s3://data/models/xgb/model.tar.gz
check "create-model from s3://" aws sagemaker create-model --model-name s3-xgb \
  --primary-container Image=xgboost,ModelDataUrl=s3://data/models/xgb/model.tar.gz \
  --execution-role-arn arn:aws:iam::123456789012:role/inferbox
check "create-endpoint-config" aws sagemaker create-endpoint-config --endpoint-config-name s3-xgb \
  --production-variants VariantName=v1,ModelName=s3-xgb,InstanceType=ml.m5.large,InitialInstanceCount=1
check "create-endpoint" aws sagemaker create-endpoint --endpoint-name s3-xgb --endpoint-config-name s3-xgb
check "endpoint in service" aws sagemaker wait endpoint-in-service --endpoint-name s3-xgb
if aws sagemaker-runtime invoke-endpoint --endpoint-name s3-xgb --content-type text/csv \
  --body "fileb://examples/xgboost/sample.csv" "$work/pred.out" >/dev/null 2>"$work/err"; then
  python3 - "$work/pred.out" examples/xgboost/sample.expected <<'PY' && ok "invoke matches sample.expected" || fail "invoke matches sample.expected"
import sys
got = [float(x) for x in open(sys.argv[1]).read().split()]
want = [float(x) for x in open(sys.argv[2]).read().split()]
sys.exit(0 if len(got) == len(want) and all(abs(a - b) < 1e-5 for a, b in zip(got, want)) else 1)
PY
else
  fail "invoke-endpoint"; tail -3 "$work/err"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
