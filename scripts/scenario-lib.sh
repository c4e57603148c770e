# scenario-lib.sh: what the AWS CLI scenarios share — picking the CLI and
# python, cleanup of the server and work directory, step reporting (ok/fail
# with the `N passed, M failed` closing line) and assertions. Source it after
# setting REPO, WORK, SERVER_PID="" and PASSED=0.

if [[ -z "${AWS_CLI:-}" ]]; then
	if [[ -x /usr/bin/aws ]]; then AWS_CLI=/usr/bin/aws; else AWS_CLI=aws; fi
fi
PYTHON=${PYTHON:-/usr/bin/python3}

cleanup() {
	if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

ok() {
	PASSED=$((PASSED + 1))
	echo "ok: $1"
}

# fail STEP WHY: report, show what the step printed and the server log, exit.
fail() {
	echo "FAIL: $1: $2"
	for f in "$WORK/out" "$WORK/err"; do
		if [[ -s "$f" ]]; then
			echo "--- ${f##*/} ---"
			tail -n 20 "$f"
		fi
	done
	echo "--- server log (tail) ---"
	tail -n 40 "$WORK/server.log" 2>/dev/null || true
	echo "$PASSED passed, 1 failed"
	exit 1
}

# run STEP CMD...: run a command, its stdout in $WORK/out and stderr in
# $WORK/err; a non-zero exit fails the step.
run() {
	local step=$1
	shift
	local rc=0
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	((rc == 0)) || fail "$step" "exit $rc from: $*"
}

# run_fails STEP CMD...: the command must exit non-zero.
run_fails() {
	local step=$1
	shift
	if "$@" >"$WORK/out" 2>"$WORK/err"; then
		fail "$step" "expected a non-zero exit from: $*"
	fi
}

# expect STEP WANT: $WORK/out (trimmed) must equal WANT.
expect() {
	local got
	got=$(tr -d '\r' <"$WORK/out" | sed -e 's/[[:space:]]*$//')
	[[ "$got" == "$2" ]] || fail "$1" "got '$got', want '$2'"
}

# expect_in FILE STEP TEXT: FILE must contain TEXT.
expect_in() {
	grep -qF -- "$3" "$1" || fail "$2" "${1##*/} lacks '$3'"
}

aws_() { "$AWS_CLI" --endpoint-url "$URL" "$@"; }
sm() { aws_ sagemaker "$@"; }

free_port() {
	"$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# scenario_setup builds inferbox (unless INFERBOX_BIN names one) and points
# the AWS CLI at dummy credentials and configuration in $WORK.
scenario_setup() {
	if [[ -z "${INFERBOX_BIN:-}" ]]; then
		INFERBOX_BIN="$WORK/inferbox"
		(cd "$REPO" && go build -o "$INFERBOX_BIN" ./cmd/inferbox) || fail "build" "go build failed"
		ok "build inferbox"
	fi
	export AWS_ACCESS_KEY_ID=AKIAINFERBOXTEST AWS_SECRET_ACCESS_KEY=inferbox-test-secret
	export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_PAGER=""
	export AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
	unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL 2>/dev/null || true
}

# start_server ARGS...: start `inferbox serve` on a free loopback port with
# $WORK/data and ARGS, wait for /healthz, set URL and SERVER_PID (a port
# taken between free_port and bind is retried).
start_server() {
	local attempt deadline
	for attempt in 1 2 3; do
		PORT=$(free_port)
		URL="http://127.0.0.1:$PORT"
		"$INFERBOX_BIN" serve --listen "127.0.0.1:$PORT" --data "$WORK/data" --log text "$@" >"$WORK/server.log" 2>&1 &
		SERVER_PID=$!
		deadline=$((SECONDS + 20))
		while ((SECONDS < deadline)) && kill -0 "$SERVER_PID" 2>/dev/null; do
			if curl -fsS --max-time 1 "$URL/healthz" >/dev/null 2>&1; then return 0; fi
			sleep 0.1
		done
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=""
	done
	fail "start server" "no /healthz answer (attempt $attempt)"
}
