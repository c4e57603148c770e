package advisor

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/pricebook"
)

// Modes.
const (
	ModeRealtime       = "real-time"
	ModeServerless     = "serverless"
	ModeAsync          = "async"
	ModeBatch          = "batch"
	ModeLLMOnDemand    = "llm-on-demand"
	ModeLLMBatch       = "llm-batch"
	ModeLLMProvisioned = "llm-provisioned"
)

// Limits of each mode (SageMaker's documented quotas).
const (
	RealtimeMaxPayloadMB   = 6
	ServerlessMaxPayloadMB = 4
	AsyncMaxPayloadMB      = 1024
	BatchMaxRecordMB       = 100
	RealtimeMaxProcessing  = 60 * time.Second
	AsyncMaxProcessing     = time.Hour
	BatchMaxProcessing     = time.Hour
	ServerlessMaxMemoryMB  = 6144
)

// HoursPerMonth is the month prices are quoted for (AWS: 730).
const HoursPerMonth = 730

// Rules is the decision text `inferbox advise` prints.
const Rules = `Decision rules:
  1. Someone is waiting (latency interactive): real-time, or LLM on-demand.
  2. Interactive but spiky, idle at least 25% of the time (5-minute windows): serverless, which scales to zero.
  3. Payload over 6 MB (4 MB for serverless) or processing over 60 s: async (up to 1 GB, 1 h).
  4. A whole dataset with no deadline (latency none, dataset): batch (records up to 100 MB); otherwise none → async.
  5. A custom (fine-tuned) Bedrock-style LLM: provisioned throughput, the only mode that serves it.
  6. A foundation LLM: on-demand per token; batch (the book's discount) with no deadline; provisioned throughput when cheaper at steady volume.
  7. Hardware: Inferentia (ml.inf1/inf2) for inference, Trainium (ml.trn1) for training.`

// ErrNoMode is returned when no mode can serve a workload.
var ErrNoMode = errors.New("no mode can serve this workload")

// Row is one mode in the table.
type Row struct {
	Mode    string
	Fits    bool
	RuledBy string // why it does not fit
	// MonthlyUSD is the replayed monthly cost; Unpriced says why there is
	// none (a missing price), never a silent zero.
	MonthlyUSD float64
	Unpriced   string
	Latency    string // expected latency
	Detail     string // what the replay saw
}

// Advice is the answer for a workload.
type Advice struct {
	Workload    Workload
	Recommended string
	Reasons     []string
	Notes       []string // hardware, cheaper alternatives, trace gaps
	Rows        []Row
	Traffic     string // a one-line summary
}

// Advise applies the rules and replays the traffic through every mode
// that fits.
func Advise(w Workload, book *pricebook.Book) (*Advice, error) {
	w = w.withDefaults()
	if err := w.validate(); err != nil {
		return nil, err
	}
	s := SeriesOf(w.Traffic)
	total := s.Total()
	days := s.Duration().Hours() / 24
	month := HoursPerMonth / s.Duration().Hours()
	a := &Advice{Workload: w}
	a.Traffic = fmt.Sprintf("%.0f requests over %.3g day(s) (%.4g/s mean, %.4g/s peak minute), idle %.0f%% of 5-minute windows",
		total, days, total/s.Duration().Seconds(), s.Peak(), 100*s.IdleShare())
	a.Notes = append(a.Notes, s.Gaps...)
	if total == 0 {
		return nil, fmt.Errorf("%w: the traffic has no requests", ErrNoMode)
	}
	proc := time.Duration(w.ProcessingMs * float64(time.Millisecond))
	modes := []string{ModeRealtime, ModeServerless, ModeAsync, ModeBatch}
	if w.LLM != nil {
		modes = []string{ModeLLMOnDemand, ModeLLMBatch, ModeLLMProvisioned}
	}
	for _, m := range modes {
		row := Row{Mode: m}
		row.RuledBy = ruledOut(m, w, proc)
		row.Fits = row.RuledBy == ""
		if row.Fits {
			price(&row, w, s, proc, month, book)
		}
		a.Rows = append(a.Rows, row)
	}
	if err := a.recommend(w, s); err != nil {
		return nil, err
	}
	a.hardware(w, book)
	return a, nil
}

func latencyRank(l string) int {
	switch l {
	case LatencyInteractive:
		return 0
	case LatencyMinutes:
		return 1
	}
	return 2
}

