package autoscale

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/pool"
)

const testResource = "endpoint/ep/variant/AllTraffic"

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// minuteTiming samples once per 1-minute datapoint, so each datapoint is the
// difference between two consecutive samples and the timelines below can be
// worked out by hand. Counts and cooldowns are AWS's defaults.
var minuteTiming = Timing{Period: time.Minute, HighResolutionPeriod: time.Minute, Tick: time.Minute}

func target(minCap, maxCap int) catalog.ScalableTarget {
	return catalog.ScalableTarget{
		ServiceNamespace: ServiceNamespace, ResourceId: testResource, ScalableDimension: ScalableDimension,
		MinCapacity: minCap, MaxCapacity: maxCap,
	}
}

func policy(name string, value float64, pre string, custom *catalog.CustomizedMetricSpecification) catalog.ScalingPolicy {
	c := &catalog.TargetTrackingConfig{TargetValue: value, CustomizedMetricSpecification: custom}
	if pre != "" {
		c.PredefinedMetricSpecification = &catalog.PredefinedMetricSpecification{PredefinedMetricType: pre}
	}
	return catalog.ScalingPolicy{
		PolicyName: name, ServiceNamespace: ServiceNamespace, ResourceId: testResource,
		ScalableDimension: ScalableDimension, PolicyType: PolicyTypeTargetTrack,
		TargetTrackingScalingPolicyConfiguration: c,
	}
}

func invocationsPolicy(name string, value float64) catalog.ScalingPolicy {
	return policy(name, value, PredefinedInvocationsPerInstance, nil)
}

func customPolicy(name, metricName, stat string, value float64) catalog.ScalingPolicy {
	return policy(name, value, "", &catalog.CustomizedMetricSpecification{
		MetricName: metricName, Namespace: MetricNamespace, Statistic: stat,
	})
}

func seconds(n int) *int { return &n }

// load is the traffic during one tick interval.
type load struct {
	perMin      float64 // invocations per minute, whole variant
	concurrency int     // requests in flight, whole variant
	// latency gives a model latency from invocations per minute per
	// instance; nil means 1 ms.
	latency func(perInstance float64) time.Duration
}

// steps returns a load that is loads[i] from at[i] on.
func steps(at []time.Duration, loads ...load) func(time.Duration) load {
	return func(t time.Duration) load {
		cur := loads[0]
		for i, a := range at {
			if t >= a {
				cur = loads[i]
			}
		}
		return cur
	}
}

// sim runs Decide over a synthetic timeline, applying every decision at once
// and counting new instances as ready at once.
type sim struct {
	timing   Timing
	target   catalog.ScalableTarget
	policies []catalog.ScalingPolicy
	current  int
	load     func(at time.Duration) load // traffic of the tick interval starting at `at`
	external map[time.Duration]int       // someone else sets the desired count
	targets  map[time.Duration]catalog.ScalableTarget
}

// change is one applied decision, at an offset from the start.
type change struct {
	at       time.Duration
	from, to int
	action   Action
	policy   string
}

func (c change) String() string {
	return fmt.Sprintf("%v %d→%d %s %s", c.at, c.from, c.to, c.action, c.policy)
}

func (s sim) run(t *testing.T, until time.Duration) ([]change, Decision) {
	t.Helper()
	tick := s.timing.WithDefaults().Tick
	var (
		hist    []pool.Stats
		inv     float64
		latency time.Duration
		last    Decision
		changes []change
	)
	cur, tgt := s.current, s.target
	for at := time.Duration(0); at <= until; at += tick {
		l := s.load(at - tick)
		n := l.perMin * tick.Minutes()
		inv += n
		per := time.Millisecond
		if l.latency != nil {
			per = l.latency(l.perMin / float64(max(cur, 1)))
		}
		latency += time.Duration(float64(per) * n)
		hist = append(hist, pool.Stats{
			At: t0.Add(at), Instances: cur, InFlight: l.concurrency,
			Invocations: uint64(math.Round(inv)), ModelLatencySum: latency,
		})
		if n, ok := s.external[at]; ok {
			cur = n
		}
		if nt, ok := s.targets[at]; ok {
			tgt = nt
		}
		before := slices.Clone(hist)
		d := Decide(hist, cur, tgt, s.policies, last, s.timing, t0.Add(at))
		if !slices.Equal(before, hist) {
			t.Fatalf("Decide changed its history argument at %v", at)
		}
		if d.Changed() {
			t.Logf("%v: %d→%d %s: %s", at, d.Current, d.Desired, d.Action, d.Reason)
			changes = append(changes, change{at, d.Current, d.Desired, d.Action, d.Policy})
			cur = d.Desired
		}
		last = d
	}
	return changes, last
}

