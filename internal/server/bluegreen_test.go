package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// loadResult counts what a load generator saw.
type loadResult struct {
	mu        sync.Mutex
	ok        int
	failures  []error
	byVariant map[string]int
	lastFrom  string // variant of the newest successful answer
	lastBody  string
}

// runLoad invokes endpoint from n goroutines until stop is closed or the
// bound is reached, and returns a wait function that returns the result.
func runLoad(c clients, endpoint string, body []byte, n int, stop <-chan struct{}, check func(variant, body string) error) func() *loadResult {
	res := &loadResult{byVariant: map[string]int{}}
	var wg sync.WaitGroup
	deadline := time.Now().Add(90 * time.Second) // bound, in case stop is never closed
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				out, err := invoke(context.Background(), c, endpoint, "text/csv", "text/csv", body, "")
				if err == nil && check != nil {
					err = check(aws.ToString(out.InvokedProductionVariant), string(out.Body))
				}
				res.mu.Lock()
				if err != nil {
					res.failures = append(res.failures, err)
				} else {
					res.ok++
					v := aws.ToString(out.InvokedProductionVariant)
					res.byVariant[v]++
					res.lastFrom, res.lastBody = v, string(out.Body)
				}
				res.mu.Unlock()
			}
		}()
	}
	return func() *loadResult {
		wg.Wait()
		return res
	}
}

func TestBlueGreenUnderLoad(t *testing.T) {
	t.Parallel()
	c, _, _ := start(t, nil)
	ctx := context.Background()
	sample := readFile(t, repoPath(t, "examples/xgboost/sample.csv"))
	row := sample[:strings.IndexByte(string(sample), '\n')+1]
	scoreA := "0.0016510456"

	createModel(t, c, "model-a", "xgboost", "file://"+repoPath(t, "examples/xgboost/model"))
	createConfig(t, c, "config-a", "model-a", "Blue", "ml.m5.large", 2)
	createEndpoint(t, c, "bg", "config-a")
	waitInService(t, c, "bg")

	// Config B is the fixture model server (it echoes the request body);
	// it fails /ping until the gate file exists, so the test sees the
	// endpoint Updating for as long as it wants.
	gate := filepath.Join(t.TempDir(), "ready")
	if _, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName: aws.String("model-b"),
		PrimaryContainer: &smtypes.ContainerDefinition{
			Image:       aws.String(fixtureImage(t)),
			Environment: map[string]string{"TEST_START_GATE": gate},
		},
	}); err != nil {
		t.Fatal(err)
	}
	createConfig(t, c, "config-b", "model-b", "Green", "ml.c5.large", 2)

	check := func(variant, body string) error {
		switch {
		case variant == "Blue" && strings.HasPrefix(body, scoreA):
		case variant == "Green" && body == string(row):
		default:
			return fmt.Errorf("variant %q answered %q", variant, body)
		}
		return nil
	}
	stop := make(chan struct{})
	wait := runLoad(c, "bg", row, 4, stop, check)

	if _, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("bg"), EndpointConfigName: aws.String("config-b")}); err != nil {
		close(stop)
		t.Fatalf("UpdateEndpoint: %v", err)
	}
	d := describe(t, c, "bg")
	if d.EndpointStatus != smtypes.EndpointStatusUpdating {
		t.Errorf("status during the update = %s, want Updating", d.EndpointStatus)
	}
	_, err := c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("bg"), EndpointConfigName: aws.String("config-b")})
	expectAPIError(t, "UpdateEndpoint while Updating", err, "ValidationException", 400, "in-progress")
	// Wait until the green instances are asking for /ping, then let them pass.
	waitFor(t, 30*time.Second, "green instances start", func() (bool, string) {
		_, err := os.Stat(gate + ".waiting")
		return err == nil, fmt.Sprint(err)
	})
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitInService(t, c, "bg")
	// Keep the load going a little after the switch: wait for Green answers.
	waitFor(t, 30*time.Second, "answers come from config B", func() (bool, string) {
		res, err := invoke(ctx, c, "bg", "text/csv", "text/csv", row, "")
		if err != nil {
			return false, err.Error()
		}
		return aws.ToString(res.InvokedProductionVariant) == "Green", aws.ToString(res.InvokedProductionVariant)
	})
	close(stop)
	res := wait()
	t.Logf("load across the update: %d ok by variant %v, %d failed", res.ok, res.byVariant, len(res.failures))
	if len(res.failures) > 0 {
		t.Errorf("%d requests failed across the blue/green switch; first: %v", len(res.failures), res.failures[0])
	}
	if res.byVariant["Blue"] == 0 || res.lastFrom != "Green" {
		t.Errorf("load saw %v, last answer from %q", res.byVariant, res.lastFrom)
	}
	d = describe(t, c, "bg")
	if aws.ToString(d.EndpointConfigName) != "config-b" || len(d.ProductionVariants) != 1 || aws.ToString(d.ProductionVariants[0].VariantName) != "Green" || aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount) != 2 {
		t.Errorf("after the update: config %s, variants %+v", aws.ToString(d.EndpointConfigName), d.ProductionVariants)
	}

	// UpdateEndpointWeightsAndCapacities: 2 → 3 instances, then 3 → 1.
	for _, n := range []int32{3, 1} {
		if _, err := c.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
			EndpointName: aws.String("bg"),
			DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{
				VariantName: aws.String("Green"), DesiredInstanceCount: aws.Int32(n),
			}},
		}); err != nil {
			t.Fatalf("UpdateEndpointWeightsAndCapacities to %d: %v", n, err)
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("CurrentInstanceCount follows to %d", n), func() (bool, string) {
			d := describe(t, c, "bg")
			v := d.ProductionVariants[0]
			return d.EndpointStatus == smtypes.EndpointStatusInService && aws.ToInt32(v.DesiredInstanceCount) == n && aws.ToInt32(v.CurrentInstanceCount) == n,
				fmt.Sprintf("%s desired %d current %d", d.EndpointStatus, aws.ToInt32(v.DesiredInstanceCount), aws.ToInt32(v.CurrentInstanceCount))
		})
	}
	if _, err := invoke(ctx, c, "bg", "text/csv", "", row, ""); err != nil {
		t.Errorf("invoke after resizing: %v", err)
	}
	_, err = c.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName:                aws.String("bg"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("Nope"), DesiredInstanceCount: aws.Int32(1)}},
	})
	expectAPIError(t, "unknown variant", err, "ValidationException", 400, "Nope")
}
