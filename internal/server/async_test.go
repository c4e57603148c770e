package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/inferbox/inferbox/internal/config"
)

// webhook records the notifications it receives.
type webhook struct {
	mu     sync.Mutex
	events []map[string]any
	srv    *httptest.Server
}

func newWebhook(t *testing.T) *webhook {
	wh := &webhook{}
	wh.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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

func (wh *webhook) find(id string) map[string]any {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	for _, ev := range wh.events {
		if ev["inferenceId"] == id {
			return ev
		}
	}
	return nil
}

func s3Client(c clients) *s3.Client {
	return s3.NewFromConfig(c.cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(c.url); o.UsePathStyle = true })
}

func putObject(t testing.TB, c clients, bucket, key, body string) {
	t.Helper()
	if _, err := s3Client(c).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		t.Fatalf("PutObject %s/%s: %v", bucket, key, err)
	}
}

// getObject returns an object's body, or ok false if it does not exist.
func getObject(t testing.TB, c clients, uri string) (string, bool) {
	t.Helper()
	rest := strings.TrimPrefix(uri, "s3://")
	bucket, key, _ := strings.Cut(rest, "/")
	out, err := s3Client(c).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nk *s3types.NoSuchKey
		if errors.As(err, &nk) {
			return "", false
		}
		t.Fatalf("GetObject %s: %v", uri, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func waitObject(t testing.TB, c clients, uri string, within time.Duration) string {
	t.Helper()
	var body string
	waitFor(t, within, "object "+uri, func() (bool, string) {
		b, ok := getObject(t, c, uri)
		body = b
		return ok, "missing"
	})
	return body
}

func deployAsync(t testing.TB, c clients, name, image string, notify *smtypes.AsyncInferenceNotificationConfig) {
	t.Helper()
	ctx := context.Background()
	createModel(t, c, name, image, "")
	if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name),
		ProductionVariants: []smtypes.ProductionVariant{{
			VariantName: aws.String("AllTraffic"), ModelName: aws.String(name),
			InstanceType: "ml.m5.large", InitialInstanceCount: aws.Int32(1),
		}},
		AsyncInferenceConfig: &smtypes.AsyncInferenceConfig{
			ClientConfig: &smtypes.AsyncInferenceClientConfig{MaxConcurrentInvocationsPerInstance: aws.Int32(2)},
			OutputConfig: &smtypes.AsyncInferenceOutputConfig{
				S3OutputPath:       aws.String("s3://asyncout/" + name),
				S3FailurePath:      aws.String("s3://asyncout/" + name + "-failures"),
				NotificationConfig: notify,
			},
		},
	}); err != nil {
		t.Fatalf("CreateEndpointConfig: %v", err)
	}
	createEndpoint(t, c, name, name)
	waitInService(t, c, name)
}

func makeBuckets(t testing.TB, c clients, names ...string) {
	for _, b := range names {
		if _, err := s3Client(c).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("CreateBucket %s: %v", b, err)
		}
	}
}

func invokeAsync(t testing.TB, c clients, endpoint, input, attrs string, mutate ...func(*sagemakerruntime.InvokeEndpointAsyncInput)) *sagemakerruntime.InvokeEndpointAsyncOutput {
	t.Helper()
	in := &sagemakerruntime.InvokeEndpointAsyncInput{
		EndpointName: aws.String(endpoint), InputLocation: aws.String(input),
		ContentType: aws.String("text/plain"),
	}
	if attrs != "" {
		in.CustomAttributes = aws.String(attrs)
	}
	for _, m := range mutate {
		m(in)
	}
	out, err := c.rt.InvokeEndpointAsync(context.Background(), in)
	if err != nil {
		t.Fatalf("InvokeEndpointAsync: %v", err)
	}
	return out
}

