package process

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/runtime"
)

const python = "/usr/bin/python3"

// logBuffer collects log output from the runtime and its children.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func fixture(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not available: %v", python, err)
	}
	abs, err := filepath.Abs("testdata/server.py")
	if err != nil {
		t.Fatal(err)
	}
	return []string{python, abs}
}

// start loads the fixture with env and closes it when the test ends.
func start(t *testing.T, l *Loader, spec runtime.Spec) (*Model, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	if spec.Command == nil {
		spec.Command = fixture(t)
	}
	spec.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if l.BaseDir == "" {
		l.BaseDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := l.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start: %v\nlogs:\n%s", err, logs)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
	return m, logs
}

func invoke(t *testing.T, m *Model, attrs string, body []byte) (*runtime.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return m.Invoke(ctx, &runtime.Request{
		ContentType:      "text/csv",
		Accept:           "application/json",
		Body:             bytes.NewReader(body),
		Size:             int64(len(body)),
		CustomAttributes: attrs,
		InferenceID:      "inf-1",
	})
}

func readAll(t *testing.T, r *runtime.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

type envReport struct {
	Env     map[string]*string `json:"env"`
	Argv    []string           `json:"argv"`
	Pid     int                `json:"pid"`
	Cwd     string             `json:"cwd"`
	Weights string             `json:"weights"`
	Headers map[string]*string `json:"headers"`
}

func report(t *testing.T, m *Model, req *runtime.Request) envReport {
	t.Helper()
	req.CustomAttributes = "mode=env"
	resp, err := m.Invoke(context.Background(), req)
	if err != nil {
		t.Fatalf("Invoke(mode=env): %v", err)
	}
	var rep envReport
	if err := json.Unmarshal([]byte(readAll(t, resp)), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func str(p *string) string {
	if p == nil {
		return "<unset>"
	}
	return *p
}

func TestInvokeEcho(t *testing.T) {
	m, _ := start(t, &Loader{}, runtime.Spec{})
	resp, err := invoke(t, m, "", []byte("1,2,3"))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "1,2,3" {
		t.Errorf("body = %q, want 1,2,3", got)
	}
	if resp.ContentType != "text/csv" || resp.CustomAttributes != "echoed=5" {
		t.Errorf("ContentType, CustomAttributes = %q, %q; want text/csv, echoed=5", resp.ContentType, resp.CustomAttributes)
	}
	// An empty body is a valid request.
	resp, err = m.Invoke(context.Background(), &runtime.Request{Size: 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "" || resp.CustomAttributes != "echoed=0" {
		t.Errorf("empty request: body %q attrs %q", got, resp.CustomAttributes)
	}
}

func TestEnvironmentAndModelDir(t *testing.T) {
	modelDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(modelDir, "weights.txt"), []byte("w=42"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECRET_FROM_PARENT", "must-not-leak")
	m, logs := start(t, &Loader{}, runtime.Spec{
		ModelDir:    modelDir,
		Threads:     3,
		Environment: map[string]string{"MY_VAR": "hello", "SAGEMAKER_BIND_TO_PORT": "1"},
	})
	rep := report(t, m, &runtime.Request{ContentType: "application/json", Accept: "text/csv",
		InferenceID: "abc-123", Body: strings.NewReader("{}"), Size: 2})

	if len(rep.Argv) != 1 || rep.Argv[0] != "serve" {
		t.Errorf("argv = %q, want [serve]", rep.Argv)
	}
	if rep.Weights != "w=42" {
		t.Errorf("model file through SAGEMAKER_BASE_DIR/model: %q", rep.Weights)
	}
	base := str(rep.Env["SAGEMAKER_BASE_DIR"])
	if rep.Cwd != base || base != m.base {
		t.Errorf("cwd %q, SAGEMAKER_BASE_DIR %q, want both %q", rep.Cwd, base, m.base)
	}
	if got := str(rep.Env["SM_MODEL_DIR"]); got != modelDir {
		t.Errorf("SM_MODEL_DIR = %q, want %q", got, modelDir)
	}
	port, err := strconv.Atoi(str(rep.Env["SAGEMAKER_BIND_TO_PORT"]))
	if err != nil || port <= 1 || !strings.HasSuffix(m.cur.baseURL, ":"+strconv.Itoa(port)) {
		t.Errorf("SAGEMAKER_BIND_TO_PORT = %q, runtime talks to %s", str(rep.Env["SAGEMAKER_BIND_TO_PORT"]), m.cur.baseURL)
	}
	want := map[string]string{"MY_VAR": "hello", "OMP_NUM_THREADS": "3", "SECRET_FROM_PARENT": "<unset>",
		"PATH": os.Getenv("PATH"), "SAGEMAKER_SAFE_PORT_RANGE": strconv.Itoa(port+1) + "-" + strconv.Itoa(port+10)}
	for k, v := range want {
		if got := str(rep.Env[k]); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	wantHeaders := map[string]string{"Content-Type": "application/json", "Accept": "text/csv",
		"X-Amzn-SageMaker-Custom-Attributes": "mode=env", "X-Amzn-SageMaker-Inference-Id": "abc-123",
		"Content-Length": "2", "Transfer-Encoding": "<unset>"}
	for k, v := range wantHeaders {
		if got := str(rep.Headers[k]); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}

	// Unknown size: the body goes chunked.
	rep = report(t, m, &runtime.Request{Body: strings.NewReader("{}"), Size: -1})
	if got := str(rep.Headers["Transfer-Encoding"]); got != "chunked" {
		t.Errorf("Transfer-Encoding with Size -1 = %q, want chunked", got)
	}

	l := logs.String()
	if !strings.Contains(l, "component=process") || !strings.Contains(l, "pid="+strconv.Itoa(m.cur.pid)) ||
		!strings.Contains(l, "fixture: listening on") {
		t.Errorf("logs lack component, pid or the child's output:\n%s", l)
	}
}

func TestResponseStreams(t *testing.T) {
	m, _ := start(t, &Loader{}, runtime.Spec{})
	gate := filepath.Join(t.TempDir(), "gate")
	resp, err := invoke(t, m, "mode=stream;chunks=3;gate="+gate, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		if i > 0 {
			// The server sends chunk i only once this file exists, so
			// having read chunk i-1 proves it arrived on its own.
			if err := os.WriteFile(gate+"."+strconv.Itoa(i), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		line, err := br.ReadString('\n')
		if err != nil || line != "chunk "+strconv.Itoa(i)+"\n" {
			t.Fatalf("line %d = %q, %v", i, line, err)
		}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the last chunk: %q, %v", rest, err)
	}
}

func TestRequestStreams(t *testing.T) {
	m, _ := start(t, &Loader{}, runtime.Spec{})
	pr, pw := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := m.Invoke(ctx, &runtime.Request{Body: pr, Size: -1, CustomAttributes: "mode=duplex"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for _, word := range []string{"alpha", "beta", "gamma"} {
		// The answer to each line is read before the next line is written:
		// the request body is not buffered until it ends.
		if _, err := io.WriteString(pw, word+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil || line != "got:"+word+"\n" {
			t.Fatalf("answer = %q, %v; want got:%s", line, err, word)
		}
	}
	pw.Close()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the request ended: %q, %v", rest, err)
	}
}

func TestNon2xxIsModelError(t *testing.T) {
	m, _ := start(t, &Loader{}, runtime.Spec{})
	for _, code := range []int{400, 415, 500, 503} {
		_, err := invoke(t, m, "mode=status;code="+strconv.Itoa(code), []byte("x"))
		var me *runtime.ModelError
		if !errors.As(err, &me) || me.StatusCode != code || !strings.Contains(me.Message, "fixture failure "+strconv.Itoa(code)) {
			t.Errorf("code %d: err = %v", code, err)
		}
	}
	_, err := invoke(t, m, "mode=status;code=400;pad=100000", []byte("x"))
	var me *runtime.ModelError
	if !errors.As(err, &me) || len(me.Message) > maxErrorBody {
		t.Errorf("long error body: %v (message %d bytes)", err, len(me.Message))
	}
	// The connection is still usable after errors.
	resp, err := invoke(t, m, "", []byte("ok"))
	if err != nil || readAll(t, resp) != "ok" {
		t.Errorf("echo after errors: %v", err)
	}
}

func TestCrashFailsOnlyInFlightAndRestarts(t *testing.T) {
	m, logs := start(t, &Loader{RestartBackoff: 10 * time.Millisecond}, runtime.Spec{})
	pid := report(t, m, &runtime.Request{}).Pid

	// Requests in flight: each has its headers and first chunk back.
	const inFlight = 4
	held := make([]*runtime.Response, inFlight)
	for i := range held {
		resp, err := invoke(t, m, "mode=hold", nil)
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "held\n" {
			t.Fatalf("held request %d: %q, %v", i, line, err)
		}
		held[i] = resp
	}
	_, err := invoke(t, m, "mode=crash", []byte("x"))
	var me *runtime.ModelError
	if !errors.As(err, &me) || me.StatusCode != 0 {
		t.Fatalf("crashing request: err = %v, want ModelError with status 0", err)
	}
	for i, resp := range held {
		_, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !errors.As(err, &me) || me.StatusCode != 0 {
			t.Errorf("held request %d: err = %v, want ModelError", i, err)
		}
	}
	// The next requests wait for the restart and succeed.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp, err := invoke(t, m, "", []byte("after"))
			if err != nil {
				t.Errorf("invoke after crash: %v", err)
				return
			}
			if got := readAll(t, resp); got != "after" {
				t.Errorf("after crash: body %q", got)
			}
		})
	}
	wg.Wait()
	if got := m.Restarts(); got != 1 {
		t.Errorf("Restarts() = %d, want 1", got)
	}
	if newPid := report(t, m, &runtime.Request{}).Pid; newPid == pid {
		t.Errorf("pid after restart = %d, same as before", newPid)
	}
	if !strings.Contains(logs.String(), "fixture: crashing on purpose") {
		t.Errorf("child's stderr not logged")
	}
}

func TestStartFailures(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		command []string
		want    []string
	}{
		{"exits early", map[string]string{"TEST_EXIT_AT_START": "3"}, nil,
			[]string{"exited before it answered GET /ping", "exit status 3", "cannot load model (on purpose)", "fixture: starting"}},
		{"never healthy", map[string]string{"TEST_PING_STATUS": "503"}, nil,
			[]string{"no 200 answer to GET /ping within 1s", "status 503", "fixture: listening on"}},
		{"no such program", nil, []string{"/nonexistent/serve"}, []string{"/nonexistent/serve"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.command
			if cmd == nil {
				cmd = fixture(t)
			}
			base := t.TempDir()
			l := &Loader{BaseDir: base}
			_, err := l.Start(context.Background(), runtime.Spec{Command: cmd, Environment: tc.env, StartupTimeout: time.Second})
			if err == nil {
				t.Fatal("Start succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if left, _ := os.ReadDir(base); len(left) != 0 {
				t.Errorf("base directory left behind: %v", left)
			}
		})
	}
}

func TestWaitsForSlowStart(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	type result struct {
		m   *Model
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := (&Loader{BaseDir: t.TempDir()}).Start(context.Background(), runtime.Spec{
			Command: fixture(t), Environment: map[string]string{"TEST_START_GATE": gate}})
		done <- result{m, err}
	}()
	waitFor(t, func() bool { _, err := os.Stat(gate + ".waiting"); return err == nil })
	select {
	case r := <-done:
		t.Fatalf("Start returned while /ping answered 503: %v", r.err)
	default:
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := r.m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseKillsProcessGroup(t *testing.T) {
	for _, ignoreTerm := range []bool{false, true} {
		t.Run("ignore SIGTERM "+strconv.FormatBool(ignoreTerm), func(t *testing.T) {
			env := map[string]string{"TEST_SPAWN_CHILD": "1"}
			if ignoreTerm {
				env["TEST_IGNORE_SIGTERM"] = "1"
			}
			l := &Loader{BaseDir: t.TempDir(), StopTimeout: 200 * time.Millisecond}
			m, err := l.Start(context.Background(), runtime.Spec{Command: fixture(t), Environment: env})
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(m.base, "grandchild.pid"))
			if err != nil {
				t.Fatal(err)
			}
			grandchild, _ := strconv.Atoi(string(b))
			leader := m.cur.pid
			if pidGone(leader) || pidGone(grandchild) {
				t.Fatalf("processes %d, %d not running before Close", leader, grandchild)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if !pidGone(leader) {
				t.Errorf("server %d still running after Close", leader)
			}
			// The grandchild is reparented and reaped by someone else; wait for it.
			waitFor(t, func() bool { return pidGone(grandchild) })
			if err := m.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := os.Stat(m.base); !os.IsNotExist(err) {
				t.Errorf("base directory not removed: %v", err)
			}
			if _, err := m.Invoke(context.Background(), &runtime.Request{}); !errors.Is(err, errClosed) {
				t.Errorf("Invoke after Close: %v", err)
			}
		})
	}
}

func TestExecutionParameters(t *testing.T) {
	m, _ := start(t, &Loader{}, runtime.Spec{})
	p, ok, err := m.ExecutionParameters(context.Background())
	want := ExecutionParameters{MaxConcurrentTransforms: 3, BatchStrategy: "MULTI_RECORD", MaxPayloadInMB: 5}
	if err != nil || !ok || p != want {
		t.Errorf("ExecutionParameters = %+v, %v, %v; want %+v", p, ok, err, want)
	}
}

// pidGone reports whether pid no longer runs (absent, or a zombie).
func pidGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// Format: pid (comm) state ...; comm may contain spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRestartRetriesUntilTheServerStarts(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "broken")
	m, _ := start(t, &Loader{RestartBackoff: 5 * time.Millisecond, MaxRestartBackoff: 20 * time.Millisecond},
		runtime.Spec{Environment: map[string]string{"TEST_FAIL_START_IF": flag}})
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := invoke(t, m, "mode=crash", nil); err == nil {
		t.Fatal("crash request succeeded")
	}
	// Every restart now exits at once; the supervisor keeps trying.
	waitFor(t, func() bool { return m.Restarts() >= 3 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Invoke(ctx, &runtime.Request{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Invoke while restarting, with a cancelled context: %v", err)
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	resp, err := invoke(t, m, "", []byte("back"))
	if err != nil {
		t.Fatalf("Invoke after the server can start again: %v", err)
	}
	if got := readAll(t, resp); got != "back" {
		t.Errorf("body = %q", got)
	}
}

func TestStartCancelled(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	base := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := (&Loader{BaseDir: base}).Start(ctx, runtime.Spec{
			Command: fixture(t), Environment: map[string]string{"TEST_START_GATE": gate}})
		done <- err
	}()
	waitFor(t, func() bool { _, err := os.Stat(gate + ".waiting"); return err == nil })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Start = %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(base); len(left) != 0 {
		t.Errorf("base directory left behind: %v", left)
	}
}

func TestCloseDoesNotWaitForEscapedOutput(t *testing.T) {
	// A process outside the group keeps stdout open after the server dies.
	dir := t.TempDir()
	script, pidFile := filepath.Join(dir, "serve.sh"), filepath.Join(dir, "sleeper.pid")
	body := "#!/bin/sh\nsetsid /bin/sleep 30 &\necho $! > " + pidFile + "\nexec " + python + " " + fixture(t)[1] + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	m, _ := start(t, &Loader{StopTimeout: 100 * time.Millisecond}, runtime.Spec{Command: []string{script}})
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOverMemoryIsStoppedAndRestarted(t *testing.T) {
	m, _ := start(t, &Loader{RestartBackoff: 10 * time.Millisecond}, runtime.Spec{MemoryBytes: 64 << 20})
	_, err := invoke(t, m, "mode=alloc;mb=200", nil)
	var me *runtime.ModelError
	if !errors.As(err, &me) || !strings.Contains(me.Message, "more than its memory size of 64 MB") {
		t.Fatalf("over-memory request: %v, want a ModelError naming the memory size", err)
	}
	// The server is replaced; the next request succeeds.
	resp, err := invoke(t, m, "mode=echo", []byte("after"))
	if err != nil {
		t.Fatalf("request after the restart: %v", err)
	}
	if got := readAll(t, resp); got != "after" {
		t.Fatalf("echo = %q", got)
	}
	if m.Restarts() < 1 {
		t.Fatalf("Restarts = %d, want the server replaced", m.Restarts())
	}
}
