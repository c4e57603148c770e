package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/meter"
	_ "modernc.org/sqlite"
)

func createServerlessConfig(t testing.TB, c clients, name, model string, memory, maxConc, provisioned int32) error {
	t.Helper()
	sc := &smtypes.ProductionVariantServerlessConfig{MemorySizeInMB: aws.Int32(memory), MaxConcurrency: aws.Int32(maxConc)}
	if provisioned > 0 {
		sc.ProvisionedConcurrency = aws.Int32(provisioned)
	}
	_, err := c.sm.CreateEndpointConfig(context.Background(), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name),
		ProductionVariants: []smtypes.ProductionVariant{{
			VariantName: aws.String("AllTraffic"), ModelName: aws.String(model), ServerlessConfig: sc,
		}},
	})
	return err
}

// coldStart returns the X-Inferbox-Cold-Start header of an SDK response.
func coldStart(out *sagemakerruntime.InvokeEndpointOutput) string {
	raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response)
	if !ok {
		return "<no raw response>"
	}
	return raw.Header.Get("X-Inferbox-Cold-Start")
}

func instances(t testing.TB, c clients, name string) int32 {
	d := describe(t, c, name)
	if len(d.ProductionVariants) == 0 {
		return -1
	}
	return aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount)
}

func TestServerlessLifecycle(t *testing.T) {
	data := t.TempDir()
	c, url, stop := start(t, func(cfg *config.Config) {
		cfg.Data = data
		cfg.Hosting.ServerlessIdleTimeout = config.Duration(time.Second)
	})
	createModel(t, c, "sl", "xgboost", "file://"+repoPath(t, "examples/xgboost/model"))
	if err := createServerlessConfig(t, c, "sl", "sl", 2048, 5, 0); err != nil {
		t.Fatal(err)
	}
	createEndpoint(t, c, "sl", "sl")
	waitInService(t, c, "sl")

	d := describe(t, c, "sl")
	v := d.ProductionVariants[0]
	if v.CurrentServerlessConfig == nil || aws.ToInt32(v.CurrentServerlessConfig.MemorySizeInMB) != 2048 || aws.ToInt32(v.DesiredServerlessConfig.MaxConcurrency) != 5 {
		t.Fatalf("serverless configs in DescribeEndpoint: current %+v desired %+v", v.CurrentServerlessConfig, v.DesiredServerlessConfig)
	}
	if n := aws.ToInt32(v.CurrentInstanceCount); n != 0 {
		t.Fatalf("a new serverless endpoint has %d warm instances, want 0", n)
	}

	body := readFile(t, repoPath(t, "examples/xgboost/sample.csv"))
	want := readFile(t, repoPath(t, "examples/xgboost/sample.expected"))
	out, err := invoke(context.Background(), c, "sl", "text/csv", "text/csv", body, "")
	if err != nil {
		t.Fatal(err)
	}
	if h := coldStart(out); !strings.HasPrefix(h, "true; duration_ms=") {
		t.Fatalf("first invocation: cold-start header %q, want true with a duration", h)
	}
	checkScores(t, string(out.Body), string(want))
	out, err = invoke(context.Background(), c, "sl", "text/csv", "text/csv", body, "")
	if err != nil {
		t.Fatal(err)
	}
	if h := coldStart(out); h != "false" {
		t.Fatalf("second invocation right after: cold-start header %q, want false", h)
	}

	// Idle: back to zero instances.
	waitFor(t, 20*time.Second, "scaled to zero", func() (bool, string) {
		n := instances(t, c, "sl")
		return n == 0, fmt.Sprint(n, " instances")
	})
	out, err = invoke(context.Background(), c, "sl", "text/csv", "text/csv", body, "")
	if err != nil {
		t.Fatal(err)
	}
	if h := coldStart(out); !strings.HasPrefix(h, "true") {
		t.Fatalf("invocation after scale to zero: cold-start header %q, want true", h)
	}
	metrics := get(t, url+"/metrics")
	if !strings.Contains(metrics, `sagemaker_model_setup_time_microseconds_count{endpoint="sl",variant="AllTraffic"}`) {
		t.Errorf("/metrics has no ModelSetupTime for the endpoint")
	}

	// Over 4 MB: refused as SageMaker refuses serverless payloads.
	_, err = invoke(context.Background(), c, "sl", "text/csv", "text/csv", bytes.Repeat([]byte("1,"), 2<<20+1), "")
	expectAPIError(t, "5 MB body", err, "ValidationError", 400, "has oversize body")
	// The same body sent chunked (no Content-Length) is cut off at 4 MB.
	chunked := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("1,"), 2<<20+1)))
	resp, err := http.Post(url+"/endpoints/sl/invocations", "text/csv", chunked)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(msg), "has oversize body") {
		t.Fatalf("chunked 4 MB+ body: %s %s", resp.Status, msg)
	}

	// Billing data: every invocation carries its memory size.
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
	var n, withMemory int
	for _, v := range invs {
		if v.Resource == "sl" && v.Status == 200 {
			n++
			if v.Mode == "serverless" && v.MemoryMB == 2048 {
				withMemory++
			}
		}
	}
	if n != 3 || withMemory != 3 {
		t.Fatalf("ledger: %d successful invocations, %d with mode serverless and 2048 MB; want 3 and 3", n, withMemory)
	}
}

