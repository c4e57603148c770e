// Package autoscale owns target-tracking autoscaling of endpoint variants as
// Application Auto Scaling does it: the scaling decision and the loop that
// applies it.
//
// Deciding is pure: [Decide] is a function of (metrics history, current
// count, scalable target, policies, last decision, timing, now) and returns
// the next [Decision]. [Loop] is thin: each tick it samples every registered
// target through a [Source], calls Decide, applies a change through a
// [Scaler] and records a scaling [Activity]. Time comes from an injected
// [Clock], so tests read as a timeline.
//
// autoscale imports catalog (the records) and pool (the Stats snapshot) only.
// It must not import protocol adapters (internal/api/...), mode services
// (realtime, serverless, async, ...) or the composition root: a mode service
// implements Source and Scaler and hands them to NewLoop.
//
// # Metrics
//
// A policy's metric is computed from the pool.Stats samples the loop keeps.
// Datapoints are periods aligned to multiples of the period length, as
// CloudWatch's are; the newest complete one ends at now truncated to the
// period. Counters are turned into rates from the newest sample at or before
// a period's start and the newest sample inside it; gauges are averaged over
// the samples inside the period. A period with no samples, or with no
// baseline sample before it, is missing data (CloudWatch's
// INSUFFICIENT_DATA): the policy neither scales out nor agrees to scale in.
//
//   - SageMakerVariantInvocationsPerInstance (predefined), and customized
//     InvocationsPerInstance/Sum: invocations per minute per instance =
//     Δinvocations / minutes / mean ready instances. Sums are per minute
//     whatever Period is, so a target written for AWS works unchanged in a
//     demo that runs with a 2-second period.
//   - Invocations/Sum (customized): invocations per minute for the variant.
//   - ModelLatency/Average (customized): Δlatency-sum / Δinvocations in
//     microseconds; a period with no finished invocation is missing data.
//   - SageMakerVariantConcurrentRequestsPerModelHighResolution (predefined),
//     and customized ConcurrentRequestsPerModel/Average|Maximum: (InFlight +
//     Queued) / ready instances, averaged (or maxed) over the samples. The
//     predefined one is high resolution: its scale-out datapoints are
//     Timing.HighResolutionPeriod (AWS: 10 s) long; scale-in uses Period.
//   - ApproximateBacklogSizePerInstance/Average|Maximum (customized, the
//     async inference metric): Queued / ready instances.
//
// Only namespace AWS/SageMaker is accepted; any other metric or statistic is
// refused by [ValidatePolicy] with an error naming it. Ready instances are
// counted at least 1, so a variant at zero instances with queued work still
// has a metric.
//
// # Alarms
//
// Each policy behaves like the two CloudWatch alarms AWS creates for it:
//
//   - high: the metric is above TargetValue for ScaleOutDatapoints
//     consecutive datapoints (AWS: 3 of 1 minute).
//   - low: the metric is below ScaleInThreshold × TargetValue (AWS: 90 %)
//     for ScaleInDatapoints consecutive datapoints (AWS: 15 of 1 minute).
//
// As with CloudWatch alarms driving Auto Scaling actions, an alarm keeps
// invoking its policy while it stays in ALARM, so a policy can act again as
// soon as its cooldown allows.
//
// # Desired count
//
// The desired count is ceil(capacity × metric / TargetValue) with the newest
// datapoint, where capacity × metric is the load the metric measured: for
// per-instance metrics the variant-wide load over the datapoint (invocations
// per minute; requests in flight and queued), for the others the mean number
// of ready instances (at least 1) times the metric. Counting the measured
// load rather than multiplying the desired count keeps a scale-out stable
// while new instances start, and a datapoint that straddles a scale-out is
// not counted twice.
//
// Scale-in is conservative, as AWS's is ("scales out proportionally ... as
// fast as it can, but scales in more gradually"; AWS does not document the
// step): one scale-in removes at most max(1, floor(current ×
// Timing.MaxScaleInFraction)) instances (default one half), so 8 idle
// instances go 8→4→2→1, one scale-in cooldown apart.
//
// # Combining policies
//
// Several policies on one target: scale out if any policy's high alarm says
// so, to the largest count any of them asks for; scale in only if every
// policy with scale-in enabled is in its low alarm, to the largest count any
// of them asks for (AWS: "scales based on the policy that provides the
// largest capacity for both scale in and scale out"). A policy with
// DisableScaleIn still scales out and does not vote on scale-in. A policy
// without data vetoes scale-in (its low alarm is not in ALARM).
//
// # Cooldowns
//
// ScaleOutCooldown and ScaleInCooldown come from the policy that drove the
// activity, else Timing's defaults (AWS: 300 s for SageMaker variants).
//
//   - During a scale-out cooldown, the capacity the scale-out added counts as
//     already there: another scale-out happens only if it asks for more than
//     the count that scale-out set (AWS: "won't increase the desired capacity
//     again unless either a larger scale out is triggered or the cooldown
//     period ends").
//   - During a scale-out cooldown, scale-in is blocked: the instances just
//     added have not had time to take load (AWS does not say this outright;
//     its 15-minute low alarm rarely fires within a 5-minute scale-out
//     cooldown, so the outcome is the same at the defaults).
//   - During a scale-in cooldown, scale-in is blocked; a scale-out happens
//     immediately and ends the scale-in cooldown (AWS: "the scale-in cooldown
//     period stops and doesn't complete").
//
// # Capacity bounds
//
// MinCapacity and MaxCapacity are enforced on every decision, policies or
// not: a current count outside them is set to the nearest bound at once (for
// example after RegisterScalableTarget raises MinCapacity). Such a change
// does not start a cooldown. SuspendedState's DynamicScalingOutSuspended and
// DynamicScalingInSuspended stop the policies from scaling out or in; the
// bounds still apply.
//
// # Restarts
//
// The Loop writes every activity, and a target's cooldown state after each
// change, to a [Journal] (the catalog; NewRegistry sets it), and
// Registry.Restore hands them back to a new Loop, so DescribeScalingActivities
// lists activities from before a restart and cooldowns, being wall-clock
// times, still hold. The metric history is not kept: after a restart the
// policies need their datapoints again.
package autoscale
