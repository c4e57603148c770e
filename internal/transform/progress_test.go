package transform

import (
	"testing"
	"time"
)

func TestEstimate(t *testing.T) {
	for _, tc := range []struct {
		name            string
		done, remaining int64
		elapsed         time.Duration
		want            int64
		ok              bool
	}{
		{"nothing read yet", 0, 100, time.Second, 0, false},
		{"no time yet", 10, 100, 0, 0, false},
		{"half way", 50, 50, 10 * time.Second, 10, true},
		{"quarter way", 25, 75, 10 * time.Second, 30, true},
		{"done", 100, 0, 10 * time.Second, 0, true},
		{"rounds to nearest", 3, 1, time.Second, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := estimate(tc.done, tc.remaining, tc.elapsed)
			if got != tc.want || ok != tc.ok {
				t.Errorf("estimate(%d, %d, %v) = %d, %v; want %d, %v", tc.done, tc.remaining, tc.elapsed, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestSnapshotCountsOnlyThisRunForTheRate(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// 600 of 1000 bytes were done before a restart; this run read 100
	// more in 10 s, so 300 left take 30 s.
	p := &progress{bytesTotal: 1000, objectsTotal: 4, started: start, bytesAtStart: 600}
	p.bytes.Store(700)
	p.objectsDone.Store(3)
	p.records.Add(42)
	s := p.snapshot(start.Add(10 * time.Second))
	if s.BytesProcessed != 700 || s.BytesTotal != 1000 || s.ObjectsCompleted != 3 || s.ObjectsTotal != 4 || s.RecordsProcessed != 42 {
		t.Errorf("snapshot = %+v", s)
	}
	if s.EstimatedSecondsRemaining == nil || *s.EstimatedSecondsRemaining != 30 {
		t.Errorf("EstimatedSecondsRemaining = %v, want 30", s.EstimatedSecondsRemaining)
	}
	if f := p.final(); f.EstimatedSecondsRemaining != nil {
		t.Errorf("final progress has an estimate")
	}
}