// ruledOut is the constraint that rules mode m out, or "".
func ruledOut(m string, w Workload, proc time.Duration) string {
	need := latencyRank(w.Latency)
	switch m {
	case ModeRealtime:
		switch {
		case w.PayloadMB > RealtimeMaxPayloadMB:
			return fmt.Sprintf("payload %g MB > %d MB", w.PayloadMB, RealtimeMaxPayloadMB)
		case proc > RealtimeMaxProcessing:
			return fmt.Sprintf("processing %s > %s", proc, RealtimeMaxProcessing)
		}
	case ModeServerless:
		switch {
		case w.PayloadMB > ServerlessMaxPayloadMB:
			return fmt.Sprintf("payload %g MB > %d MB", w.PayloadMB, ServerlessMaxPayloadMB)
		case proc > RealtimeMaxProcessing:
			return fmt.Sprintf("processing %s > %s", proc, RealtimeMaxProcessing)
		case w.MemoryMB > ServerlessMaxMemoryMB:
			return fmt.Sprintf("memory %d MB > %d MB", w.MemoryMB, ServerlessMaxMemoryMB)
		}
	case ModeAsync:
		switch {
		case need < 1:
			return "queued: results in seconds to minutes, someone is waiting"
		case w.PayloadMB > AsyncMaxPayloadMB:
			return fmt.Sprintf("payload %g MB > %d MB", w.PayloadMB, AsyncMaxPayloadMB)
		case proc > AsyncMaxProcessing:
			return fmt.Sprintf("processing %s > %s", proc, AsyncMaxProcessing)
		}
	case ModeBatch:
		switch {
		case need < 2:
			return "a job over the whole dataset: no per-request deadline"
		case w.PayloadMB > BatchMaxRecordMB:
			return fmt.Sprintf("record %g MB > %d MB (MaxPayloadInMB)", w.PayloadMB, BatchMaxRecordMB)
		case proc > BatchMaxProcessing:
			return fmt.Sprintf("processing %s > %s", proc, BatchMaxProcessing)
		}
	case ModeLLMOnDemand:
		if w.LLM.Custom {
			return "custom (fine-tuned) models run only on provisioned throughput"
		}
	case ModeLLMBatch:
		switch {
		case w.LLM.Custom:
			return "custom (fine-tuned) models run only on provisioned throughput"
		case need < 2:
			return "batch jobs finish within hours: someone is waiting"
		}
	}
	return ""
}

