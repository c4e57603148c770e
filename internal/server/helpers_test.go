package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"

	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/server"
)

// testLogWriter sends server logs to the test's log until the test ends;
// lines written after that (a child process's last words) are dropped
// instead of panicking.
type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// testConfig is config.Default with a fresh data directory and timings
// short enough for tests.
func testConfig(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = config.Duration(20 * time.Second)
	cfg.Autoscale.Period = config.Duration(time.Second)
	cfg.Autoscale.Tick = config.Duration(200 * time.Millisecond)
	cfg.Autoscale.ScaleOutDatapoints = 2
	cfg.Autoscale.ScaleInDatapoints = 2
	cfg.Autoscale.ScaleOutCooldown = config.Duration(time.Second)
	cfg.Autoscale.ScaleInCooldown = config.Duration(time.Second)
	return cfg
}

// startServer starts the real server in-process on a random loopback port
// and returns its URL and a stop function (Shutdown, then wait for Serve to
// return). stop is idempotent and also runs when the test ends.
// mutateConfig, if non-nil, changes the test configuration first.
func startServer(t testing.TB, mutateConfig func(*config.Config)) (url string, stop func()) {
	t.Helper()
	cfg := testConfig(t)
	if mutateConfig != nil {
		mutateConfig(&cfg)
	}
	lw := &testLogWriter{t: t}
	level := slog.LevelWarn
	if os.Getenv("INFERBOX_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: level}))
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	url = "http://" + ln.Addr().String()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			select {
			case err := <-served:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-sctx.Done():
				t.Errorf("Serve did not return after Shutdown")
			}
			lw.close()
		})
	}
	t.Cleanup(stop)
	waitFor(t, 20*time.Second, "server answers /healthz", func() (bool, string) {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return url, stop
}

// waitFor polls cond until it holds or the deadline passes; cond returns
// whether it holds and what it saw (for the failure message).
func waitFor(t testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s; last seen: %s", within, what, last)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// clients are the three AWS SDK clients, pointed at one server.
type clients struct {
	sm  *sagemaker.Client
	rt  *sagemakerruntime.Client
	aas *applicationautoscaling.Client
	cfg aws.Config
	url string
}

// streamRT returns a new runtime client for one response stream. The SDK's
// clients share one event-stream codec between all their streams, which
// is a data race when streams overlap (aws/smithy-go#714, fix pending in
// aws/smithy-go#716), so each concurrent stream gets its own client.
func (c clients) streamRT() *sagemakerruntime.Client {
	return sagemakerruntime.NewFromConfig(c.cfg, func(o *sagemakerruntime.Options) {
		o.BaseEndpoint = aws.String(c.url)
		// See bufferedBodies (genai_test.go): the SDK can close the
		// connection under a fast stream (aws/aws-sdk-go-v2#2737); this
		// made TestShutdownDrains fail about once in thirty runs.
		o.HTTPClient = &http.Client{Transport: bufferedBodies{http.DefaultTransport.(*http.Transport).Clone()}}
	})
}

// newClients configures the SDK the way a user would with --endpoint-url:
// static credentials, us-east-1, and no retries, so every failed request
// is visible to the test (a retried 5xx would hide a server bug).
func newClients(url, accessKey, secret string) clients {
	cfg := aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secret, Source: "test"}, nil
		}),
		RetryMaxAttempts: 1,
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConnsPerHost = 64
		}),
	}
	return clients{
		sm:  sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(url) }),
		rt:  sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String(url) }),
		aas: applicationautoscaling.NewFromConfig(cfg, func(o *applicationautoscaling.Options) { o.BaseEndpoint = aws.String(url) }),
		cfg: cfg,
		url: url,
	}
}

// start is startServer plus SDK clients with any credentials.
func start(t testing.TB, mutateConfig func(*config.Config)) (clients, string, func()) {
	url, stop := startServer(t, mutateConfig)
	return newClients(url, "AKIDANY", "anysecret"), url, stop
}

// repoPath returns the absolute path of a file relative to the repository root.
func repoPath(t testing.TB, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test asset: %v", err)
	}
	return p
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Model images used by the tests.
const xgboostImage = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"

