package transform

import (
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/inferbox/inferbox/internal/catalog"
)

// progress counts a running job's work. Workers add to it; Describe reads
// a snapshot. It lives in memory for the run: a resumed run starts it
// again, counting the inputs finished before the restart as done.
type progress struct {
	records, bytes atomic.Int64
	objectsDone    atomic.Int64

	// Set once by execute before any work starts, then read-only.
	bytesTotal   int64
	objectsTotal int
	started      time.Time // this run's start
	bytesAtStart int64     // bytes of inputs finished before this run
}

// snapshot is the progress at now, with an estimate of the time left from
// this run's rate (bytes read per second since it started).
func (p *progress) snapshot(now time.Time) *catalog.TransformProgress {
	out := &catalog.TransformProgress{
		RecordsProcessed: p.records.Load(),
		BytesProcessed:   p.bytes.Load(),
		BytesTotal:       p.bytesTotal,
		ObjectsCompleted: int(p.objectsDone.Load()),
		ObjectsTotal:     p.objectsTotal,
	}
	if est, ok := estimate(out.BytesProcessed-p.bytesAtStart, p.bytesTotal-out.BytesProcessed, now.Sub(p.started)); ok {
		out.EstimatedSecondsRemaining = &est
	}
	return out
}

// estimate is the seconds left to read remaining bytes at the rate of
// done bytes in elapsed; false when there is no rate yet.
func estimate(done, remaining int64, elapsed time.Duration) (int64, bool) {
	if done <= 0 || elapsed <= 0 {
		return 0, false
	}
	if remaining <= 0 {
		return 0, true
	}
	rate := float64(done) / elapsed.Seconds()
	return int64(float64(remaining)/rate + 0.5), true
}

// final is the progress recorded with a job's end status: no estimate.
func (p *progress) final() *catalog.TransformProgress {
	s := p.snapshot(time.Now())
	s.EstimatedSecondsRemaining = nil
	return s
}

// countingReader adds the bytes read through it to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	k, err := c.r.Read(b)
	c.n.Add(int64(k))
	return k, err
}

// track registers a running job's progress for Describe.
func (s *Service) track(j *catalog.TransformJob, p *progress) {
	s.mu.Lock()
	s.progress[strings.ToLower(j.TransformJobName)] = p
	s.mu.Unlock()
}

func (s *Service) untrack(j *catalog.TransformJob) {
	s.mu.Lock()
	delete(s.progress, strings.ToLower(j.TransformJobName))
	s.mu.Unlock()
}

// liveProgress fills j.Progress from the running job's counters, if it runs.
func (s *Service) liveProgress(j *catalog.TransformJob) {
	s.mu.Lock()
	p := s.progress[strings.ToLower(j.TransformJobName)]
	s.mu.Unlock()
	if p != nil && j.TransformJobStatus == catalog.TransformInProgress {
		j.Progress = p.snapshot(time.Now())
	}
}
