package server_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/inferbox/inferbox/internal/config"
)

func TestSigV4(t *testing.T) {
	t.Parallel()
	url, _ := startServer(t, func(cfg *config.Config) {
		cfg.Auth.AccessKeys = map[string]string{"AKIDTEST": "secret"}
	})
	ctx := context.Background()
	good := newClients(url, "AKIDTEST", "secret")
	deploy(t, good, "signed", "xgboost", "file://"+repoPath(t, "examples/xgboost/model"), "ml.m5.large", 1)
	sample := readFile(t, repoPath(t, "examples/xgboost/sample.csv"))
	if _, err := invoke(ctx, good, "signed", "text/csv", "", sample, ""); err != nil {
		t.Errorf("signed invoke with a body: %v", err)
	}
	if _, err := good.aas.DescribeScalableTargets(ctx, &applicationautoscaling.DescribeScalableTargetsInput{ServiceNamespace: nsSageMaker}); err != nil {
		t.Errorf("signed Application Auto Scaling call: %v", err)
	}

	wrong := newClients(url, "AKIDTEST", "not-the-secret")
	_, err := wrong.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{})
	expectAPIError(t, "control plane, wrong secret", err, "InvalidSignatureException", 403, "signature")
	_, err = invoke(ctx, wrong, "signed", "text/csv", "", sample, "")
	expectAPIError(t, "runtime, wrong secret", err, "InvalidSignatureException", 403)
	_, err = wrong.aas.DescribeScalableTargets(ctx, &applicationautoscaling.DescribeScalableTargetsInput{ServiceNamespace: nsSageMaker})
	expectAPIError(t, "autoscaling, wrong secret", err, "InvalidSignatureException", 403)

	unknown := newClients(url, "AKIDOTHER", "secret")
	_, err = unknown.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("signed")})
	expectAPIError(t, "unknown access key", err, "UnrecognizedClientException", 403)
	_, err = invoke(ctx, unknown, "signed", "text/csv", "", sample, "")
	expectAPIError(t, "runtime, unknown access key", err, "UnrecognizedClientException", 403)

	// Unsigned requests are refused; /healthz and /metrics stay open.
	resp, err := http.Post(url+"/endpoints/signed/invocations", "text/csv", strings.NewReader(string(sample)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") == "" {
		t.Errorf("unsigned invoke: %s, X-Amzn-ErrorType %q", resp.Status, resp.Header.Get("X-Amzn-ErrorType"))
	}
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s with auth on: %s", path, resp.Status)
		}
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	c, url, _ := start(t, nil)
	ctx := context.Background()
	deploy(t, c, "metered", "xgboost", "file://"+repoPath(t, "examples/xgboost/model"), "ml.m5.large", 1)
	sample := readFile(t, repoPath(t, "examples/xgboost/sample.csv"))
	for range 5 {
		if _, err := invoke(ctx, c, "metered", "text/csv", "", sample, ""); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		_, err := invoke(ctx, c, "metered", "text/csv", "", []byte("x\n"), "")
		expectAPIError(t, "bad row", err, "ModelError", 424)
	}

	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz: %s %q", resp.Status, body)
	}

	resp, err = http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	labels := `\{[^}]*endpoint="metered"[^}]*variant="AllTraffic"[^}]*\}`
	for _, want := range []string{
		`sagemaker_invocations_total` + labels + ` 7`,
		`sagemaker_invocation_4xx_errors_total` + labels + ` 2`,
		`sagemaker_model_latency_microseconds_count` + labels + ` \d+`,
		`sagemaker_model_latency_microseconds_bucket` + labels + ` \d+`,
		`sagemaker_overhead_latency_microseconds_count` + labels + ` \d+`,
		`sagemaker_variant_instances` + labels + ` 1`,
	} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(text) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
	if t.Failed() {
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, "metered") && !strings.Contains(line, "_bucket") {
				t.Log(line)
			}
		}
	}
}
