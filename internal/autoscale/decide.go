package autoscale

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/pool"
)

// Action is what a Decision does to the desired count.
type Action string

const (
	ActionNone     Action = ""
	ActionScaleOut Action = "ScaleOut"
	ActionScaleIn  Action = "ScaleIn"
	// ActionBounds sets a count outside [MinCapacity, MaxCapacity] to the
	// nearest bound.
	ActionBounds Action = "Bounds"
)

// Vote is what one policy asks for.
type Vote string

const (
	VoteHold    Vote = "hold"    // neither alarm fires: not ready to scale in
	VoteOut     Vote = "out"     // high alarm, asks for more than current
	VoteIn      Vote = "in"      // low alarm, asks for fewer than current
	VoteAbstain Vote = "abstain" // low alarm with DisableScaleIn: no say on scale-in
	VoteNoData  Vote = "no-data" // missing datapoints: vetoes scale-in
	VoteInvalid Vote = "invalid" // the policy cannot be evaluated
)

// Alarm names, as AWS suffixes the alarms of a target tracking policy.
const (
	alarmHigh = "AlarmHigh"
	alarmLow  = "AlarmLow"
)

// Evaluation is one policy's reading at a decision.
type Evaluation struct {
	Policy  string
	Metric  string
	Target  float64
	Value   float64 // newest datapoint of the alarm that fired, else of the standard period
	Vote    Vote
	Desired int // what the policy asks for when it votes out or in
}

// Decision is the outcome of one Decide call, and the state the next call
// needs: feed it back as last.
type Decision struct {
	At      time.Time
	Current int
	Desired int
	Action  Action
	Reason  string
	// Policy and Alarm name what drove a scale-out or scale-in.
	Policy string
	Alarm  string

	LastScaleOut         time.Time
	ScaleOutTo           int // the count the last scale-out set
	ScaleOutCooldownEnds time.Time
	LastScaleIn          time.Time
	ScaleInCooldownEnds  time.Time

	Evaluations []Evaluation
}

// Changed reports whether the decision sets a new desired count.
func (d Decision) Changed() bool { return d.Action != ActionNone && d.Desired != d.Current }

// Decide is the scaling decision: pure, a function of its arguments only.
// history holds pool samples of the target, oldest first; current is the
// variant's desired count now; last is the previous Decision for this target
// (zero at first). The package doc states the rules.
func Decide(history []pool.Stats, current int, target catalog.ScalableTarget, policies []catalog.ScalingPolicy, last Decision, timing Timing, now time.Time) Decision {
	timing = timing.WithDefaults()
	d := Decision{
		At: now, Current: current, Desired: current,
		LastScaleOut: last.LastScaleOut, ScaleOutTo: last.ScaleOutTo, ScaleOutCooldownEnds: last.ScaleOutCooldownEnds,
		LastScaleIn: last.LastScaleIn, ScaleInCooldownEnds: last.ScaleInCooldownEnds,
	}
	lo, hi := target.MinCapacity, max(target.MaxCapacity, target.MinCapacity)
	switch {
	case current < lo:
		d.Desired, d.Action = lo, ActionBounds
		d.Reason = fmt.Sprintf("current count %d is below MinCapacity %d", current, lo)
		return d
	case current > hi:
		d.Desired, d.Action = hi, ActionBounds
		d.Reason = fmt.Sprintf("current count %d is above MaxCapacity %d", current, hi)
		return d
	}
	if len(policies) == 0 {
		d.Reason = "no scaling policies"
		return d
	}
	sorted := slices.SortedFunc(slices.Values(policies), func(a, b catalog.ScalingPolicy) int {
		return cmp.Compare(a.PolicyName, b.PolicyName)
	})
	byName := make(map[string]*catalog.TargetTrackingConfig, len(sorted))
	for _, p := range sorted {
		e := evaluate(p, history, current, timing, now)
		d.Evaluations = append(d.Evaluations, e)
		byName[p.PolicyName] = p.TargetTrackingScalingPolicyConfiguration
	}
	susp, _ := parseSuspended(target)

	// Scale out if any policy says so, to the largest count asked for.
	if out, ok := largest(d.Evaluations, VoteOut); ok {
		want := min(out.Desired, hi)
		switch {
		case susp.DynamicScalingOutSuspended:
			d.Reason = fmt.Sprintf("policy %s asks for %d but dynamic scale-out is suspended", out.Policy, out.Desired)
		case want <= current:
			d.Reason = fmt.Sprintf("policy %s asks for %d but MaxCapacity is %d", out.Policy, out.Desired, hi)
		case now.Before(d.ScaleOutCooldownEnds) && want <= d.ScaleOutTo:
			d.Reason = fmt.Sprintf("policy %s asks for %d; scale-out cooldown until %s holds it (the last scale-out already set %d)",
				out.Policy, want, d.ScaleOutCooldownEnds.Format(time.RFC3339), d.ScaleOutTo)
		default:
			d.Desired, d.Action, d.Policy, d.Alarm = want, ActionScaleOut, out.Policy, alarmHigh
			d.LastScaleOut, d.ScaleOutTo = now, want
			d.ScaleOutCooldownEnds = now.Add(cooldown(byName[out.Policy].ScaleOutCooldown, timing.DefaultScaleOutCooldown))
			d.ScaleInCooldownEnds = time.Time{} // a scale-out ends a scale-in cooldown
			d.Reason = fmt.Sprintf("policy %s: %s %s above target %s for %d datapoints; desired %d",
				out.Policy, out.Metric, num(out.Value), num(out.Target), timing.ScaleOutDatapoints, want)
			if want < out.Desired {
				d.Reason += fmt.Sprintf(" (asked %d, MaxCapacity %d)", out.Desired, hi)
			}
		}
		return d
	}

	// Scale in only if every policy with a say agrees, to the largest count
	// asked for, by at most the scale-in step.
	in, ok := largest(d.Evaluations, VoteIn)
	if !ok {
		d.Reason = summary(d.Evaluations)
		return d
	}
	for _, e := range d.Evaluations {
		if e.Vote != VoteIn && e.Vote != VoteAbstain {
			d.Reason = fmt.Sprintf("policy %s asks for %d but policy %s is not ready to scale in (%s)", in.Policy, in.Desired, e.Policy, e.Vote)
			return d
		}
	}
	step := max(1, int(math.Floor(float64(current)*timing.MaxScaleInFraction)))
	want := max(in.Desired, current-step, lo)
	switch {
	case want >= current:
		d.Reason = fmt.Sprintf("policy %s asks for %d but MinCapacity is %d", in.Policy, in.Desired, lo)
	case susp.DynamicScalingInSuspended:
		d.Reason = fmt.Sprintf("policy %s asks for %d but dynamic scale-in is suspended", in.Policy, in.Desired)
	case now.Before(d.ScaleOutCooldownEnds):
		d.Reason = fmt.Sprintf("policy %s asks for %d; scale-out cooldown until %s blocks scale-in",
			in.Policy, in.Desired, d.ScaleOutCooldownEnds.Format(time.RFC3339))
	case now.Before(d.ScaleInCooldownEnds):
		d.Reason = fmt.Sprintf("policy %s asks for %d; scale-in cooldown until %s holds it",
			in.Policy, in.Desired, d.ScaleInCooldownEnds.Format(time.RFC3339))
	default:
		d.Desired, d.Action, d.Policy, d.Alarm = want, ActionScaleIn, in.Policy, alarmLow
		d.LastScaleIn = now
		d.ScaleInCooldownEnds = now.Add(cooldown(byName[in.Policy].ScaleInCooldown, timing.DefaultScaleInCooldown))
		d.Reason = fmt.Sprintf("policy %s: %s %s below %s of target %s for %d datapoints; desired %d",
			in.Policy, in.Metric, num(in.Value), num(timing.ScaleInThreshold*100)+"%", num(in.Target), timing.ScaleInDatapoints, want)
		if want != in.Desired {
			d.Reason += fmt.Sprintf(" (asked %d, at most %d removed at once, MinCapacity %d)", in.Desired, step, lo)
		}
	}
	return d
}