// price replays the traffic through mode row.Mode and prices it.
func price(row *Row, w Workload, s Series, proc time.Duration, month float64, book *pricebook.Book) {
	unpriced := func(err error) { row.Unpriced = err.Error() }
	switch row.Mode {
	case ModeRealtime:
		r := ReplayRealtime(s, RealtimeConfig{Processing: proc, Concurrency: w.Concurrency, Min: 1, Max: w.MaxInstances,
			Target: w.TargetUtilization * float64(w.Concurrency) * 60 / proc.Seconds()})
		row.Latency = fmt.Sprint((proc + r.MeanWait).Round(time.Millisecond))
		row.Detail = fmt.Sprintf("%s: %.1f instance-hours/day, 1-%d instances, %d scaling actions", w.InstanceType,
			r.InstanceSeconds/3600/(s.Duration().Hours()/24), r.MaxInstances, r.ScaleActions)
		if h, err := book.InstanceHourly(w.InstanceType); err != nil {
			unpriced(err)
		} else {
			row.MonthlyUSD = r.InstanceSeconds / 3600 * h * month
		}
	case ModeServerless:
		r := ReplayElastic(s, ElasticConfig{Processing: proc, Concurrency: 1, Max: w.MaxInstances,
			ColdStart: time.Duration(w.ColdStartMs * float64(time.Millisecond)), IdleTimeout: time.Duration(w.IdleTimeoutS * float64(time.Second))})
		row.Latency = fmt.Sprintf("%s (+%s cold start for %.2g%% of requests)", (proc + r.MeanWait).Round(time.Millisecond),
			time.Duration(w.ColdStartMs*float64(time.Millisecond)), 100*r.ColdShare)
		row.Detail = fmt.Sprintf("%d MB, at zero %.0f%% of the time, %d cold starts, up to %d instances", w.MemoryMB, 100*r.ZeroShare, r.ColdStarts, r.MaxInstances)
		if p, err := book.ServerlessPerGBSecond(w.MemoryMB); err != nil {
			unpriced(err)
		} else {
			row.MonthlyUSD = r.BusySeconds * float64(w.MemoryMB) / 1024 * p * month
		}
	case ModeAsync:
		r := ReplayElastic(s, ElasticConfig{Processing: proc, Concurrency: w.Concurrency, Max: w.MaxInstances,
			ColdStart: time.Duration(w.ColdStartMs * float64(time.Millisecond)), IdleTimeout: time.Duration(w.IdleTimeoutS * float64(time.Second))})
		row.Latency = fmt.Sprint((proc + r.MeanWait).Round(time.Millisecond)) + " (queued)"
		row.Detail = fmt.Sprintf("%s: %.1f instance-hours/day, at zero %.0f%% of the time", w.InstanceType,
			r.InstanceSeconds/3600/(s.Duration().Hours()/24), 100*r.ZeroShare)
		if h, err := book.InstanceHourly(w.InstanceType); err != nil {
			unpriced(err)
		} else {
			row.MonthlyUSD = r.InstanceSeconds / 3600 * h * month
		}
	case ModeBatch:
		sec := s.Total() * proc.Seconds() / float64(w.Concurrency)
		perDay := sec / 3600 / (s.Duration().Hours() / 24)
		row.Latency = fmt.Sprintf("job of %.2g h on one instance", perDay)
		row.Detail = fmt.Sprintf("%s: %.2g instance-hours/day", w.InstanceType, perDay)
		if h, err := book.InstanceHourly(w.InstanceType); err != nil {
			unpriced(err)
		} else {
			row.MonthlyUSD = sec / 3600 * h * month
		}
	case ModeLLMOnDemand, ModeLLMBatch:
		l := w.LLM
		row.Latency = fmt.Sprint(proc.Round(time.Millisecond))
		if row.Mode == ModeLLMBatch {
			row.Latency = "hours (batch job)"
		}
		reqs := s.Total() * month
		row.Detail = fmt.Sprintf("%s: %.3g requests/month × (%g in + %g out) tokens", l.Model, reqs, l.InputTokens, l.OutputTokens)
		m, err := book.Tokens(l.Model)
		if err != nil {
			unpriced(err)
			return
		}
		inUSD := reqs * l.InputTokens / 1000 * m.InputPer1KUSD
		row.MonthlyUSD = inUSD + reqs*l.OutputTokens/1000*m.OutputPer1KUSD
		if row.MonthlyUSD > 0 {
			row.Detail += fmt.Sprintf("; input tokens %.0f%% of cost", 100*inUSD/row.MonthlyUSD)
		}
		if row.Mode == ModeLLMBatch {
			row.MonthlyUSD *= 1 - book.BatchDiscount()
			row.Detail += fmt.Sprintf("; batch discount %.0f%%", 100*book.BatchDiscount())
		}
	case ModeLLMProvisioned:
		l := w.LLM
		row.Latency = fmt.Sprint(proc.Round(time.Millisecond))
		row.Detail = fmt.Sprintf("%s: %d model unit(s), term %s, %d h/month", l.Model, l.ModelUnits, l.Term, HoursPerMonth)
		if h, err := book.ModelUnitHourly(l.Model, l.Term); err != nil {
			unpriced(err)
		} else {
			row.MonthlyUSD = float64(l.ModelUnits) * h * HoursPerMonth
		}
	}
}

func (a *Advice) row(m string) *Row {
	for i := range a.Rows {
		if a.Rows[i].Mode == m {
			return &a.Rows[i]
		}
	}
	return nil
}

func (a *Advice) fits(m string) bool {
	r := a.row(m)
	return r != nil && r.Fits
}

