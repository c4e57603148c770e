package advisor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/inferbox/inferbox/internal/meter"
)

// Latency needs.
const (
	LatencyInteractive = "interactive" // someone is waiting: seconds
	LatencyMinutes     = "minutes"     // a result within minutes
	LatencyNone        = "none"        // no deadline beyond the day
)

// MaxRate is the largest request rate accepted, in requests per second: a
// higher one is almost certainly a unit mistake.
const MaxRate = 100_000

// Workload describes what is to be served. YAML or JSON.
type Workload struct {
	Name    string `yaml:"name"`
	Latency string `yaml:"latency"` // interactive, minutes, none
	// PayloadMB is the request payload size.
	PayloadMB float64 `yaml:"payloadMB"`
	// ProcessingMs is the model's processing time per request.
	ProcessingMs float64 `yaml:"processingMs"`
	// MemoryMB is the model's memory (serverless memory size); default 2048.
	MemoryMB int `yaml:"memoryMB"`
	// InstanceType for instance-based modes; default ml.m5.large.
	InstanceType string `yaml:"instanceType"`
	// Concurrency is the requests one instance runs at once; default 1.
	Concurrency int `yaml:"concurrency"`
	// MaxInstances caps every mode's instance count; default 100.
	MaxInstances int `yaml:"maxInstances"`
	// Dataset says the traffic is a whole dataset processed at once.
	Dataset bool    `yaml:"dataset"`
	Traffic Traffic `yaml:"traffic"`
	LLM     *LLM    `yaml:"llm"`
	// ColdStartMs is a serverless cold start; default from
	// docs/benchmarks.md: 4 ms (built-in XGBoost), 66 ms if BYO is set.
	ColdStartMs float64 `yaml:"coldStartMs"`
	BYO         bool    `yaml:"byo"`
	// IdleTimeoutS is the serverless and async idle timeout; default 300,
	// the server's default.
	IdleTimeoutS float64 `yaml:"idleTimeoutS"`
	// TargetUtilization sets the real-time policy's target as a fraction
	// of an instance's throughput; default 0.7.
	TargetUtilization float64 `yaml:"targetUtilization"`
}

// LLM describes a large-language-model workload.
type LLM struct {
	Model        string  `yaml:"model"`  // foundation model id in the price book
	Custom       bool    `yaml:"custom"` // fine-tuned: provisioned throughput only
	InputTokens  float64 `yaml:"inputTokens"`
	OutputTokens float64 `yaml:"outputTokens"`
	ModelUnits   int     `yaml:"modelUnits"` // provisioned throughput; default 1
	Term         string  `yaml:"term"`       // none, 1month, 6month; default none
}

// Traffic is a rate profile, a trace, or both absent and DailyRequests.
// Exactly one of Rate, Hourly, Trace/Times, DailyRequests is set.
type Traffic struct {
	// Rate is a constant rate in requests per second.
	Rate *float64 `yaml:"rate"`
	// Hourly is requests per second for each hour of a day (24 values).
	Hourly []float64 `yaml:"hourly"`
	// DailyRequests is a volume per day, spread evenly (a dataset).
	DailyRequests float64 `yaml:"dailyRequests"`
	// Trace is a file of request timestamps, one a line: RFC 3339 or
	// seconds (decimal) since any origin. Relative to the workload file.
	Trace string `yaml:"trace"`
	// Times is the trace read from Trace or from the ledger.
	Times []time.Time `yaml:"-"`
}

// ParseWorkload reads a workload (YAML or JSON); dir resolves a relative
// trace path.
func ParseWorkload(r io.Reader, dir string) (Workload, error) {
	var w Workload
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&w); err != nil && !errors.Is(err, io.EOF) {
		return w, fmt.Errorf("workload: %w", err)
	}
	if w.Traffic.Trace != "" {
		p := w.Traffic.Trace
		if dir != "" && !strings.HasPrefix(p, "/") {
			p = dir + "/" + p
		}
		f, err := os.Open(p)
		if err != nil {
			return w, fmt.Errorf("workload: traffic.trace: %w", err)
		}
		defer f.Close()
		if w.Traffic.Times, err = ParseTrace(f); err != nil {
			return w, fmt.Errorf("workload: traffic.trace %s: %w", w.Traffic.Trace, err)
		}
	}
	return w, nil
}

// ParseTrace reads request timestamps, one a line (RFC 3339, or decimal
// seconds); blank lines and lines starting with # are skipped. The
// timestamps must not go backwards.
func ParseTrace(r io.Reader) ([]time.Time, error) {
	var out []time.Time
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
				return nil, fmt.Errorf("line %d: %q is neither an RFC 3339 time nor non-negative seconds", n, s)
			}
			t = time.Unix(0, 0).UTC().Add(time.Duration(f * float64(time.Second)))
		}
		if len(out) > 0 && t.Before(out[len(out)-1]) {
			return nil, fmt.Errorf("line %d: %s is before the previous timestamp %s: a trace must be in time order",
				n, t.Format(time.RFC3339Nano), out[len(out)-1].Format(time.RFC3339Nano))
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("the trace has no timestamps")
	}
	return out, nil
}

