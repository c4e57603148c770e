package advisor

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/instancetype"
	"github.com/inferbox/inferbox/internal/pricebook"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func book(t *testing.T) *pricebook.Book {
	t.Helper()
	types, err := instancetype.Default()
	if err != nil {
		t.Fatal(err)
	}
	b, err := pricebook.Default(types)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWorkedExamples(t *testing.T) {
	want := map[string]string{
		"fraud-detection":    ModeRealtime,
		"chatbot":            ModeLLMOnDemand,
		"recommendation":     ModeServerless,
		"genomics":           ModeAsync,
		"sales-analysis":     ModeBatch,
		"churn-scoring":      ModeBatch,
		"content-generation": ModeLLMBatch,
		"fine-tuned-llm":     ModeLLMProvisioned,
	}
	b := book(t)
	for name, mode := range want {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w, err := ParseWorkload(f, "testdata")
			if err != nil {
				t.Fatal(err)
			}
			a, err := Advise(w, b)
			if err != nil {
				t.Fatal(err)
			}
			if a.Recommended != mode {
				t.Errorf("recommended %s, want %s", a.Recommended, mode)
			}
			var out bytes.Buffer
			if err := a.WriteText(&out, false); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			g, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(g) {
				t.Errorf("output differs from %s (run with -update):\n%s", golden, out.String())
			}
		})
	}
}

func TestUnpricedIsExplicit(t *testing.T) {
	r := 1.0
	w := Workload{Latency: LatencyInteractive, ProcessingMs: 10, InstanceType: "ml.nonesuch.large", MemoryMB: 1536, Traffic: Traffic{Rate: &r}}
	a, err := Advise(w, book(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{ModeRealtime, ModeServerless} {
		row := a.row(m)
		if row.Unpriced == "" || row.MonthlyUSD != 0 {
			t.Errorf("%s: unpriced %q, cost %v: want an explicit unpriced cell", m, row.Unpriced, row.MonthlyUSD)
		}
	}
	if !strings.Contains(a.row(ModeRealtime).Unpriced, "ml.nonesuch.large") || !strings.Contains(a.row(ModeServerless).Unpriced, "1536") {
		t.Errorf("unpriced cells do not name the item: %q, %q", a.row(ModeRealtime).Unpriced, a.row(ModeServerless).Unpriced)
	}
	var out bytes.Buffer
	_ = a.WriteText(&out, false)
	if !strings.Contains(out.String(), "UNPRICED") {
		t.Errorf("no UNPRICED cell:\n%s", out.String())
	}
}

func TestBadInput(t *testing.T) {
	neg, absurd := -1.0, 5e6
	ok := 1.0
	cases := []struct {
		name string
		w    Workload
		want string
	}{
		{"negative rate", Workload{Latency: LatencyInteractive, ProcessingMs: 10, Traffic: Traffic{Rate: &neg}}, "cannot be negative"},
		{"absurd rate", Workload{Latency: LatencyInteractive, ProcessingMs: 10, Traffic: Traffic{Rate: &absurd}}, "absurd"},
		{"short profile", Workload{Latency: LatencyInteractive, ProcessingMs: 10, Traffic: Traffic{Hourly: []float64{1, 2}}}, "give 24"},
		{"no traffic", Workload{Latency: LatencyInteractive, ProcessingMs: 10}, "give one of"},
		{"bad latency", Workload{Latency: "soon", ProcessingMs: 10, Traffic: Traffic{Rate: &ok}}, "latency"},
		{"zero processing", Workload{Latency: LatencyNone, Traffic: Traffic{Rate: &ok}}, "processingMs"},
		{"no mode", Workload{Latency: LatencyInteractive, PayloadMB: 2000, ProcessingMs: 7_200_000, Traffic: Traffic{Rate: &ok}}, "payload 2000 MB > 6 MB"},
		{"no requests", Workload{Latency: LatencyInteractive, ProcessingMs: 10, Traffic: Traffic{Hourly: make([]float64, 24)}}, "no requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Advise(c.w, book(t))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one containing %q", err, c.want)
			}
			if c.name == "no mode" && !errors.Is(err, ErrNoMode) {
				t.Errorf("err %v is not ErrNoMode", err)
			}
		})
	}
}

