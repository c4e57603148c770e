#!/usr/bin/env bash
# S3 storage benchmark: upload and download of one object (default 1 GiB)
# through inferbox's S3 API with the AWS CLI, against `cp` of the same file
# on the same disk, and the server's peak resident memory (VmHWM) and
# largest sampled VmRSS. Usage: bench/s3/run.sh [size in MiB]
set -euo pipefail
cd "$(dirname "$0")/../.."
mib=${1:-1024}
work=$(mktemp -d -p "${BENCH_DIR:-/tmp}")
pid="" sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/inferbox" ./cmd/inferbox
head -c $((mib << 20)) /dev/urandom >"$work/src.bin"
sync

secs() { local s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
cp_s=$(secs cp "$work/src.bin" "$work/copy.bin"); rm -f "$work/copy.bin"
cps_s=$(secs bash -c "cp $work/src.bin $work/copy.bin && sync"); rm -f "$work/copy.bin"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/inferbox" serve --listen "127.0.0.1:$port" --data "$work/data" --log json >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
# Sample VmRSS every 100 ms; VmHWM gives the kernel's own peak at the end.
( while kill -0 "$pid" 2>/dev/null; do awk '/VmRSS/{print $2}' /proc/$pid/status 2>/dev/null; sleep 0.1; done ) >"$work/rss" &
sampler=$!

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
aws() { command aws --endpoint-url "http://127.0.0.1:$port" --only-show-errors "$@"; }
command aws --endpoint-url "http://127.0.0.1:$port" s3 mb s3://bench >/dev/null
up_s=$(secs aws s3 cp "$work/src.bin" s3://bench/obj.bin)
down_s=$(secs aws s3 cp s3://bench/obj.bin "$work/down.bin")
cmp "$work/src.bin" "$work/down.bin"
hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
kill "$sampler"; sampler=""
rss=$(sort -n "$work/rss" | tail -1)

mbps() { echo "scale=1; $mib / $1" | bc; }
ratio() { echo "scale=2; $2 / $1" | bc; }
echo "object: $mib MiB; machine: $(nproc) CPUs, $(uname -r), $(df -T "$work" | awk 'NR==2{print $2}') at ${BENCH_DIR:-/tmp}; $(command aws --version 2>&1)"
printf "%-28s %8s s %8s MiB/s\n" "cp (page cache)" "$cp_s" "$(mbps "$cp_s")"
printf "%-28s %8s s %8s MiB/s\n" "cp + sync" "$cps_s" "$(mbps "$cps_s")"
printf "%-28s %8s s %8s MiB/s  %s× cp, %s× cp+sync\n" "aws s3 cp upload" "$up_s" "$(mbps "$up_s")" "$(ratio "$up_s" "$cp_s")" "$(ratio "$up_s" "$cps_s")"
printf "%-28s %8s s %8s MiB/s  %s× cp\n" "aws s3 cp download" "$down_s" "$(mbps "$down_s")" "$(ratio "$down_s" "$cp_s")"
echo "server peak RSS: VmHWM $((hwm / 1024)) MiB, largest sampled VmRSS $((rss / 1024)) MiB"
