package cli_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/cli"
	"github.com/inferbox/inferbox/internal/meter"
)

// costServer serves the native cost route over a real ledger holding a
// small scripted day, plus the instances in extra.
func costServer(t *testing.T, extra ...meter.InstanceUsage) string {
	t.Helper()
	ctx := context.Background()
	s, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l, err := meter.NewLedger(ctx, s.DB(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	inst := func(u meter.InstanceUsage, h0, h1 int) {
		u.Variant, u.Start = "v1", day.Add(time.Duration(h0)*time.Hour)
		l.InstanceStarted(u)
		l.InstanceStopped(u.InstanceID, day.Add(time.Duration(h1)*time.Hour))
	}
	inst(meter.InstanceUsage{InstanceID: "f1", Mode: "realtime", Resource: "fraud", InstanceType: "ml.m5.large"}, 0, 24)
	inst(meter.InstanceUsage{InstanceID: "c1", Mode: "batch", Resource: "churn", InstanceType: "ml.m5.xlarge"}, 2, 4)
	inst(meter.InstanceUsage{InstanceID: "p1", Mode: "serverless-provisioned", Resource: "recs", InstanceType: "serverless-2048MB"}, 8, 20)
	for _, u := range extra {
		inst(u, 5, 6)
	}
	for i := range 7200 {
		caller := "alice"
		if i%3 == 0 {
			caller = "bob"
		}
		l.RecordInvocation(meter.Invocation{Time: day.Add(9*time.Hour + time.Duration(i)*time.Second), Mode: "realtime",
			Resource: "fraud", Variant: "v1", Caller: caller, ModelLatency: 200 * time.Millisecond})
		l.RecordInvocation(meter.Invocation{Time: day.Add(9*time.Hour + time.Duration(i)*time.Second), Mode: "serverless",
			Resource: "recs", Variant: "v1", Caller: "carol", ModelLatency: 4 * time.Millisecond, MemoryMB: 2048})
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	api := native.New(nil, nil, nil, nil)
	api.RegisterCost(l, "")
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv.URL
}

func runCost(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := cli.ExecuteWith(context.Background(), append([]string{"cost", "--server", url}, args...), strings.NewReader(""), &out, &errb)
	return out.String() + errb.String(), err
}

func TestCostCLI(t *testing.T) {
	url := costServer(t)
	period := []string{"--from", "2026-03-02", "--to", "2026-03-03"}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"cost-by-mode-chart", []string{"--by", "mode", "--chart"}},
		{"cost-by-caller", []string{"--by", "caller"}},
		{"cost-by-resource", []string{"--by", "resource"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCost(t, url, append(period, tc.args...)...)
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if !strings.Contains(out, ": reconciled") {
				t.Errorf("no reconciled check in\n%s", out)
			}
			golden(t, tc.name, out)
		})
	}
	t.Run("html", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "cost.html")
		if out, err := runCost(t, url, append(period, "--html", path)...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"<svg", "<rect", "realtime idle (paid for, unused)", "$2.714000"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("html lacks %q", want)
			}
		}
	})
}

func TestCostCLIMissingPrice(t *testing.T) {
	url := costServer(t, meter.InstanceUsage{InstanceID: "x", Mode: "async", Resource: "exotic", InstanceType: "ml.x9.huge"})
	period := []string{"--from", "2026-03-02", "--to", "2026-03-03", "--by", "resource"}
	out, err := runCost(t, url, period...)
	if err == nil || !strings.Contains(err.Error(), `instance type "ml.x9.huge"`) {
		t.Fatalf("err = %v, out %s; want a missing price naming ml.x9.huge", err, out)
	}
	out, err = runCost(t, url, append(period, "--unpriced")...)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(out, "exotic UNPRICED: instance type ml.x9.huge") || !strings.Contains(out, ": reconciled") {
		t.Errorf("no unpriced line in\n%s", out)
	}
}