func TestServerlessThrottlesBurst(t *testing.T) {
	c, _, _ := start(t, nil)
	createModel(t, c, "burst", fixtureImage(t), "")
	if err := createServerlessConfig(t, c, "burst", "burst", 1024, 20, 0); err != nil {
		t.Fatal(err)
	}
	createEndpoint(t, c, "burst", "burst")
	waitInService(t, c, "burst")

	gate := filepath.Join(t.TempDir(), "release")
	var mu sync.Mutex
	var ok, throttled int
	var other []error
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := invoke(context.Background(), c, "burst", "text/plain", "", []byte("x"), "mode=hold;gate="+gate)
			mu.Lock()
			defer mu.Unlock()
			var re *awshttp.ResponseError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &re) && re.HTTPStatusCode() == 400 && strings.Contains(err.Error(), "ThrottlingException"):
				throttled++
			default:
				other = append(other, err)
			}
		}()
	}
	waitFor(t, 60*time.Second, "80 of 100 throttled while 20 are held", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return throttled >= 80, fmt.Sprintf("%d throttled, %d ok, %d other", throttled, ok, len(other))
	})
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ok != 20 || throttled != 80 || len(other) != 0 {
		t.Fatalf("burst of 100 on MaxConcurrency 20: %d ok, %d throttled, other errors %v; want 20, 80, none", ok, throttled, other)
	}
	// At most 20 in flight needs at most ceil(20/4) = 5 instances.
	if n := instances(t, c, "burst"); n > 5 {
		t.Fatalf("%d instances for MaxConcurrency 20 at 4 per instance", n)
	}
}

