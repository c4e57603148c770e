package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/meter"
)

// flakyWebhook answers 503 while down and records what it accepts.
type flakyWebhook struct {
	webhook
	down    atomic.Bool
	refused atomic.Int64
}

func newFlakyWebhook(t *testing.T) *flakyWebhook {
	wh := &flakyWebhook{}
	wh.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wh.down.Load() {
			wh.refused.Add(1)
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var ev map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		wh.mu.Lock()
		wh.events = append(wh.events, ev)
		wh.mu.Unlock()
	}))
	t.Cleanup(wh.srv.Close)
	return wh
}

// TestAsyncFaults: a webhook that is down does not hold up the queue and
// gets its notifications once it recovers; a model that crashes
// mid-request is retried up to the delivery limit, then fails with a
// failure object and an error notification; an input location that
// cannot be read fails with the reason. Every attempt is in the usage
// ledger under mode async (read after Shutdown, as serverless_test does).
func TestAsyncFaults(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	wh := newFlakyWebhook(t)
	c, _, stop := start(t, func(cfg *config.Config) {
		cfg.Data = data
		cfg.Async.RetryDelay = config.Duration(50 * time.Millisecond)
		cfg.Queue.MaxDeliver = 3
	})
	makeBuckets(t, c, "faultin", "asyncout")
	deployAsync(t, c, "faults", fixtureImage(t), &smtypes.AsyncInferenceNotificationConfig{
		SuccessTopic: aws.String(wh.srv.URL + "/ok"), ErrorTopic: aws.String(wh.srv.URL + "/err"),
	})
	putObject(t, c, "faultin", "in.txt", "fault input")

	t.Run("webhook down then up", func(t *testing.T) {
		wh.down.Store(true)
		var outs []*sagemakerruntime.InvokeEndpointAsyncOutput
		for range 5 {
			outs = append(outs, invokeAsync(t, c, "faults", "s3://faultin/in.txt", "mode=echo"))
		}
		// The queue keeps moving: every output is written while the
		// webhook refuses, and it has refused some deliveries.
		for _, o := range outs {
			if got := waitObject(t, c, aws.ToString(o.OutputLocation), 30*time.Second); got != "fault input" {
				t.Errorf("output %q", got)
			}
		}
		waitFor(t, 20*time.Second, "the webhook refuses deliveries", func() (bool, string) {
			return wh.refused.Load() >= 5, fmt.Sprintf("%d refused", wh.refused.Load())
		})
		wh.mu.Lock()
		n := len(wh.events)
		wh.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d notifications accepted while down", n)
		}
		wh.down.Store(false)
		for _, o := range outs {
			id := aws.ToString(o.InferenceId)
			waitFor(t, 30*time.Second, "notification "+id+" after recovery", func() (bool, string) { return wh.find(id) != nil, "none" })
			if ev := wh.find(id); ev["invocationStatus"] != "Completed" {
				t.Errorf("notification %v", ev)
			}
		}
		t.Logf("webhook refused %d deliveries before it recovered", wh.refused.Load())
	})

	t.Run("model crash", func(t *testing.T) {
		out := invokeAsync(t, c, "faults", "s3://faultin/in.txt", "mode=crash")
		reason := waitObject(t, c, aws.ToString(out.FailureLocation), 60*time.Second)
		if reason == "" {
			t.Error("empty failure object")
		}
		id := aws.ToString(out.InferenceId)
		waitFor(t, 20*time.Second, "error notification", func() (bool, string) { return wh.find(id) != nil, "none" })
		ev := wh.find(id)
		if ev["invocationStatus"] != "Failed" || ev["failureReason"] == "" {
			t.Errorf("notification %v", ev)
		}
		if rp, _ := ev["responseParameters"].(map[string]any); rp["failureLocation"] != aws.ToString(out.FailureLocation) {
			t.Errorf("notification failure location %v", rp)
		}
		if _, ok := getObject(t, c, aws.ToString(out.OutputLocation)); ok {
			t.Error("an output exists for a crashed request")
		}
		t.Logf("failure object: %s", reason)
	})

	t.Run("invalid input location", func(t *testing.T) {
		for _, loc := range []string{"s3://no-such-bucket/in.txt", "s3://Not_A_Bucket/in.txt"} {
			out := invokeAsync(t, c, "faults", loc, "mode=echo")
			reason := waitObject(t, c, aws.ToString(out.FailureLocation), 30*time.Second)
			if !strings.Contains(reason, loc) {
				t.Errorf("%s: failure object %q does not name the location", loc, reason)
			}
			id := aws.ToString(out.InferenceId)
			waitFor(t, 20*time.Second, "error notification", func() (bool, string) { return wh.find(id) != nil, "none" })
			if ev := wh.find(id); ev["failureReason"] != strings.TrimSuffix(reason, "\n") {
				t.Errorf("%s: notification reason %v, failure object %q", loc, ev["failureReason"], reason)
			}
		}
	})

	// The ledger after shutdown: five successes and the crash's three
	// attempts (MaxDeliver), all under mode async, and the instance
	// time too.
	stop()
	db, err := sql.Open("sqlite", filepath.Join(data, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ledger, err := meter.NewLedger(context.Background(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	invs, err := ledger.Invocations(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed, other int
	for _, v := range invs {
		switch {
		case v.Resource != "faults":
		case v.Mode != "async":
			other++
		case v.Status == 200:
			ok++
		default:
			failed++
		}
	}
	if ok != 5 || failed != 3 || other != 0 {
		t.Errorf("ledger invocations: %d async successes, %d async failures, %d of another mode; want 5, 3, 0", ok, failed, other)
	}
	insts, err := ledger.Instances(context.Background(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var instances, asyncInstances int
	for _, r := range insts {
		if r.Resource == "faults" {
			instances++
			if r.Mode == "async" {
				asyncInstances++
			}
		}
	}
	if instances == 0 || asyncInstances != instances {
		t.Errorf("ledger instances: %d, %d of mode async", instances, asyncInstances)
	}
}
