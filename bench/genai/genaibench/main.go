// Command genaibench measures the foundation-model service: time to first
// token and tokens/s through the OpenAI chat API against the llama engine
// called in-process, batch (low-priority) throughput against the same
// prompts on demand, and interactive latency with and without a batch
// backlog. bench/genai/run.sh drives it; see docs/benchmarks.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/inferbox/inferbox/internal/genai"
	"github.com/inferbox/inferbox/internal/gguf"
	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/pool"
	"github.com/inferbox/inferbox/internal/runtime/llama"
)

const prompt = "Once upon a time"

func main() {
	mode := flag.String("mode", "direct", "direct | http | batch | latency")
	model := flag.String("model", "", "GGUF file (direct, batch, latency)")
	url := flag.String("url", "", "inferbox base URL (http)")
	modelID := flag.String("model-id", "meta.stories260k", "foundation model id (http)")
	conc := flag.Int("c", 1, "concurrent chats (direct, http)")
	n := flag.Int("n", 40, "requests (per client for direct/http; total for batch; interactive for latency)")
	maxTok := flag.Int("max-tokens", 128, "tokens per generation")
	threads := flag.Int("threads", 2, "engine threads (direct)")
	slots := flag.Int("slots", 8, "pool concurrency per instance (batch, latency)")
	backlog := flag.Int("backlog", 64, "batch generations in flight (latency)")
	serverPID := flag.Int("server-pid", 0, "inferbox's process id, to count its CPU time (http)")
	flag.Parse()
	ctx := context.Background()
	var err error
	switch *mode {
	case "direct":
		err = direct(ctx, *model, *threads, *conc, *n, *maxTok)
	case "http":
		err = viaHTTP(ctx, *url, *modelID, *serverPID, *conc, *n, *maxTok)
	case "batch":
		err = batch(ctx, *model, *slots, *n, *maxTok)
	case "latency":
		err = latency(ctx, *model, *slots, *n, *maxTok, *backlog)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genaibench:", err)
		os.Exit(1)
	}
}

// sample is one generation's timing.
type sample struct {
	ttft, total time.Duration
	tokens      int
}

// closedLoop runs c clients of n requests each and prints TTFT and
// throughput, and, when cpu is not nil, the CPU time cpu counts over the
// loop per generated token: the engine's own process for direct, the
// server process for http, so the API's cost is measured apart from the
// client's (which shares this machine's CPUs).
func closedLoop(label string, c, n int, cpu func() (time.Duration, error), one func() (sample, error)) error {
	var cpu0 time.Duration
	if cpu != nil {
		var err error
		if cpu0, err = cpu(); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	var all []sample
	var firstErr error
	t0 := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				s, err := one()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				all = append(all, s)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	if firstErr != nil {
		return firstErr
	}
	tt := make([]time.Duration, len(all))
	tok := 0
	var perStream float64
	for i, s := range all {
		tt[i] = s.ttft
		tok += s.tokens
		perStream += float64(s.tokens-1) / (s.total - s.ttft).Seconds()
	}
	cpuNote := ""
	if cpu != nil {
		cpu1, err := cpu()
		if err != nil {
			return err
		}
		cpuNote = fmt.Sprintf("  cpu %.1f µs/token", float64((cpu1-cpu0).Microseconds())/float64(tok))
	}
	fmt.Printf("%-8s c=%d requests=%d  ttft p50 %s p99 %s  per-stream decode %.0f tok/s  aggregate %.0f tok/s%s\n",
		label, c, len(all), pct(tt, 50), pct(tt, 99), perStream/float64(len(all)), float64(tok)/wall.Seconds(), cpuNote)
	return nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// procCPU is process pid's user+system CPU time from /proc/pid/stat
// (clock ticks of 10 ms; the loops run for seconds).
func procCPU(pid int) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// Fields after the command name, which is in parentheses.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, err
		}
		return time.Duration(ut+st) * 10 * time.Millisecond, nil
	}
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(i-1, len(s)-1))].Round(10 * time.Microsecond)
}

func params(maxTok int) llama.Params {
	return llama.Params{MaxTokens: maxTok} // greedy; stories ends early rarely at 128
}

