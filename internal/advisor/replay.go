package advisor

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/inferbox/inferbox/internal/autoscale"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/pool"
)

// Tick is the replay's default step: the autoscaler's default tick.
const Tick = 5 * time.Second

// MaxGap is the longest silence in a trace that is not reported.
const MaxGap = time.Hour

// Series is traffic as arrivals per Step from Start.
type Series struct {
	Start    time.Time
	Arrivals []float64
	// Step is the length of one arrival bucket; zero means Tick.
	Step time.Duration
	// Gaps are the silences in a trace longer than MaxGap.
	Gaps []string
}

// Duration is the span the series covers.
func (s Series) Duration() time.Duration { return time.Duration(len(s.Arrivals)) * s.step() }

func (s Series) step() time.Duration {
	if s.Step <= 0 {
		return Tick
	}
	return s.Step
}

// TraceSeries buckets arrival times into steps of step over [from, to);
// times outside are dropped.
func TraceSeries(times []time.Time, from, to time.Time, step time.Duration) Series {
	s := Series{Start: from, Step: step, Arrivals: make([]float64, int(math.Ceil(float64(to.Sub(from))/float64(step))))}
	for _, at := range times {
		if i := int(at.Sub(from) / step); at.Compare(from) >= 0 && i < len(s.Arrivals) {
			s.Arrivals[i]++
		}
	}
	return s
}

// Rebin returns the series in buckets of step, spreading each bucket's
// arrivals evenly over the time it covers.
func (s Series) Rebin(step time.Duration) Series {
	from := s.step()
	if step == from {
		return s
	}
	out := Series{Start: s.Start, Step: step, Gaps: s.Gaps,
		Arrivals: make([]float64, int(math.Ceil(float64(s.Duration())/float64(step))))}
	for i, a := range s.Arrivals {
		lo := time.Duration(i) * from
		hi := lo + from
		for j := int(lo / step); j < len(out.Arrivals) && time.Duration(j)*step < hi; j++ {
			blo, bhi := max(lo, time.Duration(j)*step), min(hi, time.Duration(j+1)*step)
			out.Arrivals[j] += a * float64(bhi-blo) / float64(from)
		}
	}
	return out
}

// Total is the number of requests in the series.
func (s Series) Total() float64 {
	var n float64
	for _, a := range s.Arrivals {
		n += a
	}
	return n
}

// IdleShare is the fraction of 5-minute windows with no arrivals.
func (s Series) IdleShare() float64 {
	per := max(1, int(5*time.Minute/s.step()))
	windows, idle := 0, 0
	for i := 0; i < len(s.Arrivals); i += per {
		windows++
		sum := 0.0
		for _, a := range s.Arrivals[i:min(i+per, len(s.Arrivals))] {
			sum += a
		}
		if sum == 0 {
			idle++
		}
	}
	if windows == 0 {
		return 0
	}
	return float64(idle) / float64(windows)
}

// Peak is the highest rate over a minute, in requests per second.
func (s Series) Peak() float64 {
	per := max(1, int(time.Minute/s.step()))
	best := 0.0
	for i := 0; i < len(s.Arrivals); i += per {
		sum := 0.0
		for _, a := range s.Arrivals[i:min(i+per, len(s.Arrivals))] {
			sum += a
		}
		best = max(best, sum/60)
	}
	return best
}

var day0 = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC) // a Monday, for profiles

