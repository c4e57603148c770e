package advisor

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/cost"
	"github.com/inferbox/inferbox/internal/meter"
	"github.com/inferbox/inferbox/internal/pricebook"
)

// Ledger modes the recommendations look at (as the ledger spells them).
const (
	ledgerRealtime   = cost.ModeRealtime
	ledgerServerless = cost.ModeServerless
	ledgerAsync      = "async"
)

// Defaults of RecommendOptions.
const (
	// DefaultSavingsThreshold is the least saving worth a recommendation.
	DefaultSavingsThreshold = 0.10
	// DefaultPromptTrim is the prompt trimming the LLM line prices.
	DefaultPromptTrim = 0.25
)

// RecommendOptions says what period to review and how to replay it.
type RecommendOptions struct {
	From, To time.Time // the period [From, To)
	// MemoryMB is the serverless memory size a real-time or async endpoint
	// is replayed with; default 2048.
	MemoryMB int
	// InstanceType is the instance a serverless endpoint is replayed on as
	// real-time; default ml.m5.large.
	InstanceType string
	// ColdStart is a serverless cold start; default 4 ms (docs/benchmarks.md).
	ColdStart time.Duration
	// IdleTimeout is the serverless idle timeout; default 300 s.
	IdleTimeout time.Duration
	// Threshold is the least saving (a fraction) worth recommending;
	// default DefaultSavingsThreshold.
	Threshold float64
	// PromptTrim is the fraction of input tokens the LLM line trims;
	// default DefaultPromptTrim.
	PromptTrim float64
}

func (o RecommendOptions) withDefaults() RecommendOptions {
	if o.MemoryMB == 0 {
		o.MemoryMB = 2048
	}
	if o.InstanceType == "" {
		o.InstanceType = "ml.m5.large"
	}
	if o.ColdStart == 0 {
		o.ColdStart = 4 * time.Millisecond
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 300 * time.Second
	}
	if o.Threshold == 0 {
		o.Threshold = DefaultSavingsThreshold
	}
	if o.PromptTrim == 0 {
		o.PromptTrim = DefaultPromptTrim
	}
	return o
}

// Kinds of recommendation.
const (
	KindMode           = "mode"             // another mode would serve the endpoint for less
	KindLLMInputTokens = "llm-input-tokens" // the input-token share, and trimming prompts
	KindLLMBatch       = "llm-batch"        // traffic nobody waits on, at the batch discount
	KindLLMProvisioned = "llm-provisioned"  // provisioned throughput against on-demand
)

// Alternative is what one other mode would have cost an endpoint.
type Alternative struct {
	Mode        string     `json:"mode"`
	Fits        bool       `json:"fits"`
	RuledBy     string     `json:"ruledBy,omitempty"`
	Nanodollars cost.Nanos `json:"nanodollars"`
	Unpriced    string     `json:"unpriced,omitempty"`
	// ColdStartPercent is the share of requests that would have met a
	// cold start (serverless).
	ColdStartPercent float64 `json:"coldStartPercent"`
	Detail           string  `json:"detail"`
}

// EndpointReview is one endpoint's recorded usage and its replays.
type EndpointReview struct {
	Resource        string        `json:"resource"`
	Mode            string        `json:"mode"` // as recorded
	Invocations     int           `json:"invocations"`
	MeanLatencyMs   float64       `json:"meanLatencyMs"`
	MeanPayloadKB   float64       `json:"meanPayloadKB"`
	InstanceSeconds float64       `json:"instanceSeconds"`
	IdlePercent     float64       `json:"idlePercent"` // instance time with no request running
	Nanodollars     cost.Nanos    `json:"nanodollars"` // what it cost, from cost.Compute
	Unpriced        string        `json:"unpriced,omitempty"`
	Alternatives    []Alternative `json:"alternatives"`
}

// Recommendation is one thing worth changing.
type Recommendation struct {
	Resource  string `json:"resource"`
	Kind      string `json:"kind"`
	Suggested string `json:"suggested,omitempty"` // the mode suggested
	// Nanodollars is what the usage cost; AlternativeNanodollars what it
	// would have cost.
	Nanodollars            cost.Nanos `json:"nanodollars"`
	AlternativeNanodollars cost.Nanos `json:"alternativeNanodollars"`
	SavingsPercent         float64    `json:"savingsPercent"`
	Unpriced               string     `json:"unpriced,omitempty"`
	Text                   string     `json:"text"`
}

// Recommendations is the review of a period.
type Recommendations struct {
	From            time.Time        `json:"from"`
	To              time.Time        `json:"to"`
	Region          string           `json:"region"`
	PricesAsOf      string           `json:"pricesAsOf"`
	Endpoints       []EndpointReview `json:"endpoints"`
	Recommendations []Recommendation `json:"recommendations"`
}

