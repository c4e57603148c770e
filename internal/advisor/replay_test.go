package advisor

import (
	"math"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/autoscale"
)

func TestTraceSeriesAndRebin(t *testing.T) {
	from := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)
	times := []time.Time{from.Add(-time.Second), from, from.Add(150 * time.Millisecond), from.Add(450 * time.Millisecond), from.Add(time.Second)}
	s := TraceSeries(times, from, from.Add(time.Second), 200*time.Millisecond)
	want := []float64{2, 0, 1, 0, 0}
	if len(s.Arrivals) != len(want) {
		t.Fatalf("arrivals %v, want %v", s.Arrivals, want)
	}
	for i := range want {
		if s.Arrivals[i] != want[i] {
			t.Fatalf("arrivals %v, want %v (times outside [from, to) dropped)", s.Arrivals, want)
		}
	}
	if s.Duration() != time.Second {
		t.Errorf("duration %v, want 1s", s.Duration())
	}
	fine := constant(3, time.Minute).Rebin(time.Second)
	if len(fine.Arrivals) != 60 || math.Abs(fine.Total()-180) > 1e-9 || math.Abs(fine.Arrivals[7]-3) > 1e-9 {
		t.Errorf("rebinned to 1 s: %d buckets, total %g, bucket 7 %g; want 60, 180, 3", len(fine.Arrivals), fine.Total(), fine.Arrivals[7])
	}
}

func TestRealtimeShortTiming(t *testing.T) {
	// 30 req/s for a minute with a 600/min (10/s) target: with a 1 s
	// period, 200 ms tick and 1 s cooldowns the variant reaches 3
	// instances within seconds, and returns to 1 once traffic stops; with
	// the default (AWS) timing a minute is too short to scale at all.
	s := constant(30, time.Minute)
	s.Arrivals = append(s.Arrivals, make([]float64, int(30*time.Second/Tick))...)
	short := autoscale.Timing{Period: time.Second, ScaleOutDatapoints: 2, ScaleInDatapoints: 2,
		DefaultScaleOutCooldown: time.Second, DefaultScaleInCooldown: time.Second, Tick: 200 * time.Millisecond}
	c := RealtimeConfig{Processing: time.Millisecond, Concurrency: 1, Min: 1, Max: 4, Target: 600, Timing: short}
	r := ReplayRealtime(s, c)
	if r.MaxInstances != 3 || r.FinalInstances != 1 {
		t.Errorf("short timing: peak %d, final %d instances; want 3 and 1", r.MaxInstances, r.FinalInstances)
	}
	// About 3 instances for the minute, then 1 for the idle half minute,
	// give or take the seconds spent scaling.
	if r.InstanceSeconds < 3*55+25 || r.InstanceSeconds > 3*60+30+10 {
		t.Errorf("short timing: %.1f instance-seconds, want about 3 × 60 + 30", r.InstanceSeconds)
	}
	c.Timing = autoscale.Timing{}
	if r := ReplayRealtime(s, c); r.MaxInstances != 1 || r.InstanceSeconds != 90 {
		t.Errorf("default timing: peak %d, %.1f instance-seconds; want 1 and 90", r.MaxInstances, r.InstanceSeconds)
	}
}