// SeriesOf turns a validated Traffic into arrivals per tick: a profile is
// one day; a trace is its span rounded up to whole ticks.
func SeriesOf(t Traffic) Series {
	perDay := int(24 * time.Hour / Tick)
	s := Series{Start: day0}
	switch {
	case t.Rate != nil:
		s.Arrivals = make([]float64, perDay)
		for i := range s.Arrivals {
			s.Arrivals[i] = *t.Rate * Tick.Seconds()
		}
	case t.Hourly != nil:
		s.Arrivals = make([]float64, perDay)
		per := int(time.Hour / Tick)
		for i := range s.Arrivals {
			s.Arrivals[i] = t.Hourly[i/per] * Tick.Seconds()
		}
	case t.DailyRequests != 0:
		s.Arrivals = make([]float64, perDay)
		for i := range s.Arrivals {
			s.Arrivals[i] = t.DailyRequests / float64(perDay)
		}
	default:
		times := t.Times
		s.Start = times[0].Truncate(Tick)
		n := int(times[len(times)-1].Sub(s.Start)/Tick) + 1
		s.Arrivals = make([]float64, n)
		for i, at := range times {
			s.Arrivals[int(at.Sub(s.Start)/Tick)]++
			if i > 0 {
				if gap := at.Sub(times[i-1]); gap > MaxGap {
					s.Gaps = append(s.Gaps, fmt.Sprintf("no requests for %s from %s to %s (replayed as idle)",
						gap.Round(time.Second), times[i-1].UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)))
				}
			}
		}
	}
	return s
}

// Replay is what one mode's replay measured.
type Replay struct {
	InstanceSeconds float64 // instance time paid for (instance-based modes)
	BusySeconds     float64 // request processing time (serverless billing)
	Served          float64
	MeanWait        time.Duration // queueing and cold-start delay per request
	MaxInstances    int
	FinalInstances  int     // instances at the end of the replay
	ZeroShare       float64 // fraction of time with no instance
	ColdStarts      int
	ColdShare       float64 // fraction of requests that met a cold start
	ScaleActions    int
	Left            float64 // requests still queued at the end
}

// RealtimeConfig is the real-time replay's scaling setup.
type RealtimeConfig struct {
	Processing  time.Duration
	Concurrency int
	Min, Max    int
	// Target is the InvocationsPerInstance target (per minute).
	Target float64
	// Timing is the autoscaler's timing (zero fields take AWS's defaults);
	// the replay steps in its Tick, re-binning the series if its Step
	// differs, so a replay mirrors a server run with shortened timings.
	Timing autoscale.Timing
}

// ReplayRealtime replays s through a real-time variant scaled by
// autoscale.Decide with a target-tracking policy on
// SageMakerVariantInvocationsPerInstance.
func ReplayRealtime(s Series, c RealtimeConfig) Replay {
	timing := c.Timing.WithDefaults()
	tick := timing.Tick
	s = s.Rebin(tick)
	target := catalog.ScalableTarget{MinCapacity: c.Min, MaxCapacity: c.Max}
	policies := []catalog.ScalingPolicy{{
		PolicyName: "advisor-invocations",
		PolicyType: "TargetTrackingScaling",
		TargetTrackingScalingPolicyConfiguration: &catalog.TargetTrackingConfig{
			TargetValue: c.Target,
			PredefinedMetricSpecification: &catalog.PredefinedMetricSpecification{
				PredefinedMetricType: autoscale.PredefinedInvocationsPerInstance,
			},
		},
	}}
	window := timing.HistoryWindow() + tick
	perTick := float64(c.Concurrency) * tick.Seconds() / c.Processing.Seconds()
	var (
		r       Replay
		hist    []pool.Stats
		last    autoscale.Decision
		cum     float64
		backlog float64
		waitSec float64
		arrived float64
	)
	inst := max(c.Min, 1)
	r.MaxInstances = inst
	hist = append(hist, pool.Stats{At: s.Start, Instances: inst})
	for i, a := range s.Arrivals {
		now := s.Start.Add(time.Duration(i+1) * tick)
		arrived += a
		work := backlog + a
		done := math.Min(work, float64(inst)*perTick)
		backlog = work - done
		cum += done
		waitSec += backlog * tick.Seconds()
		r.InstanceSeconds += float64(inst) * tick.Seconds()
		hist = append(hist, pool.Stats{At: now, Instances: inst, Invocations: uint64(cum), Queued: int(backlog)})
		for len(hist) > 2 && now.Sub(hist[1].At) > window {
			hist = hist[1:]
		}
		d := autoscale.Decide(hist, inst, target, policies, last, timing, now)
		last = d
		if d.Changed() {
			inst = d.Desired
			r.ScaleActions++
			r.MaxInstances = max(r.MaxInstances, inst)
		}
	}
	r.Served, r.Left, r.FinalInstances = cum, backlog, inst
	if arrived > 0 {
		r.MeanWait = time.Duration(waitSec / arrived * float64(time.Second))
	}
	return r
}

