package native_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/meter"
)

// TestCostWired asks the real server for a report on its (empty) ledger.
func TestCostWired(t *testing.T) {
	c := native.NewClient(startServer(t), "", nil)
	rep, err := c.Cost(context.Background(), time.Time{}, time.Time{}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.By != "mode" || !rep.Check.Reconciled || rep.To.Sub(rep.From) != 24*time.Hour || rep.Region != "us-east-1" {
		t.Errorf("report %+v", rep)
	}
}

func TestCostReport(t *testing.T) {
	ctx := context.Background()
	s, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := meter.NewLedger(ctx, s.DB(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	l.InstanceStarted(meter.InstanceUsage{InstanceID: "a", Mode: "realtime", Resource: "fraud", Variant: "v1", InstanceType: "ml.m5.large", Start: day})
	l.InstanceStopped("a", day.Add(10*time.Hour))
	l.RecordInvocation(meter.Invocation{Time: day.Add(time.Hour), Mode: "realtime", Resource: "fraud", Variant: "v1", Caller: "alice", ModelLatency: time.Hour})
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	api := native.New(nil, nil, nil, nil)
	api.RegisterCost(l, "")
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := native.NewClient(srv.URL, "", nil)

	rep, err := c.Cost(ctx, day, day.Add(24*time.Hour), "caller", false)
	if err != nil {
		t.Fatal(err)
	}
	// 10 h × $0.115 = $1.15: 1 h busy for alice, 9 h idle.
	if rep.Nanodollars != 1_150_000_000 || len(rep.Lines) != 2 || rep.Lines[0].Kind != "idle" ||
		rep.Lines[0].Nanodollars != 1_035_000_000 || rep.Lines[1].Key != "alice" || !rep.Check.Reconciled {
		t.Errorf("report %+v", rep)
	}

	for _, tc := range []struct{ query, want string }{
		{"?by=colour", "colour"},
		{"?from=yesterday", "yesterday"},
		{"?from=2026-03-03&to=2026-03-02", "to must be after from"},
		{"?unpriced=maybe", "maybe"},
	} {
		_, err := c.Raw(ctx, http.MethodGet, native.CostPath+tc.query, nil)
		var ae *native.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "ValidationError" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a validation error naming %q", tc.query, err, tc.want)
		}
	}

	// A price-book override file that cannot be read fails the report, naming it.
	api2 := native.New(nil, nil, nil, nil)
	api2.RegisterCost(l, filepath.Join(t.TempDir(), "missing.yaml"))
	srv2 := httptest.NewServer(api2)
	defer srv2.Close()
	if _, err := native.NewClient(srv2.URL, "", nil).Cost(ctx, day, day.Add(time.Hour), "", false); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing override file: %v", err)
	}
}
