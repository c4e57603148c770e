package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/catalog"
)

// TestTransform runs a batch transform job through the CLI over local
// files: create --wait (progress lines on stderr, as stderr is not a
// terminal here), list, describe, wait --json, and the errors.
func TestTransform(t *testing.T) {
	ib := inferbox{t: t, server: startServer(t, nil)}
	ib.ok("model", "create", "xgb", "--image", "xgboost", "--model-data", exampleModel(t))
	sample, err := os.ReadFile("../../examples/xgboost/sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	in, out := t.TempDir(), t.TempDir()
	for _, name := range []string{"a.csv", "b.csv"} {
		if err := os.WriteFile(filepath.Join(in, name), sample, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	r := ib.run("", "transform", "create", "score", "--model", "xgb", "--input", in+"/", "--output", out, "--wait")
	if r.err != nil {
		t.Fatalf("transform create --wait: %v\nstderr:\n%s", r.err, r.stderr)
	}
	if want := "Transform job score Completed: 2/2 objects, 0.0 MB/0.0 MB, 10 records\n"; r.stdout != want {
		t.Errorf("transform create --wait printed %q, want %q", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "transform job score: InProgress") || !strings.Contains(r.stderr, "transform job score: Completed (2/2 objects") {
		t.Errorf("progress lines on stderr:\n%s", r.stderr)
	}
	for _, name := range []string{"a.csv.out", "b.csv.out"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("output %s: %v", name, err)
		}
		checkPredictions(t, string(b))
	}

	list := ib.ok("transform", "list")
	if !strings.HasPrefix(list, "NAME") || !strings.Contains(list, "score") || !strings.Contains(list, "Completed") || !strings.Contains(list, "2/2") {
		t.Errorf("transform list:\n%s", list)
	}
	desc := ib.ok("transform", "describe", "score")
	for _, want := range []string{"Status:", "Completed", "Progress:", "2/2 objects", "10 records", "1 × ml.m5.large"} {
		if !strings.Contains(desc, want) {
			t.Errorf("transform describe lacks %q:\n%s", want, desc)
		}
	}
	var j catalog.TransformJob
	if err := json.Unmarshal([]byte(ib.ok("transform", "wait", "score", "--json")), &j); err != nil {
		t.Fatalf("transform wait --json: %v", err)
	}
	if j.Progress == nil || j.Progress.RecordsProcessed != 10 || j.Progress.ObjectsCompleted != 2 || j.Progress.BytesProcessed != 2*int64(len(sample)) {
		t.Errorf("transform wait --json: Progress %+v", j.Progress)
	}

	if msg := ib.fails(1, "transform", "describe", "nope"); !strings.Contains(msg, "Could not find requested job with name nope") {
		t.Errorf("describe nope: %q", msg)
	}
	if msg := ib.fails(1, "transform", "stop", "score"); !strings.Contains(msg, "already ended") {
		t.Errorf("stop an ended job: %q", msg)
	}
	if msg := ib.fails(2, "transform", "create", "x", "--input", in); !strings.Contains(msg, "--model is required") {
		t.Errorf("create without --model: %q", msg)
	}
	// A job that fails: wait exits 1 with the reason.
	if err := os.WriteFile(filepath.Join(in, "c.csv"), []byte("not,a,number\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ib.ok("transform", "create", "bad", "--model", "xgb", "--input", in+"/c", "--output", t.TempDir())
	if msg := ib.fails(1, "transform", "wait", "bad"); !strings.Contains(msg, "transform job bad failed") || !strings.Contains(msg, "c.csv: records 1-1") && !strings.Contains(msg, "c.csv: record 1") {
		t.Errorf("wait on a failing job: %q", msg)
	}
}
