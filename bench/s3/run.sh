#!/usr/bin/env bash
# S3 storage benchmark: upload and download of one object (default 1 GiB)
# through inferbox's S3 API, with the AWS CLI (`aws s3 cp`) and with the Go
# SDK's transfer manager (bench/s3/sdkbench), against `cp` of the same file
# on the same disk. For every transfer it reports wall time, the client's
# CPU time and the server's CPU time (utime+stime from /proc/<pid>/stat),
# and at the end the server's peak resident memory (VmHWM) and largest
# sampled VmRSS. Usage: bench/s3/run.sh [size in MiB]
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
go build -o "$work/sdkbench" ./bench/s3/sdkbench
head -c $((mib << 20)) /dev/urandom >"$work/src.bin"
sync

tick=$(getconf CLK_TCK)
# srvcpu prints the server's CPU seconds so far.
srvcpu() { awk -v t="$tick" '{print ($14 + $15) / t}' "/proc/$pid/stat"; }
# timed runs a command; sets wall and cpu (the command's user+sys, children included).
timed() {
  local out
  out=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null; } 2>&1 | tail -1)
  read -r wall u s <<<"$out"
  cpu=$(echo "$u + $s" | bc)
}
cp_s=$(date +%s.%N); cp "$work/src.bin" "$work/copy.bin"; cp_s=$(echo "$(date +%s.%N) - $cp_s" | bc); rm -f "$work/copy.bin"
cps_s=$(date +%s.%N); cp "$work/src.bin" "$work/copy.bin"; sync; cps_s=$(echo "$(date +%s.%N) - $cps_s" | bc); rm -f "$work/copy.bin"

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

mbps() { echo "scale=1; $mib / $1" | bc; }
ratio() { echo "scale=2; $2 / $1" | bc; }
row() { # name wall client-cpu server-cpu
  printf "%-30s %7.2f s %7.1f MiB/s  %5.2f× cp  client CPU %5.2f s  server CPU %5.2f s\n" "$1" "$2" "$(mbps "$2")" "$(ratio "$2" "$cp_s")" "$3" "$4"
}

echo "object: $mib MiB; machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -r), $(df -T "$work" | awk 'NR==2{print $2}') at ${BENCH_DIR:-/tmp}; $(command aws --version 2>&1); load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-30s %7.2f s %7.1f MiB/s\n" "cp (page cache)" "$cp_s" "$(mbps "$cp_s")"
printf "%-30s %7.2f s %7.1f MiB/s\n" "cp + sync" "$cps_s" "$(mbps "$cps_s")"

s0=$(srvcpu); timed aws s3 cp "$work/src.bin" s3://bench/obj.bin; s1=$(srvcpu)
row "aws s3 cp upload" "$wall" "$cpu" "$(echo "$s1 - $s0" | bc)"
s0=$(srvcpu); timed aws s3 cp s3://bench/obj.bin "$work/down.bin"; s1=$(srvcpu)
row "aws s3 cp download" "$wall" "$cpu" "$(echo "$s1 - $s0" | bc)"
cmp "$work/src.bin" "$work/down.bin"; rm -f "$work/down.bin"

sdk() { "$work/sdkbench" -endpoint "http://127.0.0.1:$port" -bucket bench -key sdk.bin -file "$work/src.bin" -out "$work/down.bin" -phase "$1"; }
s0=$(srvcpu); read -r _ w _ _ c _ < <(sdk up); s1=$(srvcpu)
row "Go SDK manager upload" "$w" "$c" "$(echo "$s1 - $s0" | bc)"
s0=$(srvcpu); read -r _ w _ _ c _ < <(sdk down); s1=$(srvcpu)
row "Go SDK manager download" "$w" "$c" "$(echo "$s1 - $s0" | bc)"
cmp "$work/src.bin" "$work/down.bin"; rm -f "$work/down.bin"

hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
kill "$sampler"; sampler=""
rss=$(sort -n "$work/rss" | tail -1)
echo "server peak RSS: VmHWM $((hwm / 1024)) MiB, largest sampled VmRSS $((rss / 1024)) MiB"