func TestAsyncEndToEnd(t *testing.T) {
	t.Parallel()
	wh := newWebhook(t)
	c, url, _ := start(t, func(cfg *config.Config) {
		cfg.Async.RetryDelay = config.Duration(50 * time.Millisecond)
		cfg.Async.MinRequestTTL = config.Duration(time.Second)
		cfg.Queue.MaxDeliver = 2
	})
	ctx := context.Background()
	makeBuckets(t, c, "asyncin", "asyncout")
	deployAsync(t, c, "asyncfix", fixtureImage(t), &smtypes.AsyncInferenceNotificationConfig{
		SuccessTopic: aws.String(wh.srv.URL + "/ok"), ErrorTopic: aws.String(wh.srv.URL + "/err"),
		IncludeInferenceResponseIn: []smtypes.AsyncNotificationTopicTypes{smtypes.AsyncNotificationTopicTypesSuccessNotificationTopic},
	})

	t.Run("success", func(t *testing.T) {
		putObject(t, c, "asyncin", "hello.txt", "hello async")
		out := invokeAsync(t, c, "asyncfix", "s3://asyncin/hello.txt", "mode=echo")
		id := aws.ToString(out.InferenceId)
		if id == "" || aws.ToString(out.OutputLocation) != "s3://asyncout/asyncfix/"+id+".out" || aws.ToString(out.FailureLocation) != "s3://asyncout/asyncfix-failures/"+id+"-error.out" {
			t.Fatalf("answer: id %q output %q failure %q", id, aws.ToString(out.OutputLocation), aws.ToString(out.FailureLocation))
		}
		if got := waitObject(t, c, aws.ToString(out.OutputLocation), 30*time.Second); got != "hello async" {
			t.Errorf("output = %q", got)
		}
		var ev map[string]any
		waitFor(t, 20*time.Second, "success notification", func() (bool, string) { ev = wh.find(id); return ev != nil, "none" })
		if ev["invocationStatus"] != "Completed" || ev["eventName"] != "InferenceResult" {
			t.Errorf("notification %v", ev)
		}
		rp, _ := ev["responseParameters"].(map[string]any)
		if rp["outputLocation"] != aws.ToString(out.OutputLocation) {
			t.Errorf("notification output %v", rp)
		}
		if rb, _ := ev["responseBody"].(map[string]any); rb["content"] != "aGVsbG8gYXN5bmM=" {
			t.Errorf("inline response %v", ev["responseBody"])
		}
		if _, ok := getObject(t, c, aws.ToString(out.FailureLocation)); ok {
			t.Error("a failure object exists for a successful request")
		}
	})
	t.Run("caller inference id", func(t *testing.T) {
		putObject(t, c, "asyncin", "mine.txt", "mine")
		out := invokeAsync(t, c, "asyncfix", "s3://asyncin/mine.txt", "", func(in *sagemakerruntime.InvokeEndpointAsyncInput) {
			in.InferenceId = aws.String("my-id-1")
		})
		if aws.ToString(out.InferenceId) != "my-id-1" {
			t.Fatalf("id %q", aws.ToString(out.InferenceId))
		}
		waitObject(t, c, "s3://asyncout/asyncfix/my-id-1.out", 30*time.Second)
	})
	t.Run("missing input", func(t *testing.T) {
		out := invokeAsync(t, c, "asyncfix", "s3://asyncin/nope.txt", "")
		reason := waitObject(t, c, aws.ToString(out.FailureLocation), 30*time.Second)
		if !strings.Contains(reason, "s3://asyncin/nope.txt") {
			t.Errorf("failure object %q", reason)
		}
		id := aws.ToString(out.InferenceId)
		waitFor(t, 20*time.Second, "error notification", func() (bool, string) { return wh.find(id) != nil, "none" })
		if ev := wh.find(id); ev["invocationStatus"] != "Failed" {
			t.Errorf("notification %v", ev)
		}
		if _, ok := getObject(t, c, aws.ToString(out.OutputLocation)); ok {
			t.Error("an output exists for a failed request")
		}
	})
	t.Run("model error retried then failure", func(t *testing.T) {
		putObject(t, c, "asyncin", "x.txt", "x")
		out := invokeAsync(t, c, "asyncfix", "s3://asyncin/x.txt", "mode=status;code=500")
		reason := waitObject(t, c, aws.ToString(out.FailureLocation), 30*time.Second)
		if !strings.Contains(reason, "fixture failure 500") {
			t.Errorf("failure object %q", reason)
		}
		id := aws.ToString(out.InferenceId)
		waitFor(t, 20*time.Second, "error notification", func() (bool, string) { return wh.find(id) != nil, "none" })
		// Retried: MaxDeliver 2 attempts reached the model.
		metrics := get(t, url+"/metrics")
		if !strings.Contains(metrics, `sagemaker_async_invocation_failures_total{endpoint="asyncfix"}`) {
			t.Errorf("metrics lack the failure counter")
		}
	})
	t.Run("ttl expired", func(t *testing.T) {
		// Occupy both slots with held requests, then queue one with a 1 s TTL.
		gate := t.TempDir() + "/release"
		putObject(t, c, "asyncin", "h.txt", "h")
		holds := []*sagemakerruntime.InvokeEndpointAsyncOutput{
			invokeAsync(t, c, "asyncfix", "s3://asyncin/h.txt", "mode=hold;gate="+gate),
			invokeAsync(t, c, "asyncfix", "s3://asyncin/h.txt", "mode=hold;gate="+gate),
		}
		waitFor(t, 20*time.Second, "both slots busy", func() (bool, string) {
			m := get(t, url+"/metrics")
			return strings.Contains(m, `sagemaker_async_approximate_backlog_size{endpoint="asyncfix"} 2`), "backlog not 2"
		})
		out := invokeAsync(t, c, "asyncfix", "s3://asyncin/h.txt", "", func(in *sagemakerruntime.InvokeEndpointAsyncInput) {
			in.RequestTTLSeconds = aws.Int32(1)
		})
		waitFor(t, 20*time.Second, "backlog reported", func() (bool, string) {
			m := get(t, url+"/metrics")
			return strings.Contains(m, `sagemaker_async_approximate_backlog_size{endpoint="asyncfix"} 3`), "backlog not 3"
		})
		// Let a second pass, then release the held ones.
		deadline := time.Now().Add(1100 * time.Millisecond)
		waitFor(t, 5*time.Second, "TTL passes", func() (bool, string) { return time.Now().After(deadline), "" })
		if err := writeFile(gate); err != nil {
			t.Fatal(err)
		}
		reason := waitObject(t, c, aws.ToString(out.FailureLocation), 30*time.Second)
		if !strings.Contains(reason, "expired") {
			t.Errorf("failure object %q", reason)
		}
		for _, h := range holds {
			if got := waitObject(t, c, aws.ToString(h.OutputLocation), 30*time.Second); got != "held\n" {
				t.Errorf("held output %q", got)
			}
		}
	})
	t.Run("invocation timeout", func(t *testing.T) {
		// The model holds the request past InvocationTimeoutSeconds (1 s):
		// a failure object with the reason, no output, no retry.
		putObject(t, c, "asyncin", "slow.txt", "slow")
		never := t.TempDir() + "/never"
		out := invokeAsync(t, c, "asyncfix", "s3://asyncin/slow.txt", "mode=hold;gate="+never, func(in *sagemakerruntime.InvokeEndpointAsyncInput) {
			in.InvocationTimeoutSeconds = aws.Int32(1)
		})
		reason := waitObject(t, c, aws.ToString(out.FailureLocation), 30*time.Second)
		if !strings.Contains(reason, "InvocationTimeoutSeconds of 1") {
			t.Errorf("failure object %q", reason)
		}
		if _, ok := getObject(t, c, aws.ToString(out.OutputLocation)); ok {
			t.Error("an output exists for a timed-out request")
		}
		// Release the held model call so its slot frees.
		if err := writeFile(never); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("sync invoke refused", func(t *testing.T) {
		_, err := invoke(ctx, c, "asyncfix", "text/plain", "", []byte("x"), "")
		expectAPIError(t, "InvokeEndpoint on an async endpoint", err, "ValidationError", 400, "asynchronous")
	})
	t.Run("validation", func(t *testing.T) {
		_, err := c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{
			EndpointName: aws.String("asyncfix"), InputLocation: aws.String("s3://asyncin/h.txt"), RequestTTLSeconds: aws.Int32(100000),
		})
		expectAPIError(t, "TTL too long", err, "ValidationError", 400, "requestTTLSeconds")
		_, err = c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{
			EndpointName: aws.String("nothere"), InputLocation: aws.String("s3://asyncin/h.txt"),
		})
		expectAPIError(t, "missing endpoint", err, "ValidationError", 400)
		_, err = c.rt.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{
			EndpointName: aws.String("asyncfix"), InputLocation: aws.String("file:///etc/passwd"),
		})
		expectAPIError(t, "non-s3 input", err, "ValidationError", 400, "inputLocation")
	})
}

