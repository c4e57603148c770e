package autoscale

import (
	"fmt"
	"time"
)

// Timing holds every duration and count of the scaling rules. The zero value
// of a field means its default, which matches AWS; tests and demos shorten
// them to run in seconds.
type Timing struct {
	// Period is one datapoint of a standard metric (AWS: 60 s).
	Period time.Duration
	// HighResolutionPeriod is one scale-out datapoint of a high-resolution
	// metric (AWS: 10 s). At most Period.
	HighResolutionPeriod time.Duration
	// ScaleOutDatapoints is how many consecutive datapoints above the target
	// start a scale-out (AWS: 3).
	ScaleOutDatapoints int
	// ScaleInDatapoints is how many consecutive datapoints below
	// ScaleInThreshold × target start a scale-in (AWS: 15).
	ScaleInDatapoints int
	// ScaleInThreshold is the fraction of the target below which the low
	// alarm counts a datapoint (AWS: 0.9).
	ScaleInThreshold float64
	// MaxScaleInFraction caps one scale-in at max(1, floor(current ×
	// fraction)) instances removed (default 0.5; 1 removes no cap).
	MaxScaleInFraction float64
	// DefaultScaleOutCooldown and DefaultScaleInCooldown apply when a
	// policy does not set its own (AWS: 300 s for SageMaker variants). A
	// policy's explicit 0 means no cooldown.
	DefaultScaleOutCooldown time.Duration
	DefaultScaleInCooldown  time.Duration
	// Tick is how often the loop samples and decides (default 5 s). At most
	// HighResolutionPeriod, so every datapoint holds a sample.
	Tick time.Duration
}

// DefaultTiming returns AWS's timings.
func DefaultTiming() Timing {
	return Timing{
		Period:                  60 * time.Second,
		HighResolutionPeriod:    10 * time.Second,
		ScaleOutDatapoints:      3,
		ScaleInDatapoints:       15,
		ScaleInThreshold:        0.9,
		MaxScaleInFraction:      0.5,
		DefaultScaleOutCooldown: 300 * time.Second,
		DefaultScaleInCooldown:  300 * time.Second,
		Tick:                    5 * time.Second,
	}
}

// WithDefaults fills zero fields from DefaultTiming.
func (t Timing) WithDefaults() Timing {
	d := DefaultTiming()
	if t.Period == 0 {
		t.Period = d.Period
	}
	if t.HighResolutionPeriod == 0 {
		t.HighResolutionPeriod = min(d.HighResolutionPeriod, t.Period)
	}
	if t.ScaleOutDatapoints == 0 {
		t.ScaleOutDatapoints = d.ScaleOutDatapoints
	}
	if t.ScaleInDatapoints == 0 {
		t.ScaleInDatapoints = d.ScaleInDatapoints
	}
	if t.ScaleInThreshold == 0 {
		t.ScaleInThreshold = d.ScaleInThreshold
	}
	if t.MaxScaleInFraction == 0 {
		t.MaxScaleInFraction = d.MaxScaleInFraction
	}
	if t.DefaultScaleOutCooldown == 0 {
		t.DefaultScaleOutCooldown = d.DefaultScaleOutCooldown
	}
	if t.DefaultScaleInCooldown == 0 {
		t.DefaultScaleInCooldown = d.DefaultScaleInCooldown
	}
	if t.Tick == 0 {
		t.Tick = min(d.Tick, t.HighResolutionPeriod)
	}
	return t
}

// Validate checks a Timing after defaults are filled; errors name the field.
func (t Timing) Validate() error {
	t = t.WithDefaults()
	switch {
	case t.Period < 0:
		return fmt.Errorf("autoscale timing: Period %v must be positive", t.Period)
	case t.HighResolutionPeriod < 0 || t.HighResolutionPeriod > t.Period:
		return fmt.Errorf("autoscale timing: HighResolutionPeriod %v must be positive and at most Period %v", t.HighResolutionPeriod, t.Period)
	case t.Tick < 0 || t.Tick > t.HighResolutionPeriod:
		return fmt.Errorf("autoscale timing: Tick %v must be positive and at most HighResolutionPeriod %v", t.Tick, t.HighResolutionPeriod)
	case t.ScaleOutDatapoints < 0:
		return fmt.Errorf("autoscale timing: ScaleOutDatapoints %d must be positive", t.ScaleOutDatapoints)
	case t.ScaleInDatapoints < 0:
		return fmt.Errorf("autoscale timing: ScaleInDatapoints %d must be positive", t.ScaleInDatapoints)
	case t.ScaleInThreshold < 0 || t.ScaleInThreshold > 1:
		return fmt.Errorf("autoscale timing: ScaleInThreshold %v must be in (0, 1]", t.ScaleInThreshold)
	case t.MaxScaleInFraction < 0 || t.MaxScaleInFraction > 1:
		return fmt.Errorf("autoscale timing: MaxScaleInFraction %v must be in (0, 1]", t.MaxScaleInFraction)
	case t.DefaultScaleOutCooldown < 0 || t.DefaultScaleInCooldown < 0:
		return fmt.Errorf("autoscale timing: default cooldowns (%v, %v) must not be negative", t.DefaultScaleOutCooldown, t.DefaultScaleInCooldown)
	}
	return nil
}

// HistoryWindow is how far back Decide reads samples: the longest alarm
// plus one period for the counters' baseline sample.
func (t Timing) HistoryWindow() time.Duration {
	t = t.WithDefaults()
	out := time.Duration(t.ScaleOutDatapoints) * max(t.Period, t.HighResolutionPeriod)
	in := time.Duration(t.ScaleInDatapoints) * t.Period
	return max(out, in) + t.Period
}
