package process

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/runtime"
)

func TestHealthCount(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold int
		checks    string // p = pass, f = fail
		want      string // u where observe reports unhealthy, . otherwise
	}{
		{"all pass", 3, "pppp", "...."},
		{"threshold failures in a row", 3, "fff", "..u"},
		{"a pass resets the count", 3, "ffpfffp", ".....u."},
		{"failures apart never add up", 2, "fpfpfpf", "......."},
		{"threshold 1", 1, "pfp", ".u."},
		{"stays unhealthy while failing", 2, "ffff", ".uuu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := healthCount{threshold: tc.threshold}
			var got strings.Builder
			for _, c := range tc.checks {
				if h.observe(c == 'p') {
					got.WriteByte('u')
				} else {
					got.WriteByte('.')
				}
			}
			if got.String() != tc.want {
				t.Errorf("checks %s: got %s, want %s", tc.checks, got.String(), tc.want)
			}
		})
	}
}

type count struct{ n atomic.Int64 }

func (c *count) Inc() { c.n.Add(1) }

// fastHealth checks often with short timeouts, so tests finish quickly.
func fastHealth(replaced *count) *Loader {
	return &Loader{
		RestartBackoff:     10 * time.Millisecond,
		HealthInterval:     50 * time.Millisecond,
		HealthTimeout:      500 * time.Millisecond,
		UnhealthyThreshold: 2,
		Unhealthy:          replaced,
	}
}

// TestHealthHungServerIsReplaced freezes the server with SIGSTOP: it exists but
// answers nothing. The request in flight fails with a ModelError, the
// frozen process is killed, and a new one serves.
func TestHealthHungServerIsReplaced(t *testing.T) {
	replaced := &count{}
	m, logs := start(t, fastHealth(replaced), runtime.Spec{})
	pid := report(t, m, &runtime.Request{}).Pid
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // if the test fails before the kill

	held, err := invoke(t, m, "mode=hold", nil)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(held.Body).ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("held request: %q, %v", line, err)
	}
	if !m.Ready() {
		t.Fatal("Ready() = false before the freeze")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	// The request in flight ends with a ModelError saying why, not at its
	// own (30 s) timeout.
	_, err = io.ReadAll(held.Body)
	held.Body.Close()
	var me *runtime.ModelError
	if !errors.As(err, &me) || me.StatusCode != 0 || !strings.Contains(me.Message, "health checks in a row") {
		t.Fatalf("held request: err = %v, want a ModelError naming the failed health checks", err)
	}
	waitFor(t, func() bool { return pidGone(pid) })

	resp, err := invoke(t, m, "mode=echo", []byte("again"))
	if err != nil {
		t.Fatalf("invoke after the replacement: %v", err)
	}
	if got := readAll(t, resp); got != "again" {
		t.Errorf("echo = %q", got)
	}
	if newPid := report(t, m, &runtime.Request{}).Pid; newPid == pid {
		t.Errorf("pid after the replacement = %d, the frozen one", newPid)
	}
	if got := replaced.n.Load(); got != 1 {
		t.Errorf("Unhealthy counted %d replacements, want 1", got)
	}
	if m.Restarts() < 1 {
		t.Errorf("Restarts() = %d, want at least 1", m.Restarts())
	}
	if !strings.Contains(logs.String(), "model server is unhealthy; replacing it") {
		t.Errorf("replacement not logged")
	}
}

// TestHealthFailingPingIsReplacedAndSuccessorWaitsForPing makes /ping answer 503
// (the gate file is removed) while the process keeps running: a non-200
// answer is a failed check too. The successor is not used until its own
// /ping passes.
func TestHealthFailingPingIsReplacedAndSuccessorWaitsForPing(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	replaced := &count{}
	m, _ := start(t, fastHealth(replaced), runtime.Spec{Environment: map[string]string{"TEST_START_GATE": gate}})
	pid := report(t, m, &runtime.Request{}).Pid

	if err := os.Remove(gate); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return replaced.n.Load() == 1 })
	waitFor(t, func() bool { return pidGone(pid) })
	if m.Ready() {
		t.Fatal("Ready() = true while the successor fails /ping")
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m.Ready)
	if newPid := report(t, m, &runtime.Request{}).Pid; newPid == pid {
		t.Errorf("pid after the replacement = %d, the old one", newPid)
	}
	if got := replaced.n.Load(); got != 1 {
		t.Errorf("Unhealthy counted %d replacements, want 1", got)
	}
}

func TestReadyFalseAfterClose(t *testing.T) {
	m, err := (&Loader{BaseDir: t.TempDir()}).Start(t.Context(), runtime.Spec{Command: fixture(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Ready() {
		t.Error("Ready() = false after Start")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.Ready() {
		t.Error("Ready() = true after Close")
	}
}
