package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/inferbox/inferbox/internal/config"
)

// TestAsyncScaleToZeroAndBack is the real run of scale to zero and back:
// an async endpoint (scalable target with MinCapacity 0) stops its
// instance once the queue is empty and it has idled for
// async.idle_timeout; a request arriving then is queued with
// HasBacklogWithoutCapacity set until a new instance is ready, which
// runs it; then the endpoint goes back to zero.
func TestAsyncScaleToZeroAndBack(t *testing.T) {
	t.Parallel()
	c, url, _ := start(t, func(cfg *config.Config) {
		cfg.Async.IdleTimeout = config.Duration(time.Second)
	})
	ctx := context.Background()
	dir := t.TempDir()
	// The fixture's /ping answers 503 until startGate exists: the test
	// decides when a starting instance becomes ready.
	startGate := filepath.Join(dir, "ready")
	if err := writeFile(startGate); err != nil {
		t.Fatal(err)
	}
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName: aws.String("zero"), ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/inferbox"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(fixtureImage(t)), Environment: map[string]string{"TEST_START_GATE": startGate}},
	}); err != nil {
		t.Fatalf("CreateModel: %v", err)
	}
	if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("zero"),
		ProductionVariants: []smtypes.ProductionVariant{{
			VariantName: aws.String("AllTraffic"), ModelName: aws.String("zero"),
			InstanceType: "ml.m5.large", InitialInstanceCount: aws.Int32(1),
		}},
		AsyncInferenceConfig: &smtypes.AsyncInferenceConfig{
			OutputConfig: &smtypes.AsyncInferenceOutputConfig{S3OutputPath: aws.String("s3://asyncout/zero")},
		},
	}); err != nil {
		t.Fatalf("CreateEndpointConfig: %v", err)
	}
	createEndpoint(t, c, "zero", "zero")
	waitInService(t, c, "zero")
	if _, err := c.aas.RegisterScalableTarget(ctx, &applicationautoscaling.RegisterScalableTargetInput{
		ServiceNamespace: nsSageMaker, ResourceId: aws.String("endpoint/zero/variant/AllTraffic"), ScalableDimension: dimVariant,
		MinCapacity: aws.Int32(0), MaxCapacity: aws.Int32(2),
	}); err != nil {
		t.Fatalf("RegisterScalableTarget MinCapacity 0: %v", err)
	}
	makeBuckets(t, c, "zeroin", "asyncout")
	putObject(t, c, "zeroin", "in.txt", "wake up")

	instances := func() int {
		return int(aws.ToInt32(describe(t, c, "zero").ProductionVariants[0].CurrentInstanceCount))
	}
	noCapacity := func() string {
		m := get(t, url+"/metrics")
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, `sagemaker_async_has_backlog_without_capacity{endpoint="zero"} `) {
				return strings.Fields(line)[1]
			}
		}
		return "absent"
	}
	waitZero := func(what string) {
		waitFor(t, 30*time.Second, what, func() (bool, string) {
			n := instances()
			return n == 0, fmt.Sprintf("%d instances", n)
		})
	}

	// A first request runs; then the idle instance stops.
	out := invokeAsync(t, c, "zero", "s3://zeroin/in.txt", "mode=echo")
	if got := waitObject(t, c, aws.ToString(out.OutputLocation), 30*time.Second); got != "wake up" {
		t.Fatalf("output %q", got)
	}
	waitZero("the idle endpoint scales to zero")
	if v := noCapacity(); v != "0" {
		t.Errorf("HasBacklogWithoutCapacity with an empty queue = %s", v)
	}

	// At zero, with the next instance held unready: the request waits
	// in the queue and the metric says there is no capacity for it.
	if err := os.Remove(startGate); err != nil {
		t.Fatal(err)
	}
	holdGate := filepath.Join(dir, "finish")
	out = invokeAsync(t, c, "zero", "s3://zeroin/in.txt", "mode=hold;gate="+holdGate)
	waitFor(t, 30*time.Second, "an instance starts for the queued request", func() (bool, string) {
		_, err := os.Stat(startGate + ".waiting")
		return err == nil, fmt.Sprint(err)
	})
	waitFor(t, 10*time.Second, "HasBacklogWithoutCapacity = 1", func() (bool, string) {
		v := noCapacity()
		return v == "1", v
	})
	if n := instances(); n != 0 {
		t.Errorf("%d instances before the new one is ready", n)
	}

	// Ready: the instance takes the request (held running), the metric clears.
	if err := writeFile(startGate); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "back to one instance", func() (bool, string) {
		n := instances()
		return n == 1, fmt.Sprintf("%d instances", n)
	})
	waitFor(t, 10*time.Second, "HasBacklogWithoutCapacity = 0", func() (bool, string) {
		v := noCapacity()
		return v == "0", v
	})
	if err := writeFile(holdGate); err != nil {
		t.Fatal(err)
	}
	if got := waitObject(t, c, aws.ToString(out.OutputLocation), 30*time.Second); got != "held\n" {
		t.Fatalf("output %q", got)
	}
	waitZero("the endpoint scales to zero again")
}
