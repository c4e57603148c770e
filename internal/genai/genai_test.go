package genai

import (
	"context"
	"errors"
	"github.com/inferbox/inferbox/internal/testmodel"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

const storiesRef = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."

func newStories(t *testing.T, cfg Config) *Service {
	t.Helper()
	path := testmodel.Stories260K(t)
	reg := gguf.NewRegistry()
	if _, err := readMeta(reg, path); err != nil {
		t.Fatalf("test model: %v", err)
	}
	types, err := instancetype.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Models = []ModelSpec{{ID: "meta.stories", Path: path}}
	s, err := New(cfg, Deps{Loader: llama.NewLoader(reg, 0), Registry: reg, Types: types,
		Node: instancetype.NewNode(64, 64<<30)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGenerate(t *testing.T) {
	s := newStories(t, Config{})
	ctx := context.Background()
	info, ok := s.Model("meta.stories")
	if !ok || info.Provider != "Meta" || info.ContextLength != 2048 || info.ChatFormat != FormatLlama2 || info.HasTemplate {
		t.Fatalf("info %+v", info)
	}
	var pieces []string
	res, err := s.Generate(ctx, &Request{ModelID: "meta.stories", Prompt: "Once upon a time",
		Params: llama.Params{MaxTokens: 20}}, func(p string) error { pieces = append(pieces, p); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pieces, "") != res.Text || !strings.HasPrefix(storiesRef, "Once upon a time"+res.Text) ||
		res.OutputTokens != 20 || res.FinishReason != llama.FinishLength {
		t.Errorf("result %+v", res)
	}

	_, err = s.Generate(ctx, &Request{ModelID: "nope"}, nil)
	if !errors.Is(err, ErrUnknownModel) || apierr.As(err).Kind != apierr.NotFound {
		t.Errorf("unknown model: %v", err)
	}
	_, err = s.Generate(ctx, &Request{ModelID: "meta.stories", Params: llama.Params{MaxTokens: 4096}}, nil)
	if apierr.As(err).Kind != apierr.Validation || !strings.Contains(err.Error(), "context length of 2048") {
		t.Errorf("max tokens over the context: %v", err)
	}
	_, err = s.Generate(ctx, &Request{ModelID: "meta.stories", Params: llama.Params{Temperature: -1}}, nil)
	if apierr.As(err).Kind != apierr.Validation || !strings.Contains(err.Error(), "temperature") {
		t.Errorf("negative temperature: %v", err)
	}
}

// The pool starts from zero, grows while generations hold every slot,
// and stops idle instances.
func TestElasticPool(t *testing.T) {
	s := newStories(t, Config{Concurrency: 1, MaxInstances: 2, IdleTimeout: 10 * time.Millisecond})
	p := s.models["meta.stories"].pool
	if p.Size() != 0 {
		t.Fatalf("%d instances before any request", p.Size())
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Generate(context.Background(), &Request{ModelID: "meta.stories", Prompt: "Once",
				Params: llama.Params{MaxTokens: 3}}, func(string) error { <-release; return nil })
			if err != nil {
				t.Error(err)
			}
		}()
	}
	waitUntil(t, "two instances", func() bool { return p.Size() == 2 })
	close(release)
	wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	waitUntil(t, "scale to zero", func() bool { return p.Size() == 0 })
	cancel()
	<-done
}
