package autoscale

import (
	"math"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/pool"
)

func TestMetricOverPeriod(t *testing.T) {
	s := func(sec int, instances, inFlight, queued int, inv uint64, latency time.Duration) pool.Stats {
		return pool.Stats{At: t0.Add(time.Duration(sec) * time.Second), Instances: instances, InFlight: inFlight,
			Queued: queued, Invocations: inv, ModelLatencySum: latency}
	}
	// Samples every 30 s. In (60s,120s]: 120 invocations in one minute on
	// 2 then 4 instances (mean 3), 6 s of model latency, in flight 3 and 9,
	// queued 3 and 3.
	hist := []pool.Stats{
		s(0, 2, 0, 0, 0, 0),
		s(30, 2, 0, 0, 30, time.Second),
		s(60, 2, 1, 0, 60, 2*time.Second),
		s(90, 2, 3, 3, 100, 5*time.Second),
		s(120, 4, 9, 3, 180, 8*time.Second),
	}
	custom := func(name, stat string) *catalog.TargetTrackingConfig {
		return &catalog.TargetTrackingConfig{TargetValue: 1, CustomizedMetricSpecification: &catalog.CustomizedMetricSpecification{
			MetricName: name, Namespace: MetricNamespace, Statistic: stat}}
	}
	predefined := func(name string) *catalog.TargetTrackingConfig {
		return &catalog.TargetTrackingConfig{TargetValue: 1, PredefinedMetricSpecification: &catalog.PredefinedMetricSpecification{PredefinedMetricType: name}}
	}
	tests := []struct {
		name      string
		cfg       *catalog.TargetTrackingConfig
		value     float64
		load      float64
		startSec  int
		wantValid bool
	}{
		{"predefined invocations per instance", predefined(PredefinedInvocationsPerInstance), 120.0 / 3, 120, 60, true},
		{"InvocationsPerInstance Sum", custom("InvocationsPerInstance", "Sum"), 120.0 / 3, 120, 60, true},
		{"Invocations Sum", custom("Invocations", "Sum"), 120, 3 * 120, 60, true},
		// 6 s over 120 invocations = 50 ms.
		{"ModelLatency Average", custom("ModelLatency", "Average"), 50000, 3 * 50000, 60, true},
		// (3+3)/2 = 3 and (9+3)/4 = 3 per instance; 6 and 12 in all.
		{"predefined concurrency", predefined(PredefinedConcurrentRequestsHighRes), 3, 9, 60, true},
		{"ConcurrentRequestsPerModel Maximum", custom("ConcurrentRequestsPerModel", "Maximum"), 3, 12, 60, true},
		// 3/2 and 3/4.
		{"ApproximateBacklogSizePerInstance Average", custom("ApproximateBacklogSizePerInstance", "Average"), (1.5 + 0.75) / 2, 3, 60, true},
		// (-60s, 0s]: one sample, no baseline before it.
		{"counter without a baseline is missing", custom("Invocations", "Sum"), 0, 0, -60, false},
		{"gauge needs no baseline", custom("ConcurrentRequestsPerModel", "Average"), 0, 0, -60, true},
		// (120s, 180s]: no sample.
		{"period without samples is missing", custom("ConcurrentRequestsPerModel", "Average"), 0, 0, 120, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := metricOf(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			start := t0.Add(time.Duration(tc.startSec) * time.Second)
			dp, ok := m.over(hist, start, start.Add(time.Minute))
			if ok != tc.wantValid {
				t.Fatalf("ok = %v, want %v (datapoint %+v)", ok, tc.wantValid, dp)
			}
			if !ok {
				return
			}
			if math.Abs(dp.value-tc.value) > 1e-9 || math.Abs(dp.load-tc.load) > 1e-9 {
				t.Errorf("value, load = %v, %v; want %v, %v", dp.value, dp.load, tc.value, tc.load)
			}
		})
	}
}

func TestMetricCounterResetIsMissing(t *testing.T) {
	hist := []pool.Stats{
		{At: t0, Instances: 1, Invocations: 500},
		{At: t0.Add(time.Minute), Instances: 1, Invocations: 20}, // the pool was replaced
	}
	m, err := metricOf(&catalog.TargetTrackingConfig{TargetValue: 1, PredefinedMetricSpecification: &catalog.PredefinedMetricSpecification{
		PredefinedMetricType: PredefinedInvocationsPerInstance}})
	if err != nil {
		t.Fatal(err)
	}
	if dp, ok := m.over(hist, t0, t0.Add(time.Minute)); ok {
		t.Fatalf("datapoint %+v across a counter reset, want missing", dp)
	}
}

// Datapoints are aligned to the period: at 2m50s the newest complete one is
// (1m, 2m], whatever the samples after 2m say.
func TestDatapointsAreAligned(t *testing.T) {
	hist := []pool.Stats{
		{At: t0, Instances: 1},
		{At: t0.Add(time.Minute), Instances: 1, Invocations: 10},
		{At: t0.Add(2 * time.Minute), Instances: 1, Invocations: 30},
		{At: t0.Add(2*time.Minute + 50*time.Second), Instances: 1, Invocations: 1000},
	}
	m := metric{kind: kindInvocations}
	dps, ok := datapoints(m, hist, t0.Add(2*time.Minute+50*time.Second), time.Minute, 2)
	if !ok {
		t.Fatal("datapoints missing")
	}
	if dps[0].value != 20 || dps[1].value != 10 {
		t.Fatalf("values = %v, %v; want 20, 10", dps[0].value, dps[1].value)
	}
}
