package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/inferbox/inferbox/internal/config"
)

// fastHealthChecks makes BYO health checks quick enough for a test; the
// timeout is long enough that a loaded machine does not fail a healthy
// Python server.
func fastHealthChecks(cfg *config.Config) {
	cfg.Hosting.HealthCheckInterval = config.Duration(500 * time.Millisecond)
	cfg.Hosting.HealthCheckTimeout = config.Duration(500 * time.Millisecond)
	cfg.Hosting.UnhealthyThreshold = 2
}

var replacementsMetric = regexp.MustCompile(`(?m)^inferbox_model_server_unhealthy_replacements_total (\d+)$`)

func unhealthyReplacements(t testing.TB, url string) int {
	t.Helper()
	m := replacementsMetric.FindStringSubmatch(get(t, url+"/metrics"))
	if m == nil {
		t.Fatal("/metrics has no inferbox_model_server_unhealthy_replacements_total")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// procGone reports whether pid no longer runs (absent, or a zombie).
func procGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// TestBYOHungServerIsReplaced freezes an InService endpoint's model server
// with SIGSTOP: the process exists but answers nothing, not even /ping.
// Health checks find it, the requests in flight fail with 424 ModelError
// rather than waiting for their own timeout, the frozen process is killed
// and a new one serves.
func TestBYOHungServerIsReplaced(t *testing.T) {
	t.Parallel()
	c, url, _ := start(t, fastHealthChecks)
	ctx := context.Background()
	deploy(t, c, "hung", fixtureImage(t), "", "ml.m5.large", 1)
	pid := fixturePIDOn(t, c, "hung")
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // if the test fails before the kill
	if n := unhealthyReplacements(t, url); n != 0 {
		t.Fatalf("%d replacements before the freeze", n)
	}

	// Two requests in flight: one waiting for its answer, one streaming.
	gates := t.TempDir()
	waiting := filepath.Join(gates, "wait")
	waitErr := make(chan error, 1)
	go func() {
		_, err := invoke(ctx, c, "hung", "text/plain", "", []byte("x"), "mode=wait;gate="+waiting)
		waitErr <- err
	}()
	waitFor(t, 20*time.Second, "the waiting request reaches the model", func() (bool, string) {
		_, err := os.Stat(waiting + ".arrived")
		return err == nil, fmt.Sprint(err)
	})
	out, err := c.streamRT().InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String("hung"), ContentType: aws.String("text/plain"), Body: []byte("x"),
		CustomAttributes: aws.String("mode=hold;gate=" + filepath.Join(gates, "hold")),
	})
	if err != nil {
		t.Fatalf("held stream: %v", err)
	}
	streamErr := make(chan error, 1)
	firstPart := make(chan struct{})
	go func() {
		stream := out.GetStream()
		defer stream.Close()
		first := true
		for ev := range stream.Events() {
			if _, ok := ev.(*rttypes.ResponseStreamMemberPayloadPart); ok && first {
				first = false
				close(firstPart)
			}
		}
		streamErr <- stream.Err()
	}()
	select {
	case <-firstPart:
	case <-time.After(20 * time.Second):
		t.Fatal("the held stream's first part did not arrive")
	}

	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	// Both requests in flight fail as a dead model server's do.
	select {
	case err := <-waitErr:
		expectAPIError(t, "request in flight on the hung server", err, "ModelError", 424, "health checks in a row")
		var me *rttypes.ModelError
		if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 0 {
			t.Errorf("ModelError: %+v, want OriginalStatusCode 0", me)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the request in flight on the hung server did not end")
	}
	select {
	case err := <-streamErr:
		var mse *rttypes.ModelStreamError
		if !errors.As(err, &mse) {
			t.Errorf("held stream ended with %v, want a ModelStreamError", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the held stream did not end")
	}

	// A new process serves; the frozen one was killed.
	waitFor(t, 30*time.Second, "a request succeeds after the replacement", func() (bool, string) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := invoke(rctx, c, "hung", "text/plain", "", []byte("x"), "mode=echo")
		return err == nil, fmt.Sprint(err)
	})
	if newPid := fixturePIDOn(t, c, "hung"); newPid == pid {
		t.Errorf("model server pid %d did not change", newPid)
	}
	if !procGone(pid) {
		t.Errorf("the frozen process %d still exists", pid)
	}
	// At least one: on a loaded machine the successor could in principle
	// miss its checks too; what matters is that the hung one was counted.
	if n := unhealthyReplacements(t, url); n < 1 {
		t.Errorf("inferbox_model_server_unhealthy_replacements_total = %d, want at least 1", n)
	}
	if d := describe(t, c, "hung"); d.EndpointStatus != smtypes.EndpointStatusInService || aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount) != 1 {
		t.Errorf("after the replacement: %s with %d instances", d.EndpointStatus, aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount))
	}
}