func writeFile(path string) error {
	return os.WriteFile(path, nil, 0o644)
}

// TestAsyncSurvivesRestart: requests accepted, one running and one
// waiting, when the server shuts down complete exactly once after a
// restart on the same data directory.
func TestAsyncSurvivesRestart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	gate := t.TempDir() + "/release"
	useData := func(cfg *config.Config) {
		cfg.Data = data
		cfg.Async.MinRequestTTL = config.Duration(time.Second)
	}
	c, url, stop := start(t, useData)
	makeBuckets(t, c, "asyncin", "asyncout")
	deployAsync(t, c, "durable", fixtureImage(t), nil)
	putObject(t, c, "asyncin", "d.txt", "d")
	var outs []*sagemakerruntime.InvokeEndpointAsyncOutput
	for range 3 {
		outs = append(outs, invokeAsync(t, c, "durable", "s3://asyncin/d.txt", "mode=hold;gate="+gate))
	}
	waitFor(t, 20*time.Second, "requests running", func() (bool, string) {
		m := get(t, url+"/metrics")
		return strings.Contains(m, `sagemaker_async_approximate_backlog_size{endpoint="durable"} 3`), "backlog not 3"
	})
	stop()
	for _, o := range outs {
		if _, ok := getObjectAt(t, data, o); ok {
			t.Fatalf("request %s finished before the restart", aws.ToString(o.InferenceId))
		}
	}
	if err := writeFile(gate); err != nil {
		t.Fatal(err)
	}
	c, _, _ = start(t, useData)
	for _, o := range outs {
		// Within the 60 s lease: the shutdown handed the requests back.
		if got := waitObject(t, c, aws.ToString(o.OutputLocation), 30*time.Second); got != "held\n" {
			t.Errorf("output %q", got)
		}
		if _, ok := getObject(t, c, aws.ToString(o.FailureLocation)); ok {
			t.Errorf("request %s has a failure object too", aws.ToString(o.InferenceId))
		}
	}
}

// getObjectAt looks for a request's output in a stopped server's data
// directory (the embedded store keeps objects as files).
func getObjectAt(t testing.TB, data string, o *sagemakerruntime.InvokeEndpointAsyncOutput) (string, bool) {
	t.Helper()
	var found string
	_ = filepathWalk(data, aws.ToString(o.InferenceId)+".out", &found)
	return found, found != ""
}

func filepathWalk(root, suffix string, found *string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) {
			*found = p
		}
		return nil
	})
}
