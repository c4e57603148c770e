package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/cli"
)

func runAdvise(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := cli.ExecuteWith(context.Background(), append([]string{"advise"}, args...), strings.NewReader(""), &out, &errb)
	return out.String() + errb.String(), err
}

func TestAdviseCLI(t *testing.T) {
	out, err := runAdvise(t, "-f", "../advisor/testdata/recommendation.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want, err := os.ReadFile("../advisor/testdata/recommendation.golden")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("advise -f differs from the advisor's golden file:\n%s", out)
	}

	// Flags override the file: a 50 MB payload rules out real-time and
	// serverless, and the answer becomes async.
	out, err = runAdvise(t, "-f", "../advisor/testdata/recommendation.yaml", "--payload-mb", "50", "--latency", "minutes", "--rules")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, s := range []string{"recommended mode async", "ruled out: payload 50 MB > 6 MB", "Decision rules:"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}

	// Flags alone, with a trace file.
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.txt")
	if err := os.WriteFile(trace, []byte("0\n0.5\n1\n7200\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runAdvise(t, "--latency", "interactive", "--processing-ms", "40", "--trace", trace)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "recommended mode serverless") || !strings.Contains(out, "note: no requests for 1h59m59s") {
		t.Errorf("trace advice:\n%s", out)
	}

	// Bad input is refused with the reason.
	if out, err := runAdvise(t, "--latency", "interactive", "--processing-ms", "40", "--rate", "-3"); err == nil || !strings.Contains(err.Error()+out, "negative") {
		t.Errorf("negative rate: err %v, out %s", err, out)
	}
}