func TestDecideTimeline(t *testing.T) {
	m := time.Minute
	invocations70 := []catalog.ScalingPolicy{invocationsPolicy("invocations", 70)}
	withCooldowns := func(out, in *int) []catalog.ScalingPolicy {
		p := invocationsPolicy("invocations", 70)
		p.TargetTrackingScalingPolicyConfiguration.ScaleOutCooldown = out
		p.TargetTrackingScalingPolicyConfiguration.ScaleInCooldown = in
		return []catalog.ScalingPolicy{p}
	}
	noScaleIn := invocationsPolicy("invocations", 70)
	noScaleIn.TargetTrackingScalingPolicyConfiguration.DisableScaleIn = true
	outSuspended := target(1, 10)
	outSuspended.SuspendedState = json.RawMessage(`{"DynamicScalingOutSuspended":true}`)
	// Model latency grows with each instance's load: 1 ms per invocation
	// per minute per instance.
	latencyOf := func(perInstance float64) time.Duration { return time.Duration(perInstance * float64(time.Millisecond)) }

	tests := []struct {
		name  string
		sim   sim
		until time.Duration
		want  []change
	}{
		{
			// 280/min on 2 instances is 140 per instance from 5m: the
			// datapoints (5,6], (6,7], (7,8] breach 70, so at 8m desired is
			// ceil(2×140/70) = 4. From 15m 70/min is 17.5 per instance: 15
			// datapoints under 63 end at 30m; ceil(4×17.5/70) = 1, but one
			// scale-in removes at most half, so 2; the scale-in cooldown
			// (300 s) holds the next one until 35m, then 1, where 70 per
			// instance is at the target and nothing moves again.
			name: "load step scales out after 3 datapoints and back in after 15 and the cooldown",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), policies: invocations70, current: 2,
				load: steps([]time.Duration{0, 5 * m, 15 * m}, load{perMin: 100}, load{perMin: 280}, load{perMin: 70}),
			},
			until: 60 * m,
			want: []change{
				{8 * m, 2, 4, ActionScaleOut, "invocations"},
				{30 * m, 4, 2, ActionScaleIn, "invocations"},
				{35 * m, 2, 1, ActionScaleIn, "invocations"},
			},
		},
		{
			// After the scale-out to 4 someone sets 3 at 9m; from (9,10] to
			// (11,12] the metric is 280/3 > 70, asking ceil(3×93.3/70) = 4,
			// which is no more than the last scale-out set: held until the
			// cooldown ends at 8m+300s.
			name: "scale-out cooldown holds a scale-out no larger than the last one",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), policies: invocations70, current: 2,
				load:     steps([]time.Duration{0, 5 * m}, load{perMin: 100}, load{perMin: 280}),
				external: map[time.Duration]int{9 * m: 3},
			},
			until: 20 * m,
			want: []change{
				{8 * m, 2, 4, ActionScaleOut, "invocations"},
				{13 * m, 3, 4, ActionScaleOut, "invocations"},
			},
		},
		{
			// 560/min from 9m on 4 instances: 3 datapoints over 70 by 12m,
			// asking ceil(4×140/70) = 8 > 4, inside the cooldown.
			name: "a larger scale-out goes through the scale-out cooldown",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), policies: invocations70, current: 2,
				load: steps([]time.Duration{0, 5 * m, 9 * m}, load{perMin: 100}, load{perMin: 280}, load{perMin: 560}),
			},
			until: 20 * m,
			want: []change{
				{8 * m, 2, 4, ActionScaleOut, "invocations"},
				{12 * m, 4, 8, ActionScaleOut, "invocations"},
			},
		},
		{
			// 20/min from 9m: the low alarm fires at 24m, but the 20-minute
			// scale-out cooldown from 8m blocks scale-in until 28m.
			name: "scale-in waits for the scale-out cooldown",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), policies: withCooldowns(seconds(1200), nil), current: 2,
				load: steps([]time.Duration{0, 5 * m, 9 * m}, load{perMin: 100}, load{perMin: 280}, load{perMin: 20}),
			},
			until: 45 * m,
			want: []change{
				{8 * m, 2, 4, ActionScaleOut, "invocations"},
				{28 * m, 4, 2, ActionScaleIn, "invocations"},
				{33 * m, 2, 1, ActionScaleIn, "invocations"},
			},
		},
		{
			// Scale-in at 15m starts a 30-minute scale-in cooldown; load
			// returns at 16m and scales out at 19m anyway, which ends that
			// cooldown: the next scale-in (load gone again from 20m, 15
			// datapoints by 35m) is not held until 45m.
			name: "a scale-out ends the scale-in cooldown",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), policies: withCooldowns(nil, seconds(1800)), current: 4,
				load: steps([]time.Duration{0, 16 * m, 20 * m}, load{perMin: 70}, load{perMin: 280}, load{perMin: 70}),
			},
			until: 50 * m,
			want: []change{
				{15 * m, 4, 2, ActionScaleIn, "invocations"},
				{19 * m, 2, 4, ActionScaleOut, "invocations"},
				{35 * m, 4, 2, ActionScaleIn, "invocations"},
			},
		},
		{
			name: "MaxCapacity caps a scale-out",
			sim: sim{
				timing: minuteTiming, target: target(1, 3), policies: invocations70, current: 2,
				load: steps([]time.Duration{0, 5 * m}, load{perMin: 100}, load{perMin: 2800}),
			},
			until: 20 * m,
			want:  []change{{8 * m, 2, 3, ActionScaleOut, "invocations"}},
		},
		{
			name: "raising MinCapacity applies at once, without a policy",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), current: 2,
				load:    steps([]time.Duration{0}, load{perMin: 100}),
				targets: map[time.Duration]catalog.ScalableTarget{10 * m: target(3, 10)},
			},
			until: 20 * m,
			want:  []change{{10 * m, 2, 3, ActionBounds, ""}},
		},
		{
			name: "lowering MaxCapacity applies at once, without a policy",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), current: 5,
				load:    steps([]time.Duration{0}, load{perMin: 100}),
				targets: map[time.Duration]catalog.ScalableTarget{10 * m: target(1, 3)},
			},
			until: 20 * m,
			want:  []change{{10 * m, 5, 3, ActionBounds, ""}},
		},
		{
			name: "DisableScaleIn scales out and never in",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), policies: []catalog.ScalingPolicy{noScaleIn}, current: 2,
				load: steps([]time.Duration{0, 5 * m, 15 * m}, load{perMin: 100}, load{perMin: 280}, load{perMin: 0}),
			},
			until: 60 * m,
			want:  []change{{8 * m, 2, 4, ActionScaleOut, "invocations"}},
		},
		{
			name: "suspended dynamic scale-out does not scale out",
			sim: sim{
				timing: minuteTiming, target: outSuspended, policies: invocations70, current: 2,
				load: steps([]time.Duration{0, 5 * m}, load{perMin: 100}, load{perMin: 280}),
			},
			until: 20 * m,
			want:  nil,
		},
		{
			// Zero invocations is a metric of 0: 15 datapoints by 15m, then
			// half at a time, one scale-in cooldown apart, down to the minimum.
			name: "zero traffic scales in to the minimum",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), policies: invocations70, current: 4,
				load: steps([]time.Duration{0}, load{}),
			},
			until: 40 * m,
			want: []change{
				{15 * m, 4, 2, ActionScaleIn, "invocations"},
				{20 * m, 2, 1, ActionScaleIn, "invocations"},
			},
		},
		{
			// From 5m: invocations ask for ceil(2×140/70) = 4, concurrency
			// for ceil(2×6/2) = 6; the larger wins. On 6 instances the
			// invocations policy is under 63 from (8,9] (46.7) but
			// concurrency (12/6 = 2) is not under 1.8 until it drops at
			// 15m: scale-in waits for both, 15 datapoints later at 30m, to
			// the larger ask, ceil(6×46.7/70) = 4. Afterwards concurrency
			// wants 1 but invocations (70) holds.
			name: "two policies: out if any, in only if all, largest wins",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), current: 2,
				policies: []catalog.ScalingPolicy{
					invocationsPolicy("a-invocations", 70),
					customPolicy("b-concurrency", "ConcurrentRequestsPerModel", "Average", 2),
				},
				load: steps([]time.Duration{0, 5 * m, 15 * m},
					load{perMin: 100, concurrency: 1}, load{perMin: 280, concurrency: 12}, load{perMin: 280, concurrency: 1}),
			},
			until: 50 * m,
			want: []change{
				{8 * m, 2, 6, ActionScaleOut, "b-concurrency"},
				{30 * m, 6, 4, ActionScaleIn, "a-invocations"},
			},
		},
		{
			// Latency is 1 ms per invocation/minute/instance: 140 ms from
			// 5m, ceil(2×140000/100000) = 3; then 93 ms holds. With no
			// traffic from 20m there is no latency datapoint, so no
			// scale-in, as a CloudWatch alarm in INSUFFICIENT_DATA.
			name: "custom ModelLatency metric; no traffic means no data and no scale-in",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), current: 2,
				policies: []catalog.ScalingPolicy{customPolicy("latency", "ModelLatency", "Average", 100000)},
				load: steps([]time.Duration{0, 5 * m, 20 * m},
					load{perMin: 100, latency: latencyOf}, load{perMin: 280, latency: latencyOf}, load{}),
			},
			until: 50 * m,
			want:  []change{{8 * m, 2, 3, ActionScaleOut, "latency"}},
		},
		{
			// 400/min for the whole variant against 100/min: ceil(2×400/100)
			// = 8. A variant-wide sum does not fall as instances are added,
			// so it keeps climbing to MaxCapacity: AWS's warning that a
			// target-tracking metric must change in proportion to capacity.
			name: "custom Invocations Sum metric",
			sim: sim{
				timing: minuteTiming, target: target(1, 10), current: 2,
				policies: []catalog.ScalingPolicy{customPolicy("total", "Invocations", "Sum", 100)},
				load:     steps([]time.Duration{0, 5 * m}, load{perMin: 95}, load{perMin: 400}),
			},
			until: 20 * m,
			want:  []change{{8 * m, 2, 8, ActionScaleOut, "total"}, {9 * m, 8, 10, ActionScaleOut, "total"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := tc.sim.run(t, tc.until)
			if !slices.Equal(got, tc.want) {
				t.Errorf("changes:\n got  %v\n want %v", got, tc.want)
			}
		})
	}
}