// TimesFromInvocations is the trace of one endpoint's recorded traffic in
// the usage ledger (meter.Ledger.Invocations), in time order.
func TimesFromInvocations(invs []meter.Invocation, resource string) []time.Time {
	var out []time.Time
	for _, in := range invs {
		if in.Resource == resource {
			out = append(out, in.Time)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// withDefaults fills zero fields.
func (w Workload) withDefaults() Workload {
	if w.MemoryMB == 0 {
		w.MemoryMB = 2048
	}
	if w.InstanceType == "" {
		w.InstanceType = "ml.m5.large"
	}
	if w.Concurrency == 0 {
		w.Concurrency = 1
	}
	if w.MaxInstances == 0 {
		w.MaxInstances = 100
	}
	if w.ColdStartMs == 0 {
		w.ColdStartMs = 4
		if w.BYO {
			w.ColdStartMs = 66
		}
	}
	if w.IdleTimeoutS == 0 {
		w.IdleTimeoutS = 300
	}
	if w.TargetUtilization == 0 {
		w.TargetUtilization = 0.7
	}
	if w.LLM != nil {
		l := *w.LLM
		if l.ModelUnits == 0 {
			l.ModelUnits = 1
		}
		if l.Term == "" {
			l.Term = "none"
		}
		if l.Custom && l.Model == "" {
			l.Model = "custom"
		}
		w.LLM = &l
	}
	return w
}

// validate checks a workload with defaults filled; errors name the field.
func (w Workload) validate() error {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) || v < 0 }
	switch w.Latency {
	case LatencyInteractive, LatencyMinutes, LatencyNone:
	default:
		return fmt.Errorf("workload: latency %q: must be interactive, minutes or none", w.Latency)
	}
	switch {
	case bad(w.PayloadMB):
		return fmt.Errorf("workload: payloadMB %v: must be a non-negative size", w.PayloadMB)
	case bad(w.ProcessingMs) || w.ProcessingMs == 0:
		return fmt.Errorf("workload: processingMs %v: must be positive", w.ProcessingMs)
	case w.MemoryMB < 0, w.Concurrency < 0, w.MaxInstances < 0:
		return fmt.Errorf("workload: memoryMB, concurrency and maxInstances must be positive (got %d, %d, %d)", w.MemoryMB, w.Concurrency, w.MaxInstances)
	case bad(w.ColdStartMs), bad(w.IdleTimeoutS):
		return fmt.Errorf("workload: coldStartMs %v and idleTimeoutS %v must be non-negative", w.ColdStartMs, w.IdleTimeoutS)
	case !(w.TargetUtilization > 0 && w.TargetUtilization <= 1):
		return fmt.Errorf("workload: targetUtilization %v: must be in (0, 1]", w.TargetUtilization)
	}
	if l := w.LLM; l != nil {
		if bad(l.InputTokens) || bad(l.OutputTokens) || l.InputTokens+l.OutputTokens == 0 {
			return fmt.Errorf("workload: llm.inputTokens %v, llm.outputTokens %v: must be non-negative, not both zero", l.InputTokens, l.OutputTokens)
		}
		if l.Model == "" {
			return errors.New("workload: llm.model: name the foundation model (or set llm.custom)")
		}
		if l.ModelUnits < 0 {
			return fmt.Errorf("workload: llm.modelUnits %d: must be positive", l.ModelUnits)
		}
	}
	return w.Traffic.validate()
}

func (t Traffic) validate() error {
	set := 0
	if t.Rate != nil {
		set++
		if err := checkRate("traffic.rate", *t.Rate); err != nil {
			return err
		}
	}
	if t.Hourly != nil {
		set++
		if len(t.Hourly) != 24 {
			return fmt.Errorf("workload: traffic.hourly has %d values: give 24, one rate (requests per second) per hour", len(t.Hourly))
		}
		for i, r := range t.Hourly {
			if err := checkRate(fmt.Sprintf("traffic.hourly[%d]", i), r); err != nil {
				return err
			}
		}
	}
	if t.DailyRequests != 0 {
		set++
		if err := checkRate("traffic.dailyRequests", t.DailyRequests/86400); err != nil {
			return err
		}
	}
	if t.Times != nil || t.Trace != "" {
		set++
		if len(t.Times) > 0 && !t.Times[len(t.Times)-1].After(t.Times[0]) && len(t.Times) > 1 {
			return errors.New("workload: traffic.trace: every timestamp is the same instant: a rate cannot be read from it")
		}
	}
	switch set {
	case 0:
		return errors.New("workload: traffic: give one of rate, hourly, dailyRequests or trace")
	case 1:
		return nil
	}
	return errors.New("workload: traffic: give only one of rate, hourly, dailyRequests or trace")
}

func checkRate(key string, r float64) error {
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0):
		return fmt.Errorf("workload: %s %v: not a number", key, r)
	case r < 0:
		return fmt.Errorf("workload: %s %v: a rate cannot be negative", key, r)
	case r > MaxRate:
		return fmt.Errorf("workload: %s %v requests per second: absurd (more than %d/s); check the unit (per second, not per day)", key, r, MaxRate)
	}
	return nil
}
