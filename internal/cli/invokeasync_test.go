package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/config"
)

// deployAsync creates an async endpoint of the example XGBoost model
// through the native API; its outputs go under s3://inferbox-async-inputs/out
// (the bucket invoke-async --file creates).
func deployAsync(t *testing.T, url, key, name string) {
	t.Helper()
	ctx := context.Background()
	c := native.NewClient(url, key, nil)
	if _, err := c.CreateModel(ctx, &catalog.Model{ModelName: name, PrimaryContainer: &catalog.ContainerDefinition{Image: "xgboost", ModelDataUrl: exampleModel(t)}}); err != nil {
		t.Fatal(err)
	}
	one := 1
	if _, err := c.CreateEndpointConfig(ctx, &catalog.EndpointConfig{
		EndpointConfigName:   name,
		ProductionVariants:   []catalog.ProductionVariant{{VariantName: "AllTraffic", ModelName: name, InstanceType: "ml.m5.large", InitialInstanceCount: &one}},
		AsyncInferenceConfig: &catalog.AsyncInferenceConfig{OutputConfig: json.RawMessage(`{"S3OutputPath":"s3://inferbox-async-inputs/out"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateEndpoint(ctx, native.CreateEndpointInput{EndpointName: name, EndpointConfigName: name}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ep, err := c.DescribeEndpoint(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ep.EndpointStatus == catalog.StatusInService {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint %s is %s after 30 s", name, ep.EndpointStatus)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// TestInvokeAsync: invoke-async uploads a local file, waits with progress
// bars and writes the output; takes an s3:// input; reports a failure
// with its reason; and the native status route reports each state.
func TestInvokeAsync(t *testing.T) {
	url := startServer(t, nil)
	deployAsync(t, url, "", "xgbasync")
	dir := t.TempDir()
	sample, err := filepath.Abs("../../examples/xgboost/sample.csv")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("file, wait, output", func(t *testing.T) {
		ib := inferbox{t: t, server: url}
		out := filepath.Join(dir, "out.csv")
		r := ib.run("", "invoke-async", "xgbasync", "--file", sample, "--wait", "--output", out)
		if r.err != nil {
			t.Fatalf("invoke-async: %v\nstderr:\n%s", r.err, r.stderr)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		checkPredictions(t, string(b))
		for _, bar := range []string{"upload", "waiting for ", "download"} {
			if !strings.Contains(r.stderr, bar) {
				t.Errorf("stderr lacks the %q progress bar:\n%s", bar, r.stderr)
			}
		}
		if r.stdout != "" {
			t.Errorf("stdout %q with --output", r.stdout)
		}
	})

	var input string
	t.Run("no wait, then status", func(t *testing.T) {
		ib := inferbox{t: t, server: url}
		out := ib.ok("invoke-async", "xgbasync", "--file", sample, "--no-progress", "--inference-id", "cli-1")
		fields := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, _ := strings.Cut(line, ":")
			fields[k] = strings.TrimSpace(v)
		}
		input = fields["InputLocation"]
		if fields["InferenceId"] != "cli-1" || fields["OutputLocation"] != "s3://inferbox-async-inputs/out/cli-1.out" || !strings.HasPrefix(input, "s3://inferbox-async-inputs/") {
			t.Fatalf("output:\n%s", out)
		}
		c := native.NewClient(url, "", nil)
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := c.AsyncStatus(context.Background(), "xgbasync", "cli-1")
			if err != nil {
				t.Fatal(err)
			}
			if st.Status == "Completed" {
				if st.OutputLocation != fields["OutputLocation"] {
					t.Errorf("status %+v", st)
				}
				break
			}
			if st.Status != "Pending" || time.Now().After(deadline) {
				t.Fatalf("status %+v", st)
			}
			time.Sleep(20 * time.Millisecond) // polling interval
		}
	})

	t.Run("s3 input to stdout", func(t *testing.T) {
		ib := inferbox{t: t, server: url}
		checkPredictions(t, ib.ok("invoke-async", "xgbasync", "--input", input, "--wait", "--no-progress"))
	})

	t.Run("failure", func(t *testing.T) {
		ib := inferbox{t: t, server: url}
		msg := ib.fails(1, "invoke-async", "xgbasync", "--input", "s3://inferbox-async-inputs/missing.csv", "--wait", "--inference-id", "cli-missing", "--no-progress")
		if !strings.Contains(msg, "cli-missing failed") || !strings.Contains(msg, "s3://inferbox-async-inputs/missing.csv") {
			t.Errorf("error %q", msg)
		}
		st, err := native.NewClient(url, "", nil).AsyncStatus(context.Background(), "xgbasync", "cli-missing")
		if err != nil || st.Status != "Failed" || st.FailureLocation != "s3://inferbox-async-inputs/out/cli-missing-error.out" || !strings.Contains(st.FailureReason, "missing.csv") {
			t.Errorf("status %+v, %v", st, err)
		}
	})

	t.Run("usage", func(t *testing.T) {
		ib := inferbox{t: t, server: url}
		ib.fails(2, "invoke-async", "xgbasync")
		ib.fails(2, "invoke-async", "xgbasync", "--file", sample, "--input", input)
		ib.fails(2, "invoke-async", "xgbasync", "--input", input, "--output", "x")
		if msg := ib.fails(1, "invoke-async", "nope", "--input", input); !strings.Contains(msg, "nope") {
			t.Errorf("unknown endpoint: %q", msg)
		}
	})
}

// TestInvokeAsyncAccessKeys: with access keys configured, the upload and
// download (S3, SigV4 with an unsigned payload) and the native calls all
// carry the CLI's key.
func TestInvokeAsyncAccessKeys(t *testing.T) {
	url := startServer(t, func(c *config.Config) {
		c.Auth.AccessKeys = map[string]string{"AKIDTEST": "s3cret"}
	})
	deployAsync(t, url, "AKIDTEST:s3cret", "keyed")
	ib := inferbox{t: t, server: url}
	sample, err := filepath.Abs("../../examples/xgboost/sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	if msg := ib.fails(1, "invoke-async", "keyed", "--file", sample, "--no-progress", "--access-key", "AKIDTEST:wrong"); !strings.Contains(msg, "SignatureDoesNotMatch") {
		t.Errorf("wrong secret: %q", msg)
	}
	checkPredictions(t, ib.ok("invoke-async", "keyed", "--file", sample, "--wait", "--no-progress", "--access-key", "AKIDTEST:s3cret"))
}