// Recommend reviews the recorded usage of [o.From, o.To): every real-time,
// serverless and async endpoint with traffic is replayed through the other
// modes its latency need allows (a real-time or serverless endpoint is
// interactive: serverless or real-time; an async one also async), priced
// with book and compared with what its usage cost (cost.Compute by
// resource). A mode cheaper by at least o.Threshold is a recommendation.
// LLM rows (with tokens) get the input-token share, the batch and the
// provisioned-throughput lines. A price the book lacks is an explicit
// unpriced line, never zero.
func Recommend(ctx context.Context, l cost.Ledger, book *pricebook.Book, o RecommendOptions) (*Recommendations, error) {
	o = o.withDefaults()
	rep, err := cost.Compute(ctx, l, book, cost.Options{From: o.From, To: o.To, By: cost.ByResource, AllowUnpriced: true})
	if err != nil {
		return nil, err
	}
	invs, err := l.Invocations(ctx, o.From, o.To)
	if err != nil {
		return nil, fmt.Errorf("advisor: %w", err)
	}
	out := &Recommendations{From: o.From, To: o.To, Region: book.Region, PricesAsOf: book.AsOf,
		Endpoints: []EndpointReview{}, Recommendations: []Recommendation{}}
	type key struct{ resource, mode string }
	byEndpoint := map[key][]meter.Invocation{}
	byModel := map[string][]meter.Invocation{}
	for _, v := range invs {
		if v.InputTokens+v.OutputTokens > 0 {
			byModel[v.Resource] = append(byModel[v.Resource], v)
			continue
		}
		switch v.Mode {
		case ledgerRealtime, ledgerServerless, ledgerAsync:
			k := key{v.Resource, v.Mode}
			byEndpoint[k] = append(byEndpoint[k], v)
		}
	}
	keys := slices.SortedFunc(func(yield func(key) bool) {
		for k := range byEndpoint {
			if !yield(k) {
				return
			}
		}
	}, func(a, b key) int {
		return cmp.Or(strings.Compare(a.resource, b.resource), strings.Compare(a.mode, b.mode))
	})
	for _, k := range keys {
		rv := reviewEndpoint(k.resource, k.mode, byEndpoint[k], rep, book, o)
		out.Endpoints = append(out.Endpoints, rv)
		if r, ok := rv.recommend(o.Threshold); ok {
			out.Recommendations = append(out.Recommendations, r)
		}
	}
	for _, m := range slices.Sorted(func(yield func(string) bool) {
		for m := range byModel {
			if !yield(m) {
				return
			}
		}
	}) {
		out.Recommendations = append(out.Recommendations, llmLines(m, byModel[m], book, o)...)
	}
	return out, nil
}

