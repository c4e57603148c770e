package cli_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinary builds the real inferbox binary and runs client commands as
// subprocesses against an in-process server: the command line, the exit
// status and the "inferbox: " error prefix as a user sees them.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	bin := filepath.Join(t.TempDir(), "inferbox")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/inferbox")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	url := startServer(t, nil)

	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cmd.Environ(), "INFERBOX_SERVER="+url)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}

	out, errOut, code := run("endpoint", "list")
	if code != 0 || !strings.HasPrefix(out, "NAME   STATUS   VARIANTS   INSTANCES   CREATED\n") {
		t.Errorf("inferbox endpoint list: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut, code = run("endpoint", "describe", "nope")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "inferbox: Could not find endpoint ") {
		t.Errorf("inferbox endpoint describe nope: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
