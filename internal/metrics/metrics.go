// Package metrics exposes inferbox's measurements on Prometheus's /metrics,
// named after SageMaker's CloudWatch metrics (Invocations,
// Invocation4XXErrors, Invocation5XXErrors, ModelLatency and
// OverheadLatency in microseconds, instance counts) with endpoint and
// variant labels.
//
// It owns its registry (no global default registry) and imports nothing
// from inferbox.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of inferbox's collectors.
type Metrics struct {
	reg         *prometheus.Registry
	invocations *prometheus.CounterVec
	errors4xx   *prometheus.CounterVec
	errors5xx   *prometheus.CounterVec
	model       *prometheus.HistogramVec
	overhead    *prometheus.HistogramVec
	instances   *prometheus.GaugeVec
	setup       *prometheus.HistogramVec
}

// latencyBuckets span 50 µs to ~100 s, in microseconds.
var latencyBuckets = prometheus.ExponentialBuckets(50, 2.5, 17)

// New returns metrics registered on a fresh registry, with Go and process
// collectors.
func New() *Metrics {
	labels := []string{"endpoint", "variant"}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sagemaker", Name: "invocations_total", Help: "InvokeEndpoint requests sent to a model endpoint variant (SageMaker Invocations).",
		}, labels),
		errors4xx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sagemaker", Name: "invocation_4xx_errors_total", Help: "Invocations answered with a 4xx status (SageMaker Invocation4XXErrors).",
		}, labels),
		errors5xx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sagemaker", Name: "invocation_5xx_errors_total", Help: "Invocations answered with a 5xx status (SageMaker Invocation5XXErrors).",
		}, labels),
		model: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sagemaker", Name: "model_latency_microseconds", Help: "Time the model took to answer, as seen by inferbox (SageMaker ModelLatency).", Buckets: latencyBuckets,
		}, labels),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sagemaker", Name: "overhead_latency_microseconds", Help: "Request time not spent in the model (SageMaker OverheadLatency).", Buckets: latencyBuckets,
		}, labels),
		setup: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sagemaker", Name: "model_setup_time_microseconds", Help: "Time to launch a serverless instance on a cold start (SageMaker ModelSetupTime).", Buckets: latencyBuckets,
		}, labels),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sagemaker", Name: "variant_instances", Help: "Ready instances of a variant (CurrentInstanceCount).",
		}, labels),
	}
	m.reg.MustRegister(m.invocations, m.errors4xx, m.errors5xx, m.model, m.overhead, m.instances, m.setup,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry lets other components register their collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Invocation records one invocation's outcome and latencies.
func (m *Metrics) Invocation(endpoint, variant string, status int, model, overhead time.Duration) {
	m.invocations.WithLabelValues(endpoint, variant).Inc()
	switch {
	case status >= 500:
		m.errors5xx.WithLabelValues(endpoint, variant).Inc()
	case status >= 400:
		m.errors4xx.WithLabelValues(endpoint, variant).Inc()
	}
	if model > 0 {
		m.model.WithLabelValues(endpoint, variant).Observe(float64(model.Microseconds()))
	}
	m.overhead.WithLabelValues(endpoint, variant).Observe(float64(overhead.Microseconds()))
}

// Instances sets a variant's ready-instance count.
func (m *Metrics) Instances(endpoint, variant string, n int) {
	m.instances.WithLabelValues(endpoint, variant).Set(float64(n))
}

// ModelSetup records a serverless cold start's duration.
func (m *Metrics) ModelSetup(endpoint, variant string, d time.Duration) {
	m.setup.WithLabelValues(endpoint, variant).Observe(float64(d.Microseconds()))
}
