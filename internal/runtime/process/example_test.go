package process

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/runtime"
)

// TestExampleBYOPython serves examples/byo-python the way a user deploys it:
// the script itself is the command, the model directory its artifact.
func TestExampleBYOPython(t *testing.T) {
	fixture(t) // skips without /usr/bin/python3
	example, err := filepath.Abs("../../../examples/byo-python")
	if err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile(filepath.Join(example, "sample.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Labels []string  `json:"labels"`
		Scores []float64 `json:"scores"`
	}
	b, err := os.ReadFile(filepath.Join(example, "sample-expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	m, _ := start(t, &Loader{}, runtime.Spec{
		Image:    filepath.Join(example, "serve.py"),
		Command:  []string{filepath.Join(example, "serve.py")},
		ModelDir: filepath.Join(example, "model"),
	})
	ctx := context.Background()

	checkScore := func(i int, label string, score float64) {
		t.Helper()
		if label != want.Labels[i] || math.Abs(score-want.Scores[i]) > 1e-9 {
			t.Errorf("record %d: %s %v; scikit-learn says %s %v", i, label, score, want.Labels[i], want.Scores[i])
		}
	}

	// CSV in, CSV out.
	resp, err := m.Invoke(ctx, &runtime.Request{ContentType: "text/csv", Accept: "text/csv",
		Body: strings.NewReader(string(sample)), Size: int64(len(sample))})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(readAll(t, resp)), "\n")
	if len(lines) != len(want.Labels) || resp.ContentType != "text/csv" {
		t.Fatalf("got %d lines of %s, want %d of text/csv", len(lines), resp.ContentType, len(want.Labels))
	}
	for i, line := range lines {
		label, s, _ := strings.Cut(line, ",")
		score, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		checkScore(i, label, score)
	}

	// Streaming: one JSON line per record, request of unknown length.
	resp, err = m.Invoke(ctx, &runtime.Request{ContentType: "text/csv", Accept: "application/x-ndjson",
		Body: strings.NewReader(string(sample)), Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for ; sc.Scan(); n++ {
		var p struct {
			Label string  `json:"label"`
			Score float64 `json:"score"`
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil || n >= len(want.Labels) {
			t.Fatalf("stream line %d %q: %v", n, sc.Text(), err)
		}
		checkScore(n, p.Label, p.Score)
	}
	resp.Body.Close()
	if sc.Err() != nil || n != len(want.Labels) {
		t.Errorf("stream: %d lines, err %v", n, sc.Err())
	}

	// A malformed record is the model's 400.
	_, err = m.Invoke(ctx, &runtime.Request{ContentType: "text/csv", Body: strings.NewReader("1,2,3"), Size: 5})
	var me *runtime.ModelError
	if !errors.As(err, &me) || me.StatusCode != 400 || !strings.Contains(me.Message, "expected 30 values") {
		t.Errorf("bad record: %v", err)
	}
}
