package catalog

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAsyncInferenceIndex(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.InitAsyncInferences(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &AsyncInference{Endpoint: "ep", InferenceID: "id/1", Status: "Pending", OutputLocation: "s3://b/id/1.out", Accepted: t0, Updated: t0}
	if err := s.PutAsyncInference(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAsyncInference(ctx, "other", "id/1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another endpoint's id: %v", err)
	}
	a.Status, a.Updated = "Completed", t0.Add(time.Minute)
	if err := s.PutAsyncInference(ctx, a); err != nil {
		t.Fatal(err)
	}
	pending := &AsyncInference{Endpoint: "ep", InferenceID: "p", Status: "Pending", Accepted: t0, Updated: t0}
	if err := s.PutAsyncInference(ctx, pending); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// The index survives a reopen.
	s = reopen(t, path)
	if err := s.InitAsyncInferences(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAsyncInference(ctx, "ep", "id/1")
	if err != nil || got.Status != "Completed" || !got.Accepted.Equal(t0) || got.OutputLocation != a.OutputLocation {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	// Pruning drops finished records older than the cutoff, never pending ones.
	n, err := s.PruneAsyncInferences(ctx, t0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	if _, err := s.GetAsyncInference(ctx, "ep", "p"); err != nil {
		t.Fatalf("pending record pruned: %v", err)
	}
	if err := s.DeleteAsyncInference(ctx, "ep", "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAsyncInference(ctx, "ep", "p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