func reviewEndpoint(resource, mode string, invs []meter.Invocation, rep *cost.Report, book *pricebook.Book, o RecommendOptions) EndpointReview {
	rv := EndpointReview{Resource: resource, Mode: mode, Invocations: len(invs)}
	var latency time.Duration
	var bytesIn int64
	var billedMs int64 // serverless billing: each latency rounded up to the ms
	memory := o.MemoryMB
	for _, v := range invs {
		latency += v.ModelLatency
		bytesIn += v.BytesIn
		billedMs += (v.ModelLatency.Microseconds() + 999) / 1000
		if mode == ledgerServerless && v.MemoryMB > 0 {
			memory = v.MemoryMB
		}
	}
	n := float64(len(invs))
	rv.MeanLatencyMs = float64(latency.Microseconds()) / 1e3 / n
	rv.MeanPayloadKB = float64(bytesIn) / 1024 / n
	var unpriced []string
	for _, ln := range rep.Lines {
		if ln.Key != resource {
			continue
		}
		rv.Nanodollars += ln.Nanodollars
		rv.InstanceSeconds += ln.InstanceSeconds
		if ln.Kind == cost.KindUnpriced {
			unpriced = append(unpriced, ln.Unpriced)
		}
	}
	rv.Unpriced = strings.Join(unpriced, "; ")
	if rv.InstanceSeconds > 0 {
		rv.IdlePercent = 100 * (1 - math.Min(latency.Seconds(), rv.InstanceSeconds)/rv.InstanceSeconds)
	}
	proc := max(time.Duration(rv.MeanLatencyMs*float64(time.Millisecond)), time.Millisecond)
	latencyNeed := LatencyInteractive
	if mode == ledgerAsync {
		latencyNeed = LatencyMinutes
	}
	w := Workload{Latency: latencyNeed, PayloadMB: rv.MeanPayloadKB / 1024, MemoryMB: memory, Concurrency: 1}
	times := make([]time.Time, len(invs))
	for i, v := range invs {
		times[i] = v.Time
	}
	s := TraceSeries(times, o.From, o.To, Tick)
	for _, m := range []string{ModeRealtime, ModeServerless, ModeAsync} {
		if m == advisorMode(mode) {
			continue
		}
		alt := Alternative{Mode: m, RuledBy: ruledOut(m, w, proc)}
		alt.Fits = alt.RuledBy == ""
		if !alt.Fits {
			rv.Alternatives = append(rv.Alternatives, alt)
			continue
		}
		switch m {
		case ModeServerless:
			r := ReplayElastic(s, ElasticConfig{Processing: proc, Concurrency: 1, Max: 100, ColdStart: o.ColdStart, IdleTimeout: o.IdleTimeout})
			alt.ColdStartPercent = 100 * r.ColdShare
			alt.Detail = fmt.Sprintf("%d MB, %d cold starts, at zero %.0f%% of the time, up to %d instances",
				memory, r.ColdStarts, 100*r.ZeroShare, r.MaxInstances)
			if p, err := book.ServerlessPerGBSecond(memory); err != nil {
				alt.Unpriced = err.Error()
			} else {
				alt.Nanodollars = cost.Nanos(math.Round(float64(billedMs) / 1e3 * float64(memory) / 1024 * p * 1e9))
			}
		case ModeRealtime, ModeAsync:
			var r Replay
			if m == ModeRealtime {
				r = ReplayRealtime(s, RealtimeConfig{Processing: proc, Concurrency: 1, Min: 1, Max: 100,
					Target: 0.7 * 60 / proc.Seconds()})
			} else {
				r = ReplayElastic(s, ElasticConfig{Processing: proc, Concurrency: 1, Max: 100, ColdStart: o.ColdStart, IdleTimeout: o.IdleTimeout})
			}
			alt.Detail = fmt.Sprintf("%s: %.2f instance-hours, up to %d instances", o.InstanceType, r.InstanceSeconds/3600, r.MaxInstances)
			if h, err := book.InstanceHourly(o.InstanceType); err != nil {
				alt.Unpriced = err.Error()
			} else {
				alt.Nanodollars = cost.Nanos(math.Round(r.InstanceSeconds * h / 3600 * 1e9))
			}
		}
		rv.Alternatives = append(rv.Alternatives, alt)
	}
	return rv
}

// advisorMode is the advisor's name for a ledger mode.
func advisorMode(ledgerMode string) string {
	switch ledgerMode {
	case ledgerRealtime:
		return ModeRealtime
	case ledgerServerless:
		return ModeServerless
	}
	return ledgerMode
}

// recommend picks the cheapest priced alternative that fits and saves at
// least threshold.
func (rv EndpointReview) recommend(threshold float64) (Recommendation, bool) {
	if rv.Unpriced != "" || rv.Nanodollars <= 0 {
		return Recommendation{}, false
	}
	var best *Alternative
	for i := range rv.Alternatives {
		a := &rv.Alternatives[i]
		if a.Fits && a.Unpriced == "" && (best == nil || a.Nanodollars < best.Nanodollars) {
			best = a
		}
	}
	if best == nil || float64(best.Nanodollars) > float64(rv.Nanodollars)*(1-threshold) {
		return Recommendation{}, false
	}
	save := 100 * (1 - float64(best.Nanodollars)/float64(rv.Nanodollars))
	r := Recommendation{Resource: rv.Resource, Kind: KindMode, Suggested: best.Mode, Nanodollars: rv.Nanodollars,
		AlternativeNanodollars: best.Nanodollars, SavingsPercent: save}
	cut := fmt.Sprintf("%s would have cost %s (−%.0f%%) instead of %s", best.Mode, dollars(best.Nanodollars), save, dollars(rv.Nanodollars))
	switch {
	case best.Mode == ModeServerless:
		r.Text = fmt.Sprintf("endpoint %s was idle %.0f%% of the time: %s, adding a cold start to %s%% of requests",
			rv.Resource, rv.IdlePercent, cut, pct(best.ColdStartPercent))
	case rv.Mode == ledgerServerless:
		r.Text = fmt.Sprintf("endpoint %s is busy enough for always-on instances (%d requests, %.0f ms each): %s, with no cold starts",
			rv.Resource, rv.Invocations, rv.MeanLatencyMs, cut)
	default:
		r.Text = fmt.Sprintf("endpoint %s (%s, idle %.0f%% of the time): %s", rv.Resource, rv.Mode, rv.IdlePercent, cut)
	}
	return r, true
}

// pct prints a small percentage with two significant digits.
func pct(p float64) string {
	if p >= 10 {
		return fmt.Sprintf("%.0f", p)
	}
	return fmt.Sprintf("%.2g", p)
}

