package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/inferbox/inferbox/internal/config"
)

// TestBYOExample deploys examples/byo-python the way its README says and
// checks its answers against sample-expected.json.
func TestBYOExample(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../../examples/byo-python")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "serve.py")); err != nil {
		t.Fatalf("examples/byo-python is missing: %v", err)
	}
	c, _, _ := start(t, nil)
	ctx := context.Background()
	deploy(t, c, "byo-logreg", filepath.Join(dir, "serve.py"), "file://"+filepath.Join(dir, "model"), "ml.m5.large", 1)

	var want struct {
		Labels []string
		Scores []float64
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "sample-expected.json")), &want); err != nil {
		t.Fatal(err)
	}
	res, err := invoke(ctx, c, "byo-logreg", "text/csv", "text/csv", readFile(t, filepath.Join(dir, "sample.csv")), "")
	if err != nil {
		t.Fatalf("InvokeEndpoint: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(res.Body)), "\n")
	if len(lines) != len(want.Labels) {
		t.Fatalf("got %d answers, want %d: %q", len(lines), len(want.Labels), res.Body)
	}
	for i, line := range lines {
		var score float64
		label, s, _ := strings.Cut(line, ",")
		fmt.Sscan(s, &score)
		if label != want.Labels[i] || !closeTo(score, want.Scores[i]) {
			t.Errorf("record %d: %q, want %s,%v", i+1, line, want.Labels[i], want.Scores[i])
		}
	}
	_, err = invoke(ctx, c, "byo-logreg", "text/csv", "text/csv", []byte("1,2,3\n"), "")
	expectAPIError(t, "malformed record", err, "ModelError", 424, "record 1")
}

// streamParts reads a response stream's PayloadPart events into parts
// (one string per event), signalling each on got, until the stream ends.
func streamParts(out *sagemakerruntime.InvokeEndpointWithResponseStreamOutput, got chan<- string) error {
	stream := out.GetStream()
	defer stream.Close()
	for ev := range stream.Events() {
		if p, ok := ev.(*rttypes.ResponseStreamMemberPayloadPart); ok {
			got <- string(p.Value.Bytes)
		}
	}
	return stream.Err()
}

func TestBYOProcess(t *testing.T) {
	t.Parallel()
	c, _, _ := start(t, func(cfg *config.Config) { cfg.Hosting.InstanceConcurrency = 16 })
	ctx := context.Background()
	deploy(t, c, "fixture", fixtureImage(t), "", "ml.m5.large", 1)
	gates := t.TempDir()

	t.Run("echo", func(t *testing.T) {
		res, err := invoke(ctx, c, "fixture", "application/octet-stream", "", []byte("hello"), "mode=echo")
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Body) != "hello" || aws.ToString(res.CustomAttributes) != "echoed=5" || aws.ToString(res.InvokedProductionVariant) != "AllTraffic" {
			t.Errorf("echo: body %q, custom attributes %q, variant %q", res.Body, aws.ToString(res.CustomAttributes), aws.ToString(res.InvokedProductionVariant))
		}
	})
	t.Run("response stream", func(t *testing.T) {
		gate := filepath.Join(gates, "stream")
		const n = 4
		out, err := c.streamRT().InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
			EndpointName:     aws.String("fixture"),
			ContentType:      aws.String("application/json"),
			Body:             []byte("{}"),
			CustomAttributes: aws.String(fmt.Sprintf("mode=stream;chunks=%d;gate=%s", n, gate)),
		})
		if err != nil {
			t.Fatalf("InvokeEndpointWithResponseStream: %v", err)
		}
		if aws.ToString(out.InvokedProductionVariant) != "AllTraffic" {
			t.Errorf("InvokedProductionVariant = %q", aws.ToString(out.InvokedProductionVariant))
		}
		got := make(chan string, 16)
		errc := make(chan error, 1)
		go func() { errc <- streamParts(out, got); close(got) }()
		// The server sends chunk i only after gate.i exists, so each event
		// must arrive before the next chunk is released: proof of streaming.
		var all strings.Builder
		for i := 0; i < n; i++ {
			select {
			case part := <-got:
				all.WriteString(part)
			case <-time.After(20 * time.Second):
				t.Fatalf("event %d did not arrive", i)
			}
			if i+1 < n {
				if !strings.HasSuffix(all.String(), fmt.Sprintf("chunk %d\n", i)) {
					t.Fatalf("after %d events: %q", i+1, all.String())
				}
				if err := os.WriteFile(fmt.Sprintf("%s.%d", gate, i+1), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		for part := range got {
			all.WriteString(part)
		}
		if err := <-errc; err != nil {
			t.Errorf("stream error: %v", err)
		}
		if want := "chunk 0\nchunk 1\nchunk 2\nchunk 3\n"; all.String() != want {
			t.Errorf("stream bytes %q, want %q", all.String(), want)
		}
	})
	t.Run("model 500", func(t *testing.T) {
		_, err := invoke(ctx, c, "fixture", "text/plain", "", []byte("x"), "mode=status;code=500")
		expectAPIError(t, "model 500", err, "ModelError", 424, "Received server error (500)")
		var me *rttypes.ModelError
		if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 500 || !strings.Contains(aws.ToString(me.OriginalMessage), "fixture failure 500") {
			t.Errorf("ModelError: %+v", me)
		}
		_, err = invoke(ctx, c, "fixture", "text/plain", "", []byte("x"), "mode=status;code=404")
		expectAPIError(t, "model 404", err, "ModelError", 424, "Received client error (404)")
	})
	t.Run("crash under load", func(t *testing.T) {
		pidBefore := fixturePID(t, c)
		gate := filepath.Join(gates, "hold")
		// Held streams prove requests are in flight inside the process.
		const held = 3
		var wg sync.WaitGroup
		inFlight := make(chan struct{}, held)
		streamErrs := make(chan error, held)
		for i := 0; i < held; i++ {
			out, err := c.streamRT().InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
				EndpointName: aws.String("fixture"), ContentType: aws.String("text/plain"), Body: []byte("x"),
				CustomAttributes: aws.String("mode=hold;gate=" + gate),
			})
			if err != nil {
				t.Fatalf("held stream %d: %v", i, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				stream := out.GetStream()
				defer stream.Close()
				first := true
				for ev := range stream.Events() {
					if _, ok := ev.(*rttypes.ResponseStreamMemberPayloadPart); ok && first {
						first = false
						inFlight <- struct{}{}
					}
				}
				streamErrs <- stream.Err()
			}()
		}
		for i := 0; i < held; i++ {
			select {
			case <-inFlight:
			case <-time.After(20 * time.Second):
				t.Fatal("held requests did not reach the model")
			}
		}
		// Concurrent ordinary load across the crash.
		loadCtx, stopLoad := context.WithCancel(ctx)
		var mu sync.Mutex
		var okCount, modelErrs int
		var other []error
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for loadCtx.Err() == nil {
					_, err := invoke(context.Background(), c, "fixture", "text/plain", "", []byte("load"), "mode=echo")
					var me *rttypes.ModelError
					mu.Lock()
					switch {
					case err == nil:
						okCount++
					case errors.As(err, &me):
						modelErrs++
					default:
						other = append(other, err)
					}
					mu.Unlock()
				}
			}()
		}
		_, err := invoke(ctx, c, "fixture", "text/plain", "", []byte("x"), "mode=crash")
		expectAPIError(t, "crashing request", err, "ModelError", 424)
		// The held (in-flight) requests fail: a 200 stream already
		// started, so the failure is a ModelStreamError event.
		for i := 0; i < held; i++ {
			select {
			case err := <-streamErrs:
				var mse *rttypes.ModelStreamError
				if !errors.As(err, &mse) {
					t.Errorf("held stream %d ended with %v, want a ModelStreamError", i, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("held streams did not end after the crash")
			}
		}
		// The process is replaced; later requests succeed.
		waitFor(t, 30*time.Second, "a request succeeds after the crash", func() (bool, string) {
			_, err := invoke(ctx, c, "fixture", "text/plain", "", []byte("x"), "mode=echo")
			return err == nil, fmt.Sprint(err)
		})
		stopLoad()
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if len(other) > 0 {
			t.Errorf("%d requests failed with something other than a ModelError, e.g. %v", len(other), other[0])
		}
		t.Logf("load across the crash: %d ok, %d ModelError", okCount, modelErrs)
		if d := describe(t, c, "fixture"); d.EndpointStatus != smtypes.EndpointStatusInService || aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount) != 1 {
			t.Errorf("after the crash: %s with %d instances", d.EndpointStatus, aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount))
		}
		if pidAfter := fixturePID(t, c); pidAfter == pidBefore {
			t.Errorf("model server pid %d did not change after the crash", pidAfter)
		}
	})
}

// fixturePID asks the "fixture" endpoint's model server for its process id.
func fixturePID(t testing.TB, c clients) int {
	t.Helper()
	return fixturePIDOn(t, c, "fixture")
}