func TestServerlessProvisionedConcurrencyStaysWarm(t *testing.T) {
	c, _, _ := start(t, func(cfg *config.Config) {
		cfg.Hosting.ServerlessIdleTimeout = config.Duration(300 * time.Millisecond)
	})
	createModel(t, c, "warm", "xgboost", "file://"+repoPath(t, "examples/xgboost/model"))
	if err := createServerlessConfig(t, c, "warm", "warm", 1024, 10, 2); err != nil {
		t.Fatal(err)
	}
	createEndpoint(t, c, "warm", "warm")
	waitInService(t, c, "warm")
	if n := instances(t, c, "warm"); n != 1 {
		t.Fatalf("provisioned concurrency 2 at 4 per instance: %d warm instances, want 1", n)
	}
	out, err := invoke(context.Background(), c, "warm", "text/csv", "text/csv", readFile(t, repoPath(t, "examples/xgboost/sample.csv")), "")
	if err != nil {
		t.Fatal(err)
	}
	if h := coldStart(out); h != "false" {
		t.Fatalf("invocation on a provisioned endpoint: cold-start header %q, want false", h)
	}
	// Through several idle periods the provisioned instance stays.
	until := time.Now().Add(5 * 300 * time.Millisecond)
	for time.Now().Before(until) {
		if n := instances(t, c, "warm"); n < 1 {
			t.Fatalf("provisioned instance stopped after idling")
		}
	}
	// Raise provisioned concurrency to 6: two warm instances.
	if _, err := c.sm.UpdateEndpointWeightsAndCapacities(context.Background(), &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName: aws.String("warm"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{
			VariantName:            aws.String("AllTraffic"),
			ServerlessUpdateConfig: &smtypes.ProductionVariantServerlessUpdateConfig{ProvisionedConcurrency: aws.Int32(6)},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "2 warm instances", func() (bool, string) {
		d := describe(t, c, "warm")
		v := d.ProductionVariants[0]
		return aws.ToInt32(v.CurrentInstanceCount) == 2 && aws.ToInt32(v.CurrentServerlessConfig.ProvisionedConcurrency) == 6 && d.EndpointStatus == smtypes.EndpointStatusInService,
			fmt.Sprint(aws.ToInt32(v.CurrentInstanceCount), " ", d.EndpointStatus)
	})
}

func TestServerlessValidation(t *testing.T) {
	c, _, _ := start(t, nil)
	createModel(t, c, "m", "xgboost", "file://"+repoPath(t, "examples/xgboost/model"))
	expectAPIError(t, "memory 1000", createServerlessConfig(t, c, "a", "m", 1000, 5, 0), "ValidationException", 400, "memorySizeInMB")
	expectAPIError(t, "max concurrency 201", createServerlessConfig(t, c, "b", "m", 1024, 201, 0), "ValidationException", 400, "maxConcurrency")
	expectAPIError(t, "provisioned above max", createServerlessConfig(t, c, "c", "m", 1024, 2, 3), "ValidationException", 400, "ProvisionedConcurrency (3) must be less than or equal to MaxConcurrency (2)")
	_, err := c.sm.CreateEndpointConfig(context.Background(), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("two"),
		ProductionVariants: []smtypes.ProductionVariant{
			{VariantName: aws.String("A"), ModelName: aws.String("m"), ServerlessConfig: &smtypes.ProductionVariantServerlessConfig{MemorySizeInMB: aws.Int32(1024), MaxConcurrency: aws.Int32(1)}},
			{VariantName: aws.String("B"), ModelName: aws.String("m"), ServerlessConfig: &smtypes.ProductionVariantServerlessConfig{MemorySizeInMB: aws.Int32(1024), MaxConcurrency: aws.Int32(1)}},
		},
	})
	expectAPIError(t, "two serverless variants", err, "ValidationException", 400, "only one production variant")

	// An instance-based endpoint cannot become serverless.
	deploy(t, c, "rt", "xgboost", "file://"+repoPath(t, "examples/xgboost/model"), "ml.m5.large", 1)
	if err := createServerlessConfig(t, c, "sl", "m", 1024, 5, 0); err != nil {
		t.Fatal(err)
	}
	_, err = c.sm.UpdateEndpoint(context.Background(), &sagemaker.UpdateEndpointInput{EndpointName: aws.String("rt"), EndpointConfigName: aws.String("sl")})
	expectAPIError(t, "real-time to serverless", err, "ValidationException", 400, "cannot convert an instance-based endpoint")
}

// checkScores compares CSV predictions with the expected ones.
func checkScores(t testing.TB, got, want string) {
	t.Helper()
	g, w := parseScores(t, got), parseScores(t, want)
	if len(g) != len(w) {
		t.Fatalf("%d scores, want %d", len(g), len(w))
	}
	for i := range g {
		if !closeTo(g[i], w[i]) {
			t.Fatalf("score %d = %v, want %v", i, g[i], w[i])
		}
	}
}

func get(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