// direct calls llama.Model.Generate in-process: the engine baseline.
func direct(ctx context.Context, path string, threads, c, n, maxTok int) error {
	m, err := llama.Load(gguf.NewRegistry(), path, 0, threads, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer m.Close()
	return closedLoop("engine", c, n, selfCPU, func() (sample, error) {
		t0 := time.Now()
		var s sample
		u, err := m.Generate(ctx, &llama.GenerateRequest{Prompt: prompt, Params: params(maxTok)}, func(t llama.Token) error {
			if s.ttft == 0 && t.Text != "" {
				s.ttft = time.Since(t0)
			}
			return nil
		})
		s.total, s.tokens = time.Since(t0), u.OutputTokens
		return s, err
	})
}

// viaHTTP streams OpenAI chat completions.
func viaHTTP(ctx context.Context, base, id string, serverPID, c, n, maxTok int) error {
	body, _ := json.Marshal(map[string]any{
		"model": id, "max_tokens": maxTok, "temperature": 0, "stream": true,
		"stream_options": map[string]any{"include_usage": true},
		"messages":       []map[string]string{{"role": "user", "content": prompt}},
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var cpu func() (time.Duration, error)
	if serverPID > 0 {
		cpu = procCPU(serverPID)
	}
	return closedLoop("http", c, n, cpu, func() (sample, error) {
		t0 := time.Now()
		var s sample
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			return s, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return s, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return s, fmt.Errorf("status %s", resp.Status)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || line == "[DONE]" {
				continue
			}
			var ev struct {
				Choices []struct {
					Delta struct{ Content string } `json:"delta"`
				} `json:"choices"`
				Usage *struct {
					CompletionTokens int `json:"completion_tokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				return s, err
			}
			if s.ttft == 0 && len(ev.Choices) > 0 && ev.Choices[0].Delta.Content != "" {
				s.ttft = time.Since(t0)
			}
			if ev.Usage != nil {
				s.tokens = ev.Usage.CompletionTokens
			}
		}
		s.total = time.Since(t0)
		return s, sc.Err()
	})
}

func service(path string, slots int) (*genai.Service, error) {
	reg := gguf.NewRegistry()
	types, err := instancetype.Default()
	if err != nil {
		return nil, err
	}
	return genai.New(genai.Config{
		Models:      []genai.ModelSpec{{ID: "m", Path: path, ChatFormat: genai.FormatRaw}},
		Concurrency: slots, MaxInstances: 1, CPUs: 2, QueueTimeout: 10 * time.Minute,
	}, genai.Deps{Loader: llama.NewLoader(reg, 0), Registry: reg, Types: types})
}

func gen(ctx context.Context, s *genai.Service, prio pool.Priority, maxTok int) (genai.Result, error) {
	return s.Generate(ctx, &genai.Request{ModelID: "m", Prompt: prompt, Params: params(maxTok), Priority: prio}, nil)
}

// batch submits n generations at once, at low priority and then on demand.
func batch(ctx context.Context, path string, slots, n, maxTok int) error {
	s, err := service(path, slots)
	if err != nil {
		return err
	}
	defer s.Close(ctx)
	if _, err := gen(ctx, s, pool.Normal, 4); err != nil { // load the instance
		return err
	}
	for _, p := range []struct {
		name string
		prio pool.Priority
	}{{"on-demand", pool.Normal}, {"batch", pool.Low}} {
		var tok atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, n)
		t0 := time.Now()
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := gen(ctx, s, p.prio, maxTok)
				if err != nil {
					errs <- err
				}
				tok.Add(int64(r.OutputTokens))
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		wall := time.Since(t0)
		fmt.Printf("%-9s %d prompts, %d slots: %s, %.0f tok/s\n", p.name, n, slots, wall.Round(time.Millisecond), float64(tok.Load())/wall.Seconds())
	}
	return nil
}

// latency measures n sequential interactive generations alone, then with
// backlog low-priority generations kept in flight.
func latency(ctx context.Context, path string, slots, n, maxTok, backlog int) error {
	s, err := service(path, slots)
	if err != nil {
		return err
	}
	defer s.Close(ctx)
	if _, err := gen(ctx, s, pool.Normal, 4); err != nil {
		return err
	}
	interactive := func(label string) error {
		d := make([]time.Duration, 0, n)
		for range n {
			r, err := gen(ctx, s, pool.Normal, maxTok)
			if err != nil {
				return err
			}
			d = append(d, r.Latency)
		}
		fmt.Printf("%-13s interactive n=%d: p50 %s p99 %s\n", label, n, pct(d, 50), pct(d, 99))
		return nil
	}
	if err := interactive("alone"); err != nil {
		return err
	}
	bctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var done, tok atomic.Int64
	var berr atomic.Value
	for range backlog {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bctx.Err() == nil {
				r, err := gen(bctx, s, pool.Low, maxTok)
				if err != nil {
					if bctx.Err() == nil {
						berr.CompareAndSwap(nil, err)
					}
					return
				}
				done.Add(1)
				tok.Add(int64(r.OutputTokens))
			}
		}()
	}
	t0 := time.Now()
	err = interactive(fmt.Sprintf("batch(%d)", backlog))
	wall := time.Since(t0)
	stop()
	wg.Wait()
	if e := berr.Load(); e != nil {
		return fmt.Errorf("batch generation: %v", e)
	}
	fmt.Printf("              batch meanwhile: %d generations, %.0f tok/s\n", done.Load(), float64(tok.Load())/wall.Seconds())
	return err
}