func TestTraceParsingAndGaps(t *testing.T) {
	if _, err := ParseTrace(strings.NewReader("10\n5\n")); err == nil || !strings.Contains(err.Error(), "time order") {
		t.Errorf("backwards trace: err %v", err)
	}
	if _, err := ParseTrace(strings.NewReader("abc\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("garbage trace: err %v", err)
	}
	dir := t.TempDir()
	trace := "# two bursts three hours apart\n0\n1\n2\n10800\n10801\n"
	if err := os.WriteFile(filepath.Join(dir, "t.txt"), []byte(trace), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := ParseWorkload(strings.NewReader("latency: interactive\nprocessingMs: 50\ntraffic: {trace: t.txt}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Traffic.Times) != 5 {
		t.Fatalf("read %d timestamps, want 5", len(w.Traffic.Times))
	}
	a, err := Advise(w, book(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Notes) == 0 || !strings.Contains(a.Notes[0], "no requests for 2h59m58s") {
		t.Errorf("notes %q: want the 3-hour gap reported", a.Notes)
	}
	if a.Recommended != ModeServerless {
		t.Errorf("recommended %s for two bursts 3 h apart, want serverless", a.Recommended)
	}
}

func constant(rate float64, d time.Duration) Series {
	s := Series{Start: day0, Arrivals: make([]float64, int(d/Tick))}
	for i := range s.Arrivals {
		s.Arrivals[i] = rate * Tick.Seconds()
	}
	return s
}

func TestRealtimeConstantRate(t *testing.T) {
	// 20 req/s at 100 ms, one at a time: 2 instances busy; a 70% target
	// (420/min per instance) needs ceil(1200/420) = 3 instances.
	s := constant(20, 3*time.Hour)
	r := ReplayRealtime(s, RealtimeConfig{Processing: 100 * time.Millisecond, Concurrency: 1, Min: 1, Max: 10, Target: 0.7 * 600})
	// It overshoots while the first minutes' backlog drains (the measured
	// invocations include it, as the server's would), then settles at 3.
	if r.FinalInstances != 3 {
		t.Errorf("settled at %d instances, want 3", r.FinalInstances)
	}
	if r.MaxInstances < 3 {
		t.Errorf("max instances %d, want at least 3", r.MaxInstances)
	}
	if r.Left > 1 {
		t.Errorf("%.0f requests left queued", r.Left)
	}
}

func TestRealtimeScalesInToMin(t *testing.T) {
	s := constant(20, time.Hour)
	s.Arrivals = append(s.Arrivals, make([]float64, int(2*time.Hour/Tick))...)
	r := ReplayRealtime(s, RealtimeConfig{Processing: 100 * time.Millisecond, Concurrency: 1, Min: 1, Max: 10, Target: 420})
	// Two idle hours bring the variant back to MinCapacity 1.
	if r.FinalInstances != 1 {
		t.Errorf("final instances %d, want MinCapacity 1 after two idle hours", r.FinalInstances)
	}
	if r.ScaleActions < 2 {
		t.Errorf("%d scaling actions, want a scale-out and scale-ins", r.ScaleActions)
	}
}

func TestServerlessIdleNightScalesToZero(t *testing.T) {
	// Busy 12 hours, idle 12: with a 5-minute idle timeout the pool sits
	// at zero for the night less the timeout.
	h := make([]float64, 24)
	for i := 8; i < 20; i++ {
		h[i] = 2
	}
	s := SeriesOf(Traffic{Hourly: h})
	r := ReplayElastic(s, ElasticConfig{Processing: 30 * time.Millisecond, Concurrency: 1, Max: 10, ColdStart: 4 * time.Millisecond, IdleTimeout: 5 * time.Minute})
	night := 12.0/24 - 5.0/(24*60)
	if r.ZeroShare < night-0.01 || r.ZeroShare > night+0.01 {
		t.Errorf("at zero %.3f of the day, want %.3f", r.ZeroShare, night)
	}
	if r.ColdStarts < 1 {
		t.Errorf("no cold start after the night")
	}
	if want := s.Total() * 0.03; r.BusySeconds < want*0.999 || r.BusySeconds > want*1.001 {
		t.Errorf("busy %.1f s, want %.1f s (every request's processing time)", r.BusySeconds, want)
	}
}

func TestServerlessConstantRateNeverScalesToZero(t *testing.T) {
	s := constant(5, time.Hour)
	r := ReplayElastic(s, ElasticConfig{Processing: 100 * time.Millisecond, Concurrency: 1, Max: 10, ColdStart: 4 * time.Millisecond, IdleTimeout: 5 * time.Minute})
	if r.ZeroShare != 0 || r.ColdStarts != 1 {
		t.Errorf("zero share %.3f, cold starts %d: want 0 and 1 for a constant 5/s with 0.5 in flight", r.ZeroShare, r.ColdStarts)
	}
}
