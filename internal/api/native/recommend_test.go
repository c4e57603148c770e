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

// TestRecommendationsWired asks the real server for recommendations on its
// (empty) ledger.
func TestRecommendationsWired(t *testing.T) {
	c := native.NewClient(startServer(t), "", nil)
	rs, err := c.Recommendations(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if rs.To.Sub(rs.From) != 24*time.Hour || len(rs.Recommendations) != 0 || len(rs.Endpoints) != 0 {
		t.Errorf("recommendations %+v", rs)
	}
}

func TestRecommendations(t *testing.T) {
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
	// One ml.m5.large for 10 h ($1.15) serving one hour of 1 s requests
	// every 10 s: busy 360 s, idle 99%.
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	l.InstanceStarted(meter.InstanceUsage{InstanceID: "a", Mode: "realtime", Resource: "fraud", Variant: "v1", InstanceType: "ml.m5.large", Start: day})
	l.InstanceStopped("a", day.Add(10*time.Hour))
	for i := range 360 {
		l.RecordInvocation(meter.Invocation{Time: day.Add(time.Hour + time.Duration(i)*10*time.Second), Mode: "realtime",
			Resource: "fraud", Variant: "v1", ModelLatency: time.Second})
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	api := native.New(nil, nil, nil, nil)
	api.RegisterCost(l, "")
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := native.NewClient(srv.URL, "", nil)

	rs, err := c.Recommendations(ctx, day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// serverless: 360 s × 2 GB × $0.00002 = $0.0144 against $1.15.
	if len(rs.Recommendations) != 1 || rs.Recommendations[0].AlternativeNanodollars != 14_400_000 ||
		rs.Recommendations[0].Text != "endpoint fraud was idle 99% of the time: serverless would have cost $0.0144 (−99%) instead of $1.15, adding a cold start to 0.28% of requests" {
		t.Errorf("recommendations %+v", rs.Recommendations)
	}

	for _, tc := range []struct{ query, want string }{
		{"?from=yesterday", "yesterday"},
		{"?from=2026-03-03&to=2026-03-02", "to must be after from"},
	} {
		_, err := c.Raw(ctx, http.MethodGet, native.RecommendationsPath+tc.query, nil)
		var ae *native.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "ValidationError" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want a validation error naming %q", tc.query, err, tc.want)
		}
	}
}