// fixtureImage is the process runtime's test model server as a BYO image.
func fixtureImage(t testing.TB) string {
	return "process:/usr/bin/python3 " + repoPath(t, "internal/runtime/process/testdata/server.py")
}

// deploy creates a model, a one-variant endpoint config and an endpoint,
// and waits with the SDK's own waiter until it is InService.
func deploy(t testing.TB, c clients, name, image, modelData, instanceType string, count int32) {
	t.Helper()
	createModel(t, c, name, image, modelData)
	createConfig(t, c, name, name, "AllTraffic", instanceType, count)
	createEndpoint(t, c, name, name)
	waitInService(t, c, name)
}

func createModel(t testing.TB, c clients, name, image, modelData string) {
	t.Helper()
	ctx := context.Background()
	pc := &smtypes.ContainerDefinition{Image: aws.String(image)}
	if modelData != "" {
		pc.ModelDataUrl = aws.String(modelData)
	}
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String(name),
		ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/inferbox"),
		PrimaryContainer: pc,
	}); err != nil {
		t.Fatalf("CreateModel %s: %v", name, err)
	}
}

func createConfig(t testing.TB, c clients, name, model, variant, instanceType string, count int32) {
	t.Helper()
	if _, err := c.sm.CreateEndpointConfig(context.Background(), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name),
		ProductionVariants: []smtypes.ProductionVariant{{
			VariantName:          aws.String(variant),
			ModelName:            aws.String(model),
			InstanceType:         smtypes.ProductionVariantInstanceType(instanceType),
			InitialInstanceCount: aws.Int32(count),
			InitialVariantWeight: aws.Float32(1),
		}},
	}); err != nil {
		t.Fatalf("CreateEndpointConfig %s: %v", name, err)
	}
}

func createEndpoint(t testing.TB, c clients, name, config string) {
	t.Helper()
	if _, err := c.sm.CreateEndpoint(context.Background(), &sagemaker.CreateEndpointInput{
		EndpointName: aws.String(name), EndpointConfigName: aws.String(config),
	}); err != nil {
		t.Fatalf("CreateEndpoint %s: %v", name, err)
	}
}

// waitInService runs the SDK's EndpointInService waiter with short delays.
func waitInService(t testing.TB, c clients, name string) {
	t.Helper()
	w := sagemaker.NewEndpointInServiceWaiter(c.sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 250*time.Millisecond
	})
	if err := w.Wait(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, 60*time.Second); err != nil {
		d, derr := c.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if derr == nil {
			t.Fatalf("endpoint %s not InService: %v (status %s, reason %q)", name, err, d.EndpointStatus, aws.ToString(d.FailureReason))
		}
		t.Fatalf("endpoint %s not InService: %v", name, err)
	}
}

func describe(t testing.TB, c clients, name string) *sagemaker.DescribeEndpointOutput {
	t.Helper()
	d, err := c.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeEndpoint %s: %v", name, err)
	}
	return d
}

func invoke(ctx context.Context, c clients, endpoint, contentType, accept string, body []byte, attrs string) (*sagemakerruntime.InvokeEndpointOutput, error) {
	in := &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(endpoint),
		ContentType:  aws.String(contentType),
		Body:         body,
	}
	if accept != "" {
		in.Accept = aws.String(accept)
	}
	if attrs != "" {
		in.CustomAttributes = aws.String(attrs)
	}
	return c.rt.InvokeEndpoint(ctx, in)
}

// apiError returns the error code, message and HTTP status of an SDK error.
func apiError(t testing.TB, err error) (code, message string, status int) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got success")
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, message = ae.ErrorCode(), ae.ErrorMessage()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, message, status
}

// expectAPIError checks an SDK error's code, HTTP status and that its
// message contains each of parts.
func expectAPIError(t testing.TB, what string, err error, wantCode string, wantStatus int, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want %d %s", what, wantStatus, wantCode)
		return
	}
	code, msg, status := apiError(t, err)
	if code != wantCode || status != wantStatus {
		t.Errorf("%s: got %d %q (%v), want %d %s", what, status, code, err, wantStatus, wantCode)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%s: message %q does not contain %q", what, msg, p)
		}
	}
}