// recommend applies the rules in order.
func (a *Advice) recommend(w Workload, s Series) error {
	var fitting, why []string
	for _, r := range a.Rows {
		if r.Fits {
			fitting = append(fitting, r.Mode)
		} else {
			why = append(why, r.Mode+": "+r.RuledBy)
		}
	}
	if len(fitting) == 0 {
		return fmt.Errorf("%w: %s", ErrNoMode, strings.Join(why, "; "))
	}
	say := func(m, reason string) { a.Recommended = m; a.Reasons = append(a.Reasons, reason) }
	proc := time.Duration(w.ProcessingMs * float64(time.Millisecond))
	if w.LLM != nil {
		switch {
		case w.LLM.Custom:
			say(ModeLLMProvisioned, "rule 5: a custom (fine-tuned) model runs only on provisioned throughput")
		case w.Latency == LatencyNone:
			say(ModeLLMBatch, fmt.Sprintf("rule 6: no deadline, so batch inference at %.0f%% off the on-demand token price", 100*bookDiscount(a)))
		default:
			say(ModeLLMOnDemand, "rule 1/6: someone is waiting: on-demand, paid per token")
			od, pt := a.row(ModeLLMOnDemand), a.row(ModeLLMProvisioned)
			if od.Unpriced == "" && pt.Unpriced == "" && pt.MonthlyUSD < od.MonthlyUSD {
				say(ModeLLMProvisioned, fmt.Sprintf("rule 6: at this steady volume provisioned throughput ($%.2f) is cheaper than on-demand ($%.2f)", pt.MonthlyUSD, od.MonthlyUSD))
			}
		}
	} else {
		idle := s.IdleShare()
		switch {
		case w.PayloadMB > RealtimeMaxPayloadMB || proc > RealtimeMaxProcessing:
			if w.Latency == LatencyNone && w.Dataset && a.fits(ModeBatch) {
				say(ModeBatch, "rule 4: a whole dataset with no deadline")
			} else {
				say(ModeAsync, fmt.Sprintf("rule 3: payload %g MB or processing %s is over real-time's limits (%d MB, %s)", w.PayloadMB, proc, RealtimeMaxPayloadMB, RealtimeMaxProcessing))
			}
		case w.Latency == LatencyInteractive && idle >= 0.25 && a.fits(ModeServerless):
			say(ModeServerless, fmt.Sprintf("rule 2: someone is waiting, and the traffic is idle %.0f%% of the time: serverless scales to zero", 100*idle))
		case w.Latency == LatencyInteractive:
			say(ModeRealtime, fmt.Sprintf("rule 1: someone is waiting and the traffic is steady (idle %.0f%% of the time)", 100*idle))
		case w.Latency == LatencyNone && w.Dataset:
			say(ModeBatch, "rule 4: a whole dataset with no deadline")
		default:
			say(ModeAsync, "rule 3/4: no one waits on each request: queue it, and scale to zero when the queue is empty")
		}
	}
	if !a.fits(a.Recommended) {
		r := a.row(a.Recommended)
		a.Reasons = append(a.Reasons, fmt.Sprintf("but %s is ruled out (%s): %s fits instead", a.Recommended, r.RuledBy, fitting[0]))
		a.Recommended = fitting[0]
	}
	rec := a.row(a.Recommended)
	for _, r := range a.Rows {
		if r.Fits && r.Unpriced == "" && rec.Unpriced == "" && r.MonthlyUSD < rec.MonthlyUSD*0.9 && r.Mode != rec.Mode {
			a.Notes = append(a.Notes, fmt.Sprintf("%s would cost $%.2f/month (%.0f%% less) with latency %s", r.Mode, r.MonthlyUSD,
				100*(1-r.MonthlyUSD/rec.MonthlyUSD), r.Latency))
		}
	}
	return nil
}

func bookDiscount(a *Advice) float64 {
	od, b := a.row(ModeLLMOnDemand), a.row(ModeLLMBatch)
	if od == nil || b == nil || od.MonthlyUSD == 0 || od.Unpriced != "" || b.Unpriced != "" {
		return 0.5
	}
	return 1 - b.MonthlyUSD/od.MonthlyUSD
}

// hardware adds the rule-7 note.
func (a *Advice) hardware(w Workload, book *pricebook.Book) {
	if w.LLM != nil {
		return
	}
	in, err := book.Instance(w.InstanceType)
	if err != nil {
		return
	}
	switch in.Purpose {
	case "training":
		a.Notes = append(a.Notes, fmt.Sprintf("rule 7: %s is training hardware (Trainium); serve inference on Inferentia (ml.inf2) or a general instance", w.InstanceType))
	case "gpu-inference":
		if h, err := book.InstanceHourly("ml.inf2.xlarge"); err == nil {
			a.Notes = append(a.Notes, fmt.Sprintf("rule 7: Inferentia ml.inf2.xlarge costs $%.3f/h against %s's $%.3f/h, if the model compiles for it (Neuron)", h, w.InstanceType, in.HourlyUSD))
		}
	}
}
