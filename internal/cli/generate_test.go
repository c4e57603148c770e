package cli

import (
	"bytes"
	"context"
	"github.com/inferbox/inferbox/internal/testmodel"
	"strings"
	"testing"
)

func storiesModel(t *testing.T) string {
	t.Helper()
	return testmodel.Stories260K(t)
}

func runGenerate(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := generateCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestGenerateGreedy(t *testing.T) {
	model := storiesModel(t)
	out, stderr, err := runGenerate(t, model, "Once upon a time", "--temperature", "0", "--max-tokens", "60", "--threads", "1")
	if err != nil {
		t.Fatal(err)
	}
	want := ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily\n"
	if out != want {
		t.Errorf("stdout %q\nwant   %q", out, want)
	}
	if !strings.Contains(stderr, "generated 60 tokens") || !strings.Contains(stderr, "tokens/s") || !strings.Contains(stderr, "finish: length") {
		t.Errorf("stderr %q", stderr)
	}
}

func TestGenerateSampledStops(t *testing.T) {
	model := storiesModel(t)
	args := []string{model, "Once upon a time", "--temperature", "0.9", "--top-k", "20", "--top-p", "0.9", "--seed", "42",
		"--max-tokens", "100", "--stop", ".", "--stop", "!"}
	a, stderr, err := runGenerate(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := runGenerate(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a == "" {
		t.Errorf("same seed, different output: %q vs %q", a, b)
	}
	if strings.ContainsAny(a, ".!") || !strings.Contains(stderr, "finish: stop") {
		t.Errorf("stop sequences: stdout %q stderr %q", a, stderr)
	}
}

func TestGenerateBadFlags(t *testing.T) {
	model := storiesModel(t)
	for flag, val := range map[string]string{"--temperature": "-1", "--top-p": "0", "--top-k": "-3", "--max-tokens": "-1"} {
		_, _, err := runGenerate(t, model, "x", flag, val)
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s %s: err = %v, want it named", flag, val, err)
		}
	}
	if _, _, err := runGenerate(t, "/nonexistent.gguf", "x"); err == nil {
		t.Error("missing model: no error")
	}
}