// dollars is n rounded to the cent, or to four places under a dollar.
func dollars(n cost.Nanos) string {
	if n.USD() < 1 {
		return fmt.Sprintf("$%.4f", n.USD())
	}
	return fmt.Sprintf("$%.2f", n.USD())
}

// llmLines are the LLM lines for one model's token traffic.
func llmLines(model string, invs []meter.Invocation, book *pricebook.Book, o RecommendOptions) []Recommendation {
	price, err := book.Tokens(model)
	if err != nil {
		return []Recommendation{{Resource: model, Kind: KindLLMInputTokens, Unpriced: err.Error(),
			Text: fmt.Sprintf("model %s: %d requests with tokens are UNPRICED: %v", model, len(invs), err)}}
	}
	var in, outTok, waitIn, waitOut float64
	var batchRows, waitRows int
	for _, v := range invs {
		if strings.Contains(v.Mode, "batch") {
			batchRows++ // already at the batch price: not on-demand spend
			continue
		}
		in += float64(v.InputTokens)
		outTok += float64(v.OutputTokens)
		if v.Mode == ledgerAsync {
			// Nobody waits on an async request: batch-eligible.
			waitRows++
			waitIn += float64(v.InputTokens)
			waitOut += float64(v.OutputTokens)
		}
	}
	nanos := func(i, o float64) cost.Nanos {
		return cost.Nanos(math.Round((i*price.InputPer1KUSD + o*price.OutputPer1KUSD) / 1000 * 1e9))
	}
	total, inCost := nanos(in, outTok), nanos(in, 0)
	if total == 0 {
		return nil // only batch traffic (already discounted), or no tokens
	}
	trim := cost.Nanos(math.Round(float64(inCost) * o.PromptTrim))
	out := []Recommendation{{Resource: model, Kind: KindLLMInputTokens, Nanodollars: total,
		AlternativeNanodollars: total - trim, SavingsPercent: 100 * float64(trim) / float64(total),
		Text: fmt.Sprintf("model %s: input tokens are %.0f%% of its %s token cost (%.0f in, %.0f out); trimming prompts by %.0f%% would save %s (−%.1f%%)",
			model, 100*float64(inCost)/float64(total), dollars(total), in, outTok, 100*o.PromptTrim, dollars(trim), 100*float64(trim)/float64(total))}}
	d := book.BatchDiscount()
	if waitRows > 0 {
		c := nanos(waitIn, waitOut)
		save := cost.Nanos(math.Round(float64(c) * d))
		out = append(out, Recommendation{Resource: model, Kind: KindLLMBatch, Suggested: ModeLLMBatch, Nanodollars: c,
			AlternativeNanodollars: c - save, SavingsPercent: 100 * d,
			Text: fmt.Sprintf("model %s: %d requests nobody waited on (async) cost %s: batch inference would serve them for %s (−%.0f%%)",
				model, waitRows, dollars(c), dollars(c-save), 100*d)})
	} else {
		out = append(out, Recommendation{Resource: model, Kind: KindLLMBatch, Suggested: ModeLLMBatch, Nanodollars: total,
			AlternativeNanodollars: total - cost.Nanos(math.Round(float64(total)*d)), SavingsPercent: 100 * d,
			Text: fmt.Sprintf("model %s: every request was waited on; any that need not be (nightly jobs, backfills) would cost %.0f%% less as batch inference",
				model, 100*d)})
	}
	hours := o.To.Sub(o.From).Hours()
	monthly := cost.Nanos(math.Round(float64(total) * HoursPerMonth / hours))
	h, err := book.ModelUnitHourly(model, "none")
	if err != nil {
		out = append(out, Recommendation{Resource: model, Kind: KindLLMProvisioned, Suggested: ModeLLMProvisioned, Nanodollars: monthly,
			Unpriced: err.Error(),
			Text:     fmt.Sprintf("model %s: provisioned throughput is UNPRICED (%v): cannot say whether it beats on-demand at %s/month", model, err, dollars(monthly))})
		return out
	}
	pt := cost.Nanos(math.Round(h * HoursPerMonth * 1e9))
	r := Recommendation{Resource: model, Kind: KindLLMProvisioned, Nanodollars: monthly, AlternativeNanodollars: pt}
	if pt < monthly {
		r.Suggested = ModeLLMProvisioned
		r.SavingsPercent = 100 * (1 - float64(pt)/float64(monthly))
		r.Text = fmt.Sprintf("model %s: at this volume on-demand costs %s/month; one model unit of provisioned throughput (no commitment) costs %s/month (−%.0f%%), if one unit carries the peak",
			model, dollars(monthly), dollars(pt), r.SavingsPercent)
	} else {
		r.Text = fmt.Sprintf("model %s: on-demand at %s/month is cheaper than one model unit of provisioned throughput (%s/month): stay on-demand",
			model, dollars(monthly), dollars(pt))
	}
	return append(out, r)
}
