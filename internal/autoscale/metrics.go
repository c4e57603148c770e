package autoscale

import (
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/pool"
)

// metricKind is what the pool measures for a policy's metric.
type metricKind int

const (
	kindInvocationsPerInstance metricKind = iota // per minute per ready instance
	kindInvocations                              // per minute, whole variant
	kindModelLatency                             // microseconds, average
	kindConcurrency                              // (InFlight+Queued) per ready instance
	kindBacklogPerInstance                       // Queued per ready instance
)

// metric is a policy's metric resolved onto pool.Stats.
type metric struct {
	name    string // as the policy names it, for reasons and logs
	kind    metricKind
	max     bool // Maximum over the samples instead of Average (gauges only)
	highRes bool // scale-out datapoints are Timing.HighResolutionPeriod long
}

// customMetric maps a customized MetricName to what it measures and the
// statistics it supports.
func customMetric(name string) (kind metricKind, stats []string, ok bool) {
	switch name {
	case "InvocationsPerInstance":
		return kindInvocationsPerInstance, []string{"Sum"}, true
	case "Invocations":
		return kindInvocations, []string{"Sum"}, true
	case "ModelLatency":
		return kindModelLatency, []string{"Average"}, true
	case "ConcurrentRequestsPerModel":
		return kindConcurrency, []string{"Average", "Maximum"}, true
	case "ApproximateBacklogSizePerInstance":
		return kindBacklogPerInstance, []string{"Average", "Maximum"}, true
	}
	return 0, nil, false
}

const supportedCustomMetrics = "ApproximateBacklogSizePerInstance, ConcurrentRequestsPerModel, Invocations, InvocationsPerInstance, ModelLatency"

// metricOf resolves a policy configuration's metric, or says why it cannot.
func metricOf(c *catalog.TargetTrackingConfig) (metric, error) {
	pre, cus := c.PredefinedMetricSpecification, c.CustomizedMetricSpecification
	switch {
	case pre != nil && cus != nil:
		return metric{}, invalidf("specify either PredefinedMetricSpecification or CustomizedMetricSpecification, not both")
	case pre == nil && cus == nil:
		return metric{}, invalidf("one of PredefinedMetricSpecification and CustomizedMetricSpecification is required")
	case pre != nil:
		if pre.ResourceLabel != "" {
			return metric{}, invalidf("ResourceLabel is not supported for PredefinedMetricType %s", pre.PredefinedMetricType)
		}
		switch pre.PredefinedMetricType {
		case PredefinedInvocationsPerInstance:
			return metric{name: pre.PredefinedMetricType, kind: kindInvocationsPerInstance}, nil
		case PredefinedConcurrentRequestsHighRes:
			return metric{name: pre.PredefinedMetricType, kind: kindConcurrency, highRes: true}, nil
		}
		return metric{}, invalidf("PredefinedMetricType %q is not supported (supported: %s, %s)",
			pre.PredefinedMetricType, PredefinedInvocationsPerInstance, PredefinedConcurrentRequestsHighRes)
	}
	if cus.Namespace != MetricNamespace {
		return metric{}, invalidf("CustomizedMetricSpecification.Namespace %q is not supported (supported: %s)", cus.Namespace, MetricNamespace)
	}
	kind, stats, ok := customMetric(cus.MetricName)
	if !ok {
		return metric{}, invalidf("CustomizedMetricSpecification.MetricName %q is not supported (supported: %s)", cus.MetricName, supportedCustomMetrics)
	}
	if !slices.Contains(stats, cus.Statistic) {
		return metric{}, invalidf("CustomizedMetricSpecification.Statistic %q is not supported for MetricName %s (supported: %s)",
			cus.Statistic, cus.MetricName, strings.Join(stats, ", "))
	}
	return metric{name: cus.MetricName + "/" + cus.Statistic, kind: kind, max: cus.Statistic == "Maximum"}, nil
}

// datapoint is one period's value of a metric.
type datapoint struct {
	value float64
	// load is capacity × value taken as the load the metric measured: for
	// per-instance metrics the variant-wide load itself (invocations per
	// minute, requests in flight and queued), so a period that straddles a
	// scale-out is not counted twice; for others the mean number of ready
	// instances (at least 1) times the value.
	load float64
}

// datapoints returns the n newest complete datapoints of m, newest first.
// Periods are aligned to multiples of period, as CloudWatch's are: the
// newest ends at now truncated to period. ok is false if any is missing.
// history is ordered oldest first.
func datapoints(m metric, history []pool.Stats, now time.Time, period time.Duration, n int) ([]datapoint, bool) {
	out := make([]datapoint, 0, n)
	last := now.Truncate(period)
	for k := range n {
		end := last.Add(-time.Duration(k) * period)
		dp, ok := m.over(history, end.Add(-period), end)
		if !ok {
			return nil, false
		}
		out = append(out, dp)
	}
	return out, true
}

// over computes m for the period (start, end].
func (m metric) over(h []pool.Stats, start, end time.Time) (datapoint, bool) {
	// first index with At > start, first index with At > end.
	lo := sort.Search(len(h), func(i int) bool { return h[i].At.After(start) })
	hi := sort.Search(len(h), func(i int) bool { return h[i].At.After(end) })
	if lo >= hi {
		return datapoint{}, false
	}
	in := h[lo:hi]
	capacity := 0.0
	for _, s := range in {
		capacity += float64(s.Instances)
	}
	capacity = math.Max(capacity/float64(len(in)), 1)

	switch m.kind {
	case kindConcurrency, kindBacklogPerInstance:
		var dp datapoint
		for _, s := range in {
			load := float64(s.Queued)
			if m.kind == kindConcurrency {
				load += float64(s.InFlight)
			}
			v := load / math.Max(float64(s.Instances), 1)
			switch {
			case !m.max:
				dp.value += v / float64(len(in))
				dp.load += load / float64(len(in))
			case v >= dp.value:
				dp.value, dp.load = v, load
			}
		}
		return dp, true
	}

	// Counters: from the newest sample at or before start to the newest in
	// the period.
	if lo == 0 {
		return datapoint{}, false
	}
	base, last := h[lo-1], in[len(in)-1]
	dt := last.At.Sub(base.At)
	if dt <= 0 || last.Invocations < base.Invocations || last.ModelLatencySum < base.ModelLatencySum {
		return datapoint{}, false // counters reset: the pool was replaced
	}
	dInv := float64(last.Invocations - base.Invocations)
	var dp datapoint
	switch m.kind {
	case kindInvocationsPerInstance:
		dp.load = dInv / dt.Minutes()
		dp.value = dp.load / capacity
	case kindInvocations:
		dp.value = dInv / dt.Minutes()
		dp.load = capacity * dp.value
	case kindModelLatency:
		if dInv == 0 {
			return datapoint{}, false
		}
		dp.value = float64((last.ModelLatencySum - base.ModelLatencySum).Microseconds()) / dInv
		dp.load = capacity * dp.value
	}
	return dp, true
}