// The high-resolution concurrency metric has 10-second scale-out
// datapoints; the same metric as a standard custom metric waits for three
// 1-minute datapoints.
func TestDecideHighResolutionScalesOutSooner(t *testing.T) {
	timing := Timing{Period: time.Minute, HighResolutionPeriod: 10 * time.Second, Tick: 10 * time.Second}
	traffic := steps([]time.Duration{0, 2 * time.Minute}, load{concurrency: 0}, load{concurrency: 20})
	tests := []struct {
		name   string
		policy catalog.ScalingPolicy
		at     time.Duration
	}{
		// Interval (120s,130s] is the first at 20: datapoints ending at
		// 130s, 140s, 150s; desired ceil(1×20/5) = 4.
		{"high resolution", policy("hr", 5, PredefinedConcurrentRequestsHighRes, nil), 150 * time.Second},
		// Datapoints (2m,3m], (3m,4m], (4m,5m].
		{"standard", customPolicy("std", "ConcurrentRequestsPerModel", "Average", 5), 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := sim{timing: timing, target: target(1, 10), policies: []catalog.ScalingPolicy{tc.policy}, current: 1, load: traffic}
			got, _ := s.run(t, 6*time.Minute)
			want := []change{{tc.at, 1, 4, ActionScaleOut, tc.policy.PolicyName}}
			if !slices.Equal(got, want) {
				t.Errorf("changes:\n got  %v\n want %v", got, want)
			}
		})
	}
}

func TestDecideWithoutEnoughHistoryWaits(t *testing.T) {
	p := []catalog.ScalingPolicy{invocationsPolicy("p", 70)}
	// Two samples: one datapoint, far above the target, but the high alarm
	// needs three.
	hist := []pool.Stats{
		{At: t0, Instances: 1},
		{At: t0.Add(time.Minute), Instances: 1, Invocations: 1000},
	}
	d := Decide(hist, 1, target(1, 10), p, Decision{}, minuteTiming, t0.Add(time.Minute))
	if d.Changed() {
		t.Fatalf("scaled with one datapoint: %+v", d)
	}
	if len(d.Evaluations) != 1 || d.Evaluations[0].Vote != VoteNoData {
		t.Fatalf("evaluations = %+v, want one no-data vote", d.Evaluations)
	}
}