// pidsOf sends n concurrent mode=env requests and returns the model server
// pid each was answered by (0 for a failure) and the first error.
func pidsOf(c clients, endpoint string, n int) ([]int, error) {
	pids := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := invoke(ctx, c, endpoint, "text/plain", "", []byte("x"), "mode=env")
			if err != nil {
				errs[i] = err
				return
			}
			var out struct{ PID int }
			if err := json.Unmarshal(res.Body, &out); err != nil {
				errs[i] = err
				return
			}
			pids[i] = out.PID
		})
	}
	wg.Wait()
	return pids, errors.Join(errs...)
}

// TestBYOHealthRoutesAroundReplacedInstance runs two instances and freezes
// one; its replacement cannot start (TEST_FAIL_START_IF) until the test
// allows it. Meanwhile every request goes to the healthy instance and
// succeeds, rather than waiting on the one being replaced.
func TestBYOHealthRoutesAroundReplacedInstance(t *testing.T) {
	t.Parallel()
	c, url, _ := start(t, func(cfg *config.Config) {
		fastHealthChecks(cfg)
		cfg.Hosting.InstanceConcurrency = 8
	})
	ctx := context.Background()
	broken := filepath.Join(t.TempDir(), "broken")
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String("pair"),
		ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/inferbox"),
		PrimaryContainer: &smtypes.ContainerDefinition{
			Image:       aws.String(fixtureImage(t)),
			Environment: map[string]string{"TEST_FAIL_START_IF": broken},
		},
	}); err != nil {
		t.Fatal(err)
	}
	createConfig(t, c, "pair", "pair", "AllTraffic", "ml.m5.large", 2)
	createEndpoint(t, c, "pair", "pair")
	waitInService(t, c, "pair")

	seen := map[int]bool{}
	waitFor(t, 30*time.Second, "both instances answer", func() (bool, string) {
		pids, err := pidsOf(c, "pair", 4)
		for _, p := range pids {
			if p != 0 {
				seen[p] = true
			}
		}
		return len(seen) == 2, fmt.Sprintf("pids %v, err %v", seen, err)
	})
	var frozen, healthy int
	for p := range seen {
		if frozen == 0 {
			frozen = p
		} else {
			healthy = p
		}
	}
	t.Cleanup(func() { _ = syscall.Kill(frozen, syscall.SIGCONT) })
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(frozen, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the frozen instance is declared unhealthy", func() (bool, string) {
		n := unhealthyReplacements(t, url)
		return n >= 1, fmt.Sprint(n)
	})
	waitFor(t, 30*time.Second, "a successor fails to start", func() (bool, string) {
		_, err := os.Stat(broken + ".failed")
		return err == nil, fmt.Sprint(err)
	})
	// The frozen server is out of service and its successor cannot start:
	// concurrent requests (least outstanding requests would spread them
	// over both instances) all go to the healthy one.
	for round := range 5 {
		pids, err := pidsOf(c, "pair", 4)
		if err != nil {
			t.Fatalf("round %d while one instance is being replaced: %v", round, err)
		}
		for _, p := range pids {
			if p != healthy {
				t.Fatalf("round %d: answered by pid %d, want only the healthy %d", round, p, healthy)
			}
		}
	}
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the replacement serves", func() (bool, string) {
		pids, err := pidsOf(c, "pair", 4)
		for _, p := range pids {
			if p != 0 && p != healthy && p != frozen {
				return true, ""
			}
		}
		return false, fmt.Sprintf("pids %v, err %v", pids, err)
	})
	if !procGone(frozen) {
		t.Errorf("the frozen process %d still exists", frozen)
	}
	if d := describe(t, c, "pair"); d.EndpointStatus != smtypes.EndpointStatusInService || aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount) != 2 {
		t.Errorf("after the replacement: %s with %d instances", d.EndpointStatus, aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount))
	}
}
