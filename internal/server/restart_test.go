package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/inferbox/inferbox/internal/config"
)

func TestRestartPersistence(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	useData := func(cfg *config.Config) { cfg.Data = data }
	c, _, stop := start(t, useData)
	ctx := context.Background()
	sample := readFile(t, repoPath(t, "examples/xgboost/sample.csv"))
	expected := parseScores(t, string(readFile(t, repoPath(t, "examples/xgboost/sample.expected"))))

	deploy(t, c, "persist-xgb", "xgboost", "file://"+repoPath(t, "examples/xgboost/model"), "ml.m5.large", 2)
	deploy(t, c, "persist-byo", fixtureImage(t), "", "ml.m5.large", 1)
	rid := "endpoint/persist-xgb/variant/AllTraffic"
	registerTarget(t, c, rid, 1, 3)
	putPolicy(t, c, rid, "keep", &aastypes.TargetTrackingScalingPolicyConfiguration{
		TargetValue: aws.Float64(1e9), // never scales: this test is about persistence
		PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{
			PredefinedMetricType: aastypes.MetricTypeSageMakerVariantInvocationsPerInstance,
		},
	})
	pidBefore := fixturePIDOn(t, c, "persist-byo")
	stop()

	c, _, _ = start(t, useData)
	lm, err := c.sm.ListModels(ctx, &sagemaker.ListModelsInput{})
	if err != nil || len(lm.Models) != 2 {
		t.Errorf("models after restart: %v %+v", err, lm)
	}
	lc, err := c.sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{})
	if err != nil || len(lc.EndpointConfigs) != 2 {
		t.Errorf("configs after restart: %v %+v", err, lc)
	}
	le, err := c.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{SortBy: "Name", SortOrder: "Ascending"})
	if err != nil || len(le.Endpoints) != 2 || aws.ToString(le.Endpoints[0].EndpointName) != "persist-byo" {
		t.Fatalf("endpoints after restart: %v %+v", err, le)
	}
	for _, name := range []string{"persist-xgb", "persist-byo"} {
		waitInService(t, c, name)
	}
	waitFor(t, 30*time.Second, "instances are reloaded", func() (bool, string) {
		a, b := describe(t, c, "persist-xgb").ProductionVariants[0], describe(t, c, "persist-byo").ProductionVariants[0]
		return aws.ToInt32(a.CurrentInstanceCount) == 2 && aws.ToInt32(b.CurrentInstanceCount) == 1,
			fmt.Sprintf("xgb %d, byo %d", aws.ToInt32(a.CurrentInstanceCount), aws.ToInt32(b.CurrentInstanceCount))
	})
	res, err := invoke(ctx, c, "persist-xgb", "text/csv", "", sample, "")
	if err != nil {
		t.Fatalf("invoke after restart: %v", err)
	}
	got := parseScores(t, string(res.Body))
	if len(got) != len(expected) || !closeTo(got[0], expected[0]) {
		t.Errorf("scores after restart: %v", got)
	}
	if pid := fixturePIDOn(t, c, "persist-byo"); pid == pidBefore {
		t.Errorf("the BYO process %d survived the restart: it should have been stopped and started anew", pid)
	}
	// Signal 0 says whether the old model server still lives.
	if err := syscall.Kill(pidBefore, 0); err == nil {
		t.Errorf("the old BYO process %d is still running after Shutdown", pidBefore)
	}
	ts, err := c.aas.DescribeScalableTargets(ctx, &applicationautoscaling.DescribeScalableTargetsInput{ServiceNamespace: nsSageMaker})
	if err != nil || len(ts.ScalableTargets) != 1 || aws.ToString(ts.ScalableTargets[0].ResourceId) != rid || aws.ToInt32(ts.ScalableTargets[0].MaxCapacity) != 3 {
		t.Errorf("scalable targets after restart: %v %+v", err, ts)
	}
	ps, err := c.aas.DescribeScalingPolicies(ctx, &applicationautoscaling.DescribeScalingPoliciesInput{ServiceNamespace: nsSageMaker})
	if err != nil || len(ps.ScalingPolicies) != 1 || aws.ToString(ps.ScalingPolicies[0].PolicyName) != "keep" {
		t.Errorf("scaling policies after restart: %v %+v", err, ps)
	}
}

func fixturePIDOn(t testing.TB, c clients, endpoint string) int {
	t.Helper()
	res, err := invoke(context.Background(), c, endpoint, "text/plain", "", []byte("x"), "mode=env")
	if err != nil {
		t.Fatalf("mode=env on %s: %v", endpoint, err)
	}
	var out struct{ PID int }
	if err := json.Unmarshal(res.Body, &out); err != nil || out.PID == 0 {
		t.Fatalf("mode=env answer %q: %v", res.Body, err)
	}
	return out.PID
}

// TestShutdownDrains checks that Shutdown lets requests in flight finish
// with 200 and refuses new connections.
func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	c, url, stop := start(t, nil)
	ctx := context.Background()
	deploy(t, c, "drain", fixtureImage(t), "", "ml.m5.large", 1)
	gate := filepath.Join(t.TempDir(), "release")

	const n = 3
	type result struct {
		body string
		err  error
	}
	results := make(chan result, n)
	inFlight := make(chan struct{}, n)
	for range n {
		out, err := c.streamRT().InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
			EndpointName: aws.String("drain"), ContentType: aws.String("text/plain"), Body: []byte("x"),
			CustomAttributes: aws.String("mode=hold;gate=" + gate),
		})
		if err != nil {
			t.Fatalf("slow request: %v", err)
		}
		go func() {
			stream := out.GetStream()
			defer stream.Close()
			var b strings.Builder
			for ev := range stream.Events() {
				if p, ok := ev.(*rttypes.ResponseStreamMemberPayloadPart); ok {
					if b.Len() == 0 {
						inFlight <- struct{}{}
					}
					b.Write(p.Value.Bytes)
				}
			}
			results <- result{b.String(), stream.Err()}
		}()
	}
	for range n {
		select {
		case <-inFlight:
		case <-time.After(20 * time.Second):
			t.Fatal("slow requests did not reach the model")
		}
	}
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	addr := strings.TrimPrefix(url, "http://")
	waitFor(t, 20*time.Second, "new connections are refused", func() (bool, string) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return true, ""
		}
		conn.Close()
		return false, "connected"
	})
	select {
	case <-stopped:
		t.Fatal("Shutdown returned while requests were still in flight")
	default:
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for range n {
		select {
		case r := <-results:
			if r.err != nil || r.body != "held\n" {
				t.Errorf("in-flight request during shutdown: body %q, err %v", r.body, r.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("in-flight requests did not complete")
		}
	}
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return after the requests finished")
	}
	if _, err := invoke(ctx, c, "drain", "text/plain", "", []byte("x"), "mode=echo"); err == nil {
		t.Error("a request after Shutdown succeeded")
	}
}
