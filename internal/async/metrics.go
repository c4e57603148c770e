package async

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// counters are the mode's cumulative counts, by endpoint.
type counters struct {
	mu                          sync.Mutex
	acc, done, fail, exp, aband map[string]float64
	notifyFail                  float64
}

func newCounters() *counters {
	return &counters{acc: map[string]float64{}, done: map[string]float64{}, fail: map[string]float64{}, exp: map[string]float64{}, aband: map[string]float64{}}
}

func (c *counters) add(m map[string]float64, ep string) { c.mu.Lock(); m[ep]++; c.mu.Unlock() }
func (c *counters) accepted(ep string)                  { c.add(c.acc, ep) }
func (c *counters) processed(ep string)                 { c.add(c.done, ep) }
func (c *counters) failed(ep string)                    { c.add(c.fail, ep) }
func (c *counters) expired(ep string)                   { c.add(c.exp, ep) }
func (c *counters) abandoned(ep string)                 { c.add(c.aband, ep) }
func (c *counters) notifyFailed()                       { c.mu.Lock(); c.notifyFail++; c.mu.Unlock() }

// Backlog is an endpoint's queue as SageMaker's async metrics report it.
type Backlog struct {
	Size        int           // ApproximateBacklogSize: queued or running
	PerInstance float64       // ApproximateBacklogSizePerInstance
	OldestAge   time.Duration // ApproximateAgeOfOldestRequest
	// WithoutCapacity is HasBacklogWithoutCapacity: requests queued and
	// no instance running.
	WithoutCapacity bool
}

// Backlog reads an endpoint's queue depth.
func (s *Service) Backlog(ctx context.Context, endpoint string) (Backlog, error) {
	d, err := s.q.Depth(ctx, topicOf(endpoint))
	if err != nil {
		return Backlog{}, err
	}
	b := Backlog{Size: d.Messages}
	if !d.Oldest.IsZero() {
		b.OldestAge = max(s.cfg.Now().Sub(d.Oldest), 0)
	}
	instances := 0
	if ep, err := s.hosting.AsyncEndpoint(ctx, endpoint); err == nil {
		instances = ep.Instances
	}
	if instances > 0 {
		b.PerInstance = float64(b.Size) / float64(instances)
	} else {
		b.PerInstance = float64(b.Size)
		b.WithoutCapacity = b.Size > 0
	}
	return b, nil
}

// BacklogSize is the endpoint's queue depth, 0 if unknown (for hosting's
// autoscaling statistics).
func (s *Service) BacklogSize(endpoint string) int {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	d, err := s.q.Depth(ctx, topicOf(endpoint))
	if err != nil {
		return 0
	}
	return d.Messages
}

// Slots is how many worker slots pull the endpoint's queue now (0 when it
// has no worker). It follows the endpoint's capacity up and down within
// Config.CapacityPoll; a retired slot running a request stops when the
// request ends.
func (s *Service) Slots(endpoint string) int {
	s.mu.Lock()
	w := s.workers[endpoint]
	s.mu.Unlock()
	if w == nil {
		return 0
	}
	return int(w.running.Load())
}

// Abandoned is how many of the endpoint's requests were dropped because
// their failure object could not be written (the metric's value).
func (s *Service) Abandoned(endpoint string) int {
	s.metrics.mu.Lock()
	defer s.metrics.mu.Unlock()
	return int(s.metrics.aband[endpoint])
}

func (s *Service) endpoints() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.workers))
	for ep := range s.workers {
		out = append(out, ep)
	}
	return out
}

var (
	descBacklog   = prometheus.NewDesc("sagemaker_async_approximate_backlog_size", "Requests queued or running on an async endpoint (ApproximateBacklogSize).", []string{"endpoint"}, nil)
	descPerInst   = prometheus.NewDesc("sagemaker_async_approximate_backlog_size_per_instance", "Backlog divided by running instances (ApproximateBacklogSizePerInstance).", []string{"endpoint"}, nil)
	descOldest    = prometheus.NewDesc("sagemaker_async_approximate_age_of_oldest_request_seconds", "Age of the oldest queued request (ApproximateAgeOfOldestRequest).", []string{"endpoint"}, nil)
	descNoCap     = prometheus.NewDesc("sagemaker_async_has_backlog_without_capacity", "1 when requests are queued and no instance runs (HasBacklogWithoutCapacity).", []string{"endpoint"}, nil)
	descAccepted  = prometheus.NewDesc("sagemaker_async_requests_accepted_total", "InvokeEndpointAsync requests queued.", []string{"endpoint"}, nil)
	descProcessed = prometheus.NewDesc("sagemaker_async_invocations_processed_total", "Async requests that wrote their output (InvocationsProcesssed).", []string{"endpoint"}, nil)
	descFailed    = prometheus.NewDesc("sagemaker_async_invocation_failures_total", "Async requests that wrote a failure object (InvocationFailures).", []string{"endpoint"}, nil)
	descExpired   = prometheus.NewDesc("sagemaker_async_expired_requests_total", "Async requests whose TTL expired in the queue (ExpiredRequests).", []string{"endpoint"}, nil)
	descAbandoned = prometheus.NewDesc("sagemaker_async_abandoned_requests_total", "Async requests dropped from the queue after their last delivery because their failure object could not be written.", []string{"endpoint"}, nil)
	descSlots     = prometheus.NewDesc("sagemaker_async_worker_slots", "Worker slots pulling an async endpoint's queue (follows its capacity).", []string{"endpoint"}, nil)
	descNotify    = prometheus.NewDesc("sagemaker_async_notification_failures_total", "Failed notification deliveries (NotificationFailures).", nil, nil)
)

// Collector exposes the backlog metrics; register it with the server's
// Prometheus registry.
func (s *Service) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Service }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBacklog, descPerInst, descOldest, descNoCap, descAccepted, descProcessed, descFailed, descExpired, descAbandoned, descSlots, descNotify} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, ep := range c.s.endpoints() {
		b, err := c.s.Backlog(ctx, ep)
		if err != nil {
			continue
		}
		noCap := 0.0
		if b.WithoutCapacity {
			noCap = 1
		}
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(b.Size), ep)
		ch <- prometheus.MustNewConstMetric(descPerInst, prometheus.GaugeValue, b.PerInstance, ep)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, b.OldestAge.Seconds(), ep)
		ch <- prometheus.MustNewConstMetric(descNoCap, prometheus.GaugeValue, noCap, ep)
		ch <- prometheus.MustNewConstMetric(descSlots, prometheus.GaugeValue, float64(c.s.Slots(ep)), ep)
	}
	m := c.s.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	for desc, vals := range map[*prometheus.Desc]map[string]float64{descAccepted: m.acc, descProcessed: m.done, descFailed: m.fail, descExpired: m.exp, descAbandoned: m.aband} {
		for ep, v := range vals {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, ep)
		}
	}
	ch <- prometheus.MustNewConstMetric(descNotify, prometheus.CounterValue, m.notifyFail)
}
