package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/inferbox/inferbox/internal/api/native"
	"github.com/inferbox/inferbox/internal/config"
)

// metricValue reads one sample of /metrics; "absent" if it is not there.
func metricValue(t testing.TB, url, series string) string {
	t.Helper()
	for _, line := range strings.Split(get(t, url+"/metrics"), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.Fields(line)[1]
		}
	}
	return "absent"
}

// TestAsyncWorkerSlotsFollowScaling: an async endpoint's worker slots
// (MaxConcurrentInvocationsPerInstance × desired instances) follow
// UpdateEndpointWeightsAndCapacities out and back in; and the status API
// answers 404 for an id the endpoint never accepted, Failed for one that
// failed.
func TestAsyncWorkerSlotsFollowScaling(t *testing.T) {
	t.Parallel()
	c, url, _ := start(t, nil)
	ctx := context.Background()
	deployAsync(t, c, "slots", fixtureImage(t), nil)
	makeBuckets(t, c, "asyncout", "slotsin")
	// The first request starts the endpoint's worker; its input is missing,
	// so it fails at once.
	acc := invokeAsync(t, c, "slots", "s3://slotsin/missing.txt", "", func(in *sagemakerruntime.InvokeEndpointAsyncInput) {
		in.InferenceId = aws.String("slots-1")
	})
	series := `sagemaker_async_worker_slots{endpoint="slots"}`
	for _, n := range []int32{3, 1} {
		if n != 1 {
			waitFor(t, 30*time.Second, "slots for one instance", func() (bool, string) {
				v := metricValue(t, url, series)
				return v == "2", v
			})
		}
		if _, err := c.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
			EndpointName: aws.String("slots"),
			DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{
				VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(n),
			}},
		}); err != nil {
			t.Fatalf("UpdateEndpointWeightsAndCapacities to %d: %v", n, err)
		}
		want := fmt.Sprint(2 * n)
		waitFor(t, 60*time.Second, "worker slots follow to "+want, func() (bool, string) {
			v := metricValue(t, url, series)
			return v == want, v
		})
	}

	nc := native.NewClient(url, "", nil)
	waitFor(t, 30*time.Second, "the request to fail", func() (bool, string) {
		st, err := nc.AsyncStatus(ctx, "slots", aws.ToString(acc.InferenceId))
		if err != nil {
			return false, err.Error()
		}
		return st.Status == "Failed" && strings.Contains(st.FailureReason, "missing.txt"), fmt.Sprintf("%+v", st)
	})
	resp, err := http.Get(url + native.Prefix + native.AsyncInvocationsPath("slots", "never-sent"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "never-sent") || !strings.Contains(string(body), "never accepted") {
		t.Errorf("status of an unknown id: %d %s", resp.StatusCode, body)
	}
	if _, err := nc.AsyncStatus(ctx, "slots", "never-sent"); err == nil {
		t.Error("the native client reports an unknown id without error")
	}
}

// TestScalingActivitiesSurviveRestart: an activity recorded before a
// restart (here, raising MinCapacity above the instance count) is still
// listed by DescribeScalingActivities after the server restarts on the
// same data directory.
func TestScalingActivitiesSurviveRestart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	useData := func(cfg *config.Config) { cfg.Data = data }
	c, _, stop := start(t, useData)
	ctx := context.Background()
	deploy(t, c, "acts", fixtureImage(t), "", "ml.m5.large", 1)
	rid := "endpoint/acts/variant/AllTraffic"
	registerTarget(t, c, rid, 2, 3)
	list := func(c clients) []string {
		out, err := c.aas.DescribeScalingActivities(ctx, &applicationautoscaling.DescribeScalingActivitiesInput{
			ServiceNamespace: nsSageMaker, ResourceId: aws.String(rid), ScalableDimension: dimVariant,
		})
		if err != nil {
			t.Fatalf("DescribeScalingActivities: %v", err)
		}
		var ids []string
		for _, a := range out.ScalingActivities {
			ids = append(ids, aws.ToString(a.ActivityId)+" "+aws.ToString(a.Cause))
		}
		return ids
	}
	var before []string
	waitFor(t, 30*time.Second, "the MinCapacity activity", func() (bool, string) {
		before = list(c)
		return len(before) > 0, fmt.Sprint(before)
	})
	if !strings.Contains(before[0], "minimum capacity was set to 2") {
		t.Fatalf("activities before the restart: %v", before)
	}
	stop()

	c, _, _ = start(t, useData)
	after := list(c)
	if !slices.Contains(after, before[0]) {
		t.Fatalf("activities after the restart: %v; want them to include %v", after, before)
	}
}
