package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"

	"github.com/inferbox/inferbox/internal/advisor"
	"github.com/inferbox/inferbox/internal/autoscale"
	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/meter"
)

// phase is one stretch of a rate-based load profile.
type phase struct {
	rate float64 // requests per second
	dur  time.Duration
}

// openLoad offers requests at the profile's rates, each on its own
// goroutine, whatever the server's response times (an open loop, so the
// offered load is known and does not depend on the server or on the load
// generator keeping up). At most maxOutstanding requests are in flight;
// a request beyond that is counted as shed. It returns when the profile
// is done and every request has answered.
func openLoad(c clients, endpoint string, body []byte, profile []phase, maxOutstanding int) (sent, shed int, failures []error) {
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		sem = make(chan struct{}, maxOutstanding)
	)
	for _, p := range profile {
		start := time.Now()
		n := 0
		for {
			el := time.Since(start)
			if el >= p.dur {
				break
			}
			for due := int(el.Seconds() * p.rate); n < due; n++ {
				select {
				case sem <- struct{}{}:
				default:
					shed++
					continue
				}
				sent++
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					if _, err := invoke(ctx, c, endpoint, "text/csv", "text/csv", body, ""); err != nil {
						mu.Lock()
						failures = append(failures, err)
						mu.Unlock()
					}
				}()
			}
			time.Sleep(5 * time.Millisecond) // the generator's pacing step, not a wait for an event
		}
	}
	wg.Wait()
	return sent, shed, failures
}

// TestReplayMatchesRealRun runs a real-time endpoint with a target-tracking
// policy through a burst, a quiet stretch and a second burst, then replays
// the invocations the ledger recorded through advisor.ReplayRealtime with
// the server's timings and checks the simulated instance-seconds are within
// 10% of the instance-seconds the ledger recorded for the run.
func TestReplayMatchesRealRun(t *testing.T) {
	t.Parallel()
	var cfg config.Config
	c, _, stop := start(t, func(c *config.Config) { cfg = *c })
	const endpoint = "replayed"
	deploy(t, c, endpoint, "xgboost", "file://"+repoPath(t, "examples/xgboost/model"), "ml.m5.large", 1)
	rid := "endpoint/" + endpoint + "/variant/AllTraffic"
	const minCap, maxCap, target = 1, 4, 600.0 // 600 invocations per instance per minute: 10/s
	registerTarget(t, c, rid, minCap, maxCap)
	putPolicy(t, c, rid, "invocations", &aastypes.TargetTrackingScalingPolicyConfiguration{
		TargetValue: aws.Float64(target),
		PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{
			PredefinedMetricType: aastypes.MetricTypeSageMakerVariantInvocationsPerInstance,
		},
	})
	sample := readFile(t, repoPath(t, "examples/xgboost/sample.csv"))
	row := sample[:strings.IndexByte(string(sample), '\n')+1]

	// 25/s needs 3 instances at 10/s each; 1/s needs 1.
	profile := []phase{{25, 7 * time.Second}, {1, 7 * time.Second}, {25, 6 * time.Second}}
	from := time.Now()
	sent, shed, failures := openLoad(c, endpoint, row, profile, 200)
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed; first: %v", len(failures), sent, failures[0])
	}
	if shed > 0 {
		t.Errorf("%d requests shed: the server fell behind the offered load", shed)
	}
	peak := 0
	waitFor(t, 30*time.Second, "the variant scales back in to 1", func() (bool, string) {
		d := describe(t, c, endpoint)
		n := int(aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount))
		peak = max(peak, n)
		return n == 1 && aws.ToInt32(d.ProductionVariants[0].DesiredInstanceCount) == 1 && d.EndpointStatus == "InService",
			fmt.Sprintf("%s, %d instances", d.EndpointStatus, n)
	})
	to := time.Now()
	stop()

	db, err := sql.Open("sqlite", filepath.Join(cfg.Data, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ledger, err := meter.NewLedger(context.Background(), db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	insts, err := ledger.Instances(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	var recorded float64
	maxLive := 0
	for _, in := range insts {
		if in.Resource != endpoint {
			continue
		}
		end := in.End
		if end.IsZero() || end.After(to) {
			end = to
		}
		begin := in.Start
		if begin.Before(from) {
			begin = from
		}
		recorded += end.Sub(begin).Seconds()
		t.Logf("instance %s: %s to %s", in.InstanceID, in.Start.Sub(from).Round(time.Millisecond), end.Sub(from).Round(time.Millisecond))
	}
	for _, in := range insts {
		if in.Resource == endpoint {
			live := 0
			for _, o := range insts {
				if o.Resource == endpoint && !o.Start.After(in.Start) && (o.End.IsZero() || o.End.After(in.Start)) {
					live++
				}
			}
			maxLive = max(maxLive, live)
		}
	}
	invs, err := ledger.Invocations(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	var latency time.Duration
	var n int
	for _, v := range invs {
		if v.Resource == endpoint && v.Status == 200 {
			latency += v.ModelLatency
			n++
		}
	}
	if n < sent*9/10 {
		t.Fatalf("ledger holds %d successful invocations of %s; %d were sent", n, endpoint, sent)
	}
	service := latency / time.Duration(n)
	if maxLive < 2 {
		t.Fatalf("the endpoint never scaled out (at most %d instances at once); the run does not test the replay", maxLive)
	}

	tm := cfg.Autoscale
	times := advisor.TimesFromInvocations(invs, endpoint)
	s := advisor.TraceSeries(times, from, to, tm.Tick.D())
	r := advisor.ReplayRealtime(s, advisor.RealtimeConfig{
		Processing: service, Concurrency: cfg.Hosting.InstanceConcurrency, Min: minCap, Max: maxCap, Target: target,
		Timing: autoscale.Timing{
			Period:                  tm.Period.D(),
			ScaleOutDatapoints:      tm.ScaleOutDatapoints,
			ScaleInDatapoints:       tm.ScaleInDatapoints,
			DefaultScaleOutCooldown: tm.ScaleOutCooldown.D(),
			DefaultScaleInCooldown:  tm.ScaleInCooldown.D(),
			Tick:                    tm.Tick.D(),
		},
	})
	t.Logf("run %s, %d requests sent (%d recorded, mean model latency %s), peak %d instances (polled %d); recorded %.1f instance-seconds, replay %.1f (peak %d, %d scaling actions)",
		to.Sub(from).Round(time.Millisecond), sent, n, service, maxLive, peak, recorded, r.InstanceSeconds, r.MaxInstances, r.ScaleActions)
	if diff := math.Abs(r.InstanceSeconds-recorded) / recorded; diff > 0.10 {
		t.Errorf("replay %.1f instance-seconds vs %.1f recorded: %.0f%% apart, want within 10%%", r.InstanceSeconds, recorded, 100*diff)
	}
}