// evaluate reads one policy's alarms.
func evaluate(p catalog.ScalingPolicy, history []pool.Stats, current int, timing Timing, now time.Time) Evaluation {
	e := Evaluation{Policy: p.PolicyName, Vote: VoteInvalid}
	c := p.TargetTrackingScalingPolicyConfiguration
	if c == nil || !(c.TargetValue > 0) {
		return e
	}
	m, err := metricOf(c)
	if err != nil {
		return e
	}
	e.Metric, e.Target = m.name, c.TargetValue

	outPeriod := timing.Period
	if m.highRes {
		outPeriod = timing.HighResolutionPeriod
	}
	if dps, ok := datapoints(m, history, now, outPeriod, timing.ScaleOutDatapoints); ok {
		e.Value = dps[0].value
		if all(dps, func(v float64) bool { return v > c.TargetValue }) {
			// The high alarm fires: out if that asks for more, and never in.
			e.Desired = proportional(dps[0], c.TargetValue)
			e.Vote = VoteHold
			if e.Desired > current {
				e.Vote = VoteOut
			}
			return e
		}
	}
	dps, ok := datapoints(m, history, now, timing.Period, timing.ScaleInDatapoints)
	if !ok {
		e.Vote = VoteNoData
		return e
	}
	e.Value = dps[0].value
	e.Vote = VoteHold
	if all(dps, func(v float64) bool { return v < timing.ScaleInThreshold*c.TargetValue }) {
		if c.DisableScaleIn {
			e.Vote = VoteAbstain
			return e
		}
		e.Desired = proportional(dps[0], c.TargetValue)
		if e.Desired < current {
			e.Vote = VoteIn
		}
	}
	return e
}

// proportional is ceil(capacity × metric / target), forgiving float noise.
func proportional(dp datapoint, target float64) int {
	return int(math.Ceil(dp.load/target - 1e-9))
}

func all(dps []datapoint, f func(float64) bool) bool {
	for _, dp := range dps {
		if !f(dp.value) {
			return false
		}
	}
	return true
}

// largest returns the evaluation with vote v asking for the most (the first
// by policy name on a tie).
func largest(es []Evaluation, v Vote) (Evaluation, bool) {
	var best Evaluation
	found := false
	for _, e := range es {
		if e.Vote == v && (!found || e.Desired > best.Desired) {
			best, found = e, true
		}
	}
	return best, found
}

func cooldown(seconds *int, def time.Duration) time.Duration {
	if seconds == nil {
		return def
	}
	return time.Duration(*seconds) * time.Second
}

func summary(es []Evaluation) string {
	parts := make([]string, 0, len(es))
	for _, e := range es {
		if e.Vote == VoteInvalid {
			parts = append(parts, fmt.Sprintf("%s: cannot be evaluated", e.Policy))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s %s (target %s) %s", e.Policy, e.Metric, num(e.Value), num(e.Target), e.Vote))
	}
	return "no change; " + strings.Join(parts, "; ")
}

func num(f float64) string { return fmt.Sprintf("%.4g", f) }