// ElasticConfig is the serverless or async replay's setup.
type ElasticConfig struct {
	Processing  time.Duration
	Concurrency int
	Max         int
	Keep        int // instances kept warm (provisioned concurrency)
	ColdStart   time.Duration
	IdleTimeout time.Duration
}

type elasticInstance struct {
	id       string
	lastUsed time.Time
	busy     int
}

// ReplayElastic replays s through an elastic pool as the server runs
// serverless and async variants: pool.Needed instances for the demand
// (in flight plus waiting), started on demand with a cold start, and
// pool.IdleVictims stopping instances idle for IdleTimeout, down to Keep.
func ReplayElastic(s Series, c ElasticConfig) Replay {
	tick := s.step()
	perTick := float64(c.Concurrency) * tick.Seconds() / c.Processing.Seconds()
	var (
		r       Replay
		insts   []*elasticInstance
		backlog float64
		waitSec float64
		arrived float64
		zero    int
		nextID  int
	)
	start := func(now time.Time) {
		nextID++
		insts = append(insts, &elasticInstance{id: strconv.Itoa(nextID), lastUsed: now})
	}
	for range c.Keep {
		start(s.Start)
	}
	for i, a := range s.Arrivals {
		now := s.Start.Add(time.Duration(i+1) * tick)
		arrived += a
		work := backlog + a
		// Demand is what is in flight (Little's law) plus what waits.
		inflight := math.Min(work, a*c.Processing.Seconds()/tick.Seconds()+backlog)
		need := pool.Needed(int(math.Ceil(inflight-1e-9)), c.Concurrency, c.Max)
		if work > 0 && need == 0 {
			need = 1
		}
		for len(insts) < need {
			start(now)
			r.ColdStarts++
			waitSec += c.ColdStart.Seconds()
		}
		r.MaxInstances = max(r.MaxInstances, len(insts))
		done := math.Min(work, float64(len(insts))*perTick)
		backlog = work - done
		waitSec += backlog * tick.Seconds()
		r.BusySeconds += done * c.Processing.Seconds()
		r.Served += done
		r.InstanceSeconds += float64(len(insts)) * tick.Seconds()
		if len(insts) == 0 {
			zero++
		}
		// Work goes to the most recently used instances first.
		sort.SliceStable(insts, func(i, j int) bool { return insts[i].lastUsed.After(insts[j].lastUsed) })
		used := min(len(insts), int(math.Ceil(inflight-1e-9)))
		for k, in := range insts {
			in.busy = 0
			if k < used {
				in.lastUsed = now
				if c.Processing > tick || backlog > 0 {
					in.busy = 1
				}
			}
		}
		states := make([]pool.InstanceState, len(insts))
		for k, in := range insts {
			states[k] = pool.InstanceState{ID: in.id, Outstanding: in.busy, LastUsed: in.lastUsed}
		}
		victims := pool.IdleVictims(states, c.Keep, c.IdleTimeout, now)
		if len(victims) > 0 {
			gone := map[string]bool{}
			for _, id := range victims {
				gone[id] = true
			}
			kept := insts[:0]
			for _, in := range insts {
				if !gone[in.id] {
					kept = append(kept, in)
				}
			}
			insts = kept
		}
	}
	r.Left, r.FinalInstances = backlog, len(insts)
	if arrived > 0 {
		r.MeanWait = time.Duration(waitSec / arrived * float64(time.Second))
		r.ColdShare = math.Min(1, float64(r.ColdStarts)/arrived)
	}
	if n := len(s.Arrivals); n > 0 {
		r.ZeroShare = float64(zero) / float64(n)
	}
	return r
}
