package catalog

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestProvisionedThroughputs(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	p := &ProvisionedThroughput{ID: "abcdefghijkl", Name: "pt-a", ModelID: "meta.x", ModelUnits: 2,
		Commitment: "OneMonth", Expires: now.AddDate(0, 1, 0), Status: "Creating", Created: now, LastChanged: now}
	if err := s.CreateProvisioned(ctx, p); err != nil {
		t.Fatal(err)
	}
	dup := *p
	dup.ID = "zzzzzzzzzzzz"
	dup.Name = "PT-A"
	if err := s.CreateProvisioned(ctx, &dup); !errors.Is(err, ErrExists) {
		t.Fatalf("same name in another case: %v, want ErrExists", err)
	}
	p.Status = "InService"
	if err := s.PutProvisioned(ctx, p); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = reopen(t, path)
	got, err := s.ListProvisioned(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Status != "InService" || got[0].ModelUnits != 2 || !got[0].Expires.Equal(p.Expires) {
		t.Fatalf("after reopen: %+v", got)
	}
	if err := s.DeleteProvisioned(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProvisioned(ctx, p.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.PutProvisioned(ctx, p); !errors.Is(err, ErrNotFound) {
		t.Fatalf("put after delete: %v", err)
	}
}
