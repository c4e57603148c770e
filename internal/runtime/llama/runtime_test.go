package llama

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/runtime"
)

func loadViaLoader(t *testing.T, env map[string]string) runtime.Model {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(storiesPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(dir, "model.gguf")); err != nil {
		t.Fatal(err)
	}
	m, err := NewLoader(gguf.NewRegistry(), 0).Load(context.Background(), runtime.Spec{Kind: "llama", ModelDir: dir, Threads: 2, Environment: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func invoke(t *testing.T, m runtime.Model, accept, body string) (*runtime.Response, error) {
	t.Helper()
	return m.Invoke(context.Background(), &runtime.Request{ContentType: "application/json", Accept: accept, Body: strings.NewReader(body), Size: int64(len(body))})
}

func TestInvokeJSON(t *testing.T) {
	m := loadViaLoader(t, nil)
	resp, err := invoke(t, m, "application/json", `{"inputs": "Once upon a time", "parameters": {"do_sample": false, "max_new_tokens": 60, "stop": ["zzz"]}}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []struct {
		GeneratedText string         `json:"generated_text"`
		Details       map[string]any `json:"details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.ContentType != "application/json" || len(out) != 1 || out[0].GeneratedText != storiesReference+"\nLily" || out[0].Details != nil {
		t.Errorf("got %+v", out)
	}
	if in, n := resp.Usage(); in != 5 || n != 60 {
		t.Errorf("usage = %d, %d tokens; want 5, 60", in, n)
	}
	// details: true adds TGI's details; a greedy generation has no seed.
	resp, err = invoke(t, m, "application/json", `{"inputs": "Once upon a time", "parameters": {"do_sample": false, "max_new_tokens": 60, "stop": ["ball"], "details": true}}`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `[{"generated_text":", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ","details":{"finish_reason":"stop_sequence","generated_tokens":39,"seed":null}}]`
	if string(b) != want {
		t.Errorf("details:\n got %s\nwant %s", b, want)
	}
	// As in TGI, no sampling parameter means greedy.
	resp, err = invoke(t, m, "application/json", `{"inputs": "Once upon a time", "parameters": {"max_new_tokens": 60}}`)
	if err != nil {
		t.Fatal(err)
	}
	out = nil
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out) != 1 || out[0].GeneratedText != storiesReference+"\nLily" {
		t.Errorf("no parameters: %+v, %v; want the greedy text", out, err)
	}
	resp.Body.Close()
	// Seeded sampling through JSON is reproducible; "prompt" is accepted too.
	body := `{"prompt": "Once upon a time", "parameters": {"temperature": 0.9, "top_k": 20, "top_p": 0.9, "seed": 7, "max_tokens": 30, "stop": "."}}`
	var texts []string
	for i := 0; i < 2; i++ {
		resp, err := invoke(t, m, "", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		texts = append(texts, string(b))
	}
	if texts[0] != texts[1] {
		t.Errorf("seeded requests differ:\n%s\n%s", texts[0], texts[1])
	}
}

func TestInvokeStream(t *testing.T) {
	m := loadViaLoader(t, nil)
	for _, accept := range []string{"application/jsonlines", "text/event-stream"} {
		resp, err := invoke(t, m, accept, `{"inputs": "Once upon a time", "parameters": {"temperature": 0, "max_new_tokens": 60, "stop": ["ball"]}}`)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		var tokens strings.Builder
		var final *streamLine
		n := 0
		for sc.Scan() {
			line := sc.Text()
			if accept == "text/event-stream" {
				if line == "" {
					continue
				}
				if !strings.HasPrefix(line, "data: ") {
					t.Fatalf("SSE line %q", line)
				}
				line = strings.TrimPrefix(line, "data: ")
			}
			var l streamLine
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if l.Token != nil {
				tokens.WriteString(l.Token.Text)
				n++
			}
			if l.GeneratedText != nil {
				final = &l
			}
		}
		resp.Body.Close()
		want := ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red "
		if final == nil || *final.GeneratedText != want || tokens.String() != want {
			t.Fatalf("%s: tokens %q final %+v", accept, tokens.String(), final)
		}
		if final.Details.FinishReason != "stop_sequence" || final.Details.GeneratedTokens != n || final.Token == nil || final.Index != n {
			t.Errorf("%s: final %+v, details %+v, %d token lines", accept, final, final.Details, n)
		}
		if in, out := resp.Usage(); in != 5 || out != n {
			t.Errorf("%s: usage = %d, %d; want 5, %d", accept, in, out, n)
		}
	}
}

func TestInvokeStreamClosedEarly(t *testing.T) {
	m := loadViaLoader(t, nil)
	resp, err := invoke(t, m, "application/jsonlines", `{"inputs": "Once", "parameters": {"max_new_tokens": 1000}}`)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // the generating goroutine sees its next write fail and stops
}

func TestInvokeBadInput(t *testing.T) {
	m := loadViaLoader(t, map[string]string{"MAX_TOTAL_TOKENS": "16"})
	cases := map[string]string{
		`{"inputs": "x", "parameters": {"top_p": 0}}`:                   "top_p",
		`{"inputs": "x", "parameters": {"top_p": 1.2}}`:                 "top_p",
		`{"inputs": "x", "parameters": {"temperature": -1}}`:            "temperature",
		`{"inputs": "x", "parameters": {"top_k": -5}}`:                  "top_k",
		`{"inputs": "x", "parameters": {"max_new_tokens": -1}}`:         "max_tokens",
		`{"inputs": "x", "parameters": {"repetition_penalty": 0}}`:      "repetition_penalty",
		`{"inputs": "x", "parameters": {"stop": 5}}`:                    "stop",
		`{"parameters": {}}`:                                            "inputs",
		`not json`:                                                      "JSON",
		`{"inputs": "` + strings.Repeat("Once upon a time ", 10) + `"}`: "context",
	}
	for body, name := range cases {
		_, err := invoke(t, m, "application/jsonlines", body)
		var me *runtime.ModelError
		if !errors.As(err, &me) || me.StatusCode != 400 || !strings.Contains(me.Message, name) {
			t.Errorf("%s: err = %v, want 400 naming %s", body, err, name)
		}
	}
}

func TestLoaderErrors(t *testing.T) {
	l := NewLoader(gguf.NewRegistry(), 0)
	if _, err := l.Load(context.Background(), runtime.Spec{ModelDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no .gguf") {
		t.Errorf("empty dir: %v", err)
	}
	w := &gguf.Writer{}
	w.AddTensor("x", gguf.Q5_K, []uint64{256}, make([]byte, 176))
	dir := t.TempDir()
	f, _ := os.Create(filepath.Join(dir, "m.gguf"))
	w.WriteTo(f)
	f.Close()
	_, err := l.Load(context.Background(), runtime.Spec{ModelDir: dir})
	if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), "Q5_K") {
		t.Errorf("unsupported type: %v", err)
	}
}

// TestConcurrentGenerations runs several generations on one Model at once
// (run with -race): each has its own KV cache and must reproduce the
// reference.
func TestConcurrentGenerations(t *testing.T) {
	m := loadStories(t, 2)
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sb strings.Builder
			_, err := m.Generate(context.Background(), &GenerateRequest{Prompt: "Once upon a time", Params: Params{MaxTokens: 60}},
				func(tk Token) error { sb.WriteString(tk.Text); return nil })
			if err != nil {
				errs <- err.Error()
			} else if sb.String() != storiesReference+"\nLily" {
				errs <- sb.String()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestGenerateCancelled(t *testing.T) {
	m := loadStories(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := m.Generate(ctx, &GenerateRequest{Prompt: "Once"}, func(Token) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Errorf("err %v after %d tokens", err, n)
	}
}

func TestCloseStopsStreams(t *testing.T) {
	m, err := Load(gguf.NewRegistry(), storiesPath(t), 0, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := invoke(t, m, "application/jsonlines", `{"inputs": "Once", "parameters": {"max_new_tokens": 1500}}`)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// Nobody reads any more: Close must still stop the generator, which
	// is blocked writing to the pipe.
	m.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, ErrClosed) {
		t.Errorf("stream after Close: %v", err)
	}
	if _, err := m.Generate(context.Background(), &GenerateRequest{Prompt: "x"}, func(Token) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Generate after Close: %v", err)
	}
}

func TestDetailsFinishReason(t *testing.T) {
	seed := uint64(7)
	for _, c := range []struct {
		u    Usage
		want string
	}{
		{Usage{FinishReason: FinishLength, EndToken: -1, OutputTokens: 3}, "length"},
		{Usage{FinishReason: FinishStop, EndToken: 2, OutputTokens: 3}, "eos_token"},
		{Usage{FinishReason: FinishStop, EndToken: -1, StopSequence: ".", OutputTokens: 3}, "stop_sequence"},
	} {
		d := detailsOf(c.u, &seed)
		if d.FinishReason != c.want || d.GeneratedTokens != 3 || *d.Seed != 7 {
			t.Errorf("%+v: %+v", c.u, d)
		}
	}
}
