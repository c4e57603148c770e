package cli_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinary builds the real inferbox binary and runs client commands as
// subprocesses against an in-process server: the command line, the exit
// status, the "inferbox: " error prefix and a piped stdin as a user has them.
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

	run := func(stdin []byte, args ...string) (string, string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cmd.Environ(), "INFERBOX_SERVER="+url)
		cmd.Stdin = bytes.NewReader(stdin) // a pipe in the child: the body goes chunked
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errb.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), 0
	}

	out, errOut, code := run(nil, "endpoint", "list")
	if code != 0 || !strings.HasPrefix(out, "NAME   STATUS   VARIANTS   INSTANCES   CREATED\n") {
		t.Errorf("inferbox endpoint list: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut, code = run(nil, "endpoint", "describe", "nope")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "inferbox: Could not find endpoint ") {
		t.Errorf("inferbox endpoint describe nope: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	ib := inferbox{t: t, server: url}
	ib.ok("deploy", "xgb", "--image", "xgboost", "--model-data", exampleModel(t), "--instance-type", "ml.m5.large", "--wait")
	sample, err := os.ReadFile("../../examples/xgboost/sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run(sample, "invoke", "xgb")
	if code != 0 {
		t.Fatalf("inferbox invoke xgb < sample.csv: exit %d\n%s", code, errOut)
	}
	checkPredictions(t, out)
}
