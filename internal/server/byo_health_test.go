package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
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
