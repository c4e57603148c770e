package server_test

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

// parseScores reads one float per line.
func parseScores(t testing.TB, s string) []float64 {
	t.Helper()
	var out []float64
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		v, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
		if err != nil {
			t.Fatalf("score %q: %v", line, err)
		}
		out = append(out, v)
	}
	return out
}

func closeTo(a, b float64) bool {
	return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b))
}

func TestLifecycleXGBoost(t *testing.T) {
	t.Parallel()
	c, _, _ := start(t, nil)
	ctx := context.Background()
	modelDir := repoPath(t, "examples/xgboost/model")
	sample := readFile(t, repoPath(t, "examples/xgboost/sample.csv"))
	expected := parseScores(t, string(readFile(t, repoPath(t, "examples/xgboost/sample.expected"))))

	createModel(t, c, "bc-model", xgboostImage, "file://"+modelDir)
	if _, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("bc-config"),
		ProductionVariants: []smtypes.ProductionVariant{
			{VariantName: aws.String("Blue"), ModelName: aws.String("bc-model"), InstanceType: "ml.m5.large", InitialInstanceCount: aws.Int32(2), InitialVariantWeight: aws.Float32(3)},
			{VariantName: aws.String("Green"), ModelName: aws.String("bc-model"), InstanceType: "ml.c5.large", InitialInstanceCount: aws.Int32(1), InitialVariantWeight: aws.Float32(1)},
		},
	}); err != nil {
		t.Fatalf("CreateEndpointConfig: %v", err)
	}
	out, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("bc-endpoint"), EndpointConfigName: aws.String("bc-config")})
	if err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	if want := "arn:aws:sagemaker:us-east-1:123456789012:endpoint/bc-endpoint"; aws.ToString(out.EndpointArn) != want {
		t.Errorf("EndpointArn = %s, want %s", aws.ToString(out.EndpointArn), want)
	}
	// CreateEndpoint returns at once; the endpoint is Creating (or, on a
	// fast machine, already InService), never anything else.
	if d := describe(t, c, "bc-endpoint"); d.EndpointStatus != smtypes.EndpointStatusCreating && d.EndpointStatus != smtypes.EndpointStatusInService {
		t.Errorf("status right after CreateEndpoint = %s", d.EndpointStatus)
	}
	waitInService(t, c, "bc-endpoint")

	d := describe(t, c, "bc-endpoint")
	if aws.ToString(d.EndpointConfigName) != "bc-config" || len(d.ProductionVariants) != 2 {
		t.Fatalf("DescribeEndpoint: config %s, %d variants", aws.ToString(d.EndpointConfigName), len(d.ProductionVariants))
	}
	wantCounts := map[string][2]int32{"Blue": {2, 3}, "Green": {1, 1}}
	for _, v := range d.ProductionVariants {
		w := wantCounts[aws.ToString(v.VariantName)]
		if aws.ToInt32(v.CurrentInstanceCount) != w[0] || aws.ToInt32(v.DesiredInstanceCount) != w[0] {
			t.Errorf("variant %s: instances current %d desired %d, want %d", aws.ToString(v.VariantName), aws.ToInt32(v.CurrentInstanceCount), aws.ToInt32(v.DesiredInstanceCount), w[0])
		}
		if aws.ToFloat32(v.CurrentWeight) != float32(w[1]) || aws.ToFloat32(v.DesiredWeight) != float32(w[1]) {
			t.Errorf("variant %s: weight current %v desired %v, want %d", aws.ToString(v.VariantName), aws.ToFloat32(v.CurrentWeight), aws.ToFloat32(v.DesiredWeight), w[1])
		}
	}

	// CSV in, CSV out.
	res, err := invoke(ctx, c, "bc-endpoint", "text/csv", "text/csv", sample, "")
	if err != nil {
		t.Fatalf("InvokeEndpoint: %v", err)
	}
	got := parseScores(t, string(res.Body))
	if len(got) != len(expected) {
		t.Fatalf("got %d scores, want %d", len(got), len(expected))
	}
	for i := range got {
		if !closeTo(got[i], expected[i]) {
			t.Errorf("row %d: score %v, want %v", i+1, got[i], expected[i])
		}
	}
	if v := aws.ToString(res.InvokedProductionVariant); v != "Blue" && v != "Green" {
		t.Errorf("InvokedProductionVariant = %q", v)
	}
	// CSV in, JSON out; TargetVariant picks the variant.
	for _, variant := range []string{"Blue", "Green"} {
		res, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
			EndpointName: aws.String("bc-endpoint"), ContentType: aws.String("text/csv"), Accept: aws.String("application/json"),
			Body: sample, TargetVariant: aws.String(variant),
		})
		if err != nil {
			t.Fatalf("InvokeEndpoint JSON to %s: %v", variant, err)
		}
		if aws.ToString(res.InvokedProductionVariant) != variant {
			t.Errorf("TargetVariant %s answered by %s", variant, aws.ToString(res.InvokedProductionVariant))
		}
		if ct := aws.ToString(res.ContentType); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		var doc struct {
			Predictions []struct{ Score float64 } `json:"predictions"`
		}
		if err := json.Unmarshal(res.Body, &doc); err != nil {
			t.Fatalf("JSON answer %q: %v", res.Body, err)
		}
		if len(doc.Predictions) != len(expected) {
			t.Fatalf("JSON answer has %d predictions, want %d", len(doc.Predictions), len(expected))
		}
		for i, p := range doc.Predictions {
			if !closeTo(p.Score, expected[i]) {
				t.Errorf("JSON row %d: %v, want %v", i+1, p.Score, expected[i])
			}
		}
	}
	// Weighted routing reaches both variants.
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		res, err := invoke(ctx, c, "bc-endpoint", "text/csv", "", sample[:strings.IndexByte(string(sample), '\n')+1], "")
		if err != nil {
			t.Fatal(err)
		}
		seen[aws.ToString(res.InvokedProductionVariant)] = true
	}
	if !seen["Blue"] || !seen["Green"] {
		t.Errorf("weighted routing reached only %v in 200 requests", seen)
	}

	// List* with pagination, NameContains and SortOrder.
	createModel(t, c, "other-model", "xgboost", "file://"+modelDir)
	createConfig(t, c, "other-config", "other-model", "AllTraffic", "ml.m5.large", 1)
	var names []string
	var token *string
	for page := 0; ; page++ {
		lm, err := c.sm.ListModels(ctx, &sagemaker.ListModelsInput{MaxResults: aws.Int32(1), NextToken: token, SortBy: smtypes.ModelSortKeyName, SortOrder: smtypes.OrderKeyAscending})
		if err != nil {
			t.Fatalf("ListModels: %v", err)
		}
		if len(lm.Models) > 1 {
			t.Fatalf("ListModels MaxResults 1 returned %d", len(lm.Models))
		}
		for _, m := range lm.Models {
			names = append(names, aws.ToString(m.ModelName))
		}
		if lm.NextToken == nil {
			break
		}
		token = lm.NextToken
		if page > 5 {
			t.Fatal("ListModels pagination does not end")
		}
	}
	if strings.Join(names, ",") != "bc-model,other-model" {
		t.Errorf("ListModels by name ascending, paged: %v", names)
	}
	lm, err := c.sm.ListModels(ctx, &sagemaker.ListModelsInput{SortBy: smtypes.ModelSortKeyName, SortOrder: smtypes.OrderKeyDescending})
	if err != nil || len(lm.Models) != 2 || aws.ToString(lm.Models[0].ModelName) != "other-model" {
		t.Errorf("ListModels descending: %v %+v", err, lm)
	}
	lc, err := c.sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{NameContains: aws.String("BC-")})
	if err != nil || len(lc.EndpointConfigs) != 1 || aws.ToString(lc.EndpointConfigs[0].EndpointConfigName) != "bc-config" {
		t.Errorf("ListEndpointConfigs NameContains: %v %+v", err, lc)
	}
	// The SDK's paginator follows NextToken.
	var all []string
	p := sagemaker.NewListEndpointConfigsPaginator(c.sm, &sagemaker.ListEndpointConfigsInput{MaxResults: aws.Int32(1), SortOrder: smtypes.OrderKeyAscending})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListEndpointConfigs paginator: %v", err)
		}
		for _, ec := range page.EndpointConfigs {
			all = append(all, aws.ToString(ec.EndpointConfigName))
		}
	}
	if strings.Join(all, ",") != "bc-config,other-config" {
		t.Errorf("ListEndpointConfigs by creation time ascending, paged: %v", all)
	}
	le, err := c.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{NameContains: aws.String("endpoint"), StatusEquals: smtypes.EndpointStatusInService})
	if err != nil || len(le.Endpoints) != 1 || aws.ToString(le.Endpoints[0].EndpointName) != "bc-endpoint" || le.Endpoints[0].EndpointStatus != smtypes.EndpointStatusInService {
		t.Errorf("ListEndpoints: %v %+v", err, le)
	}

	// Delete, and the SDK's EndpointDeleted waiter (success on ValidationException).
	if _, err := c.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("bc-endpoint")}); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	dw := sagemaker.NewEndpointDeletedWaiter(c.sm, func(o *sagemaker.EndpointDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 250*time.Millisecond
	})
	if err := dw.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("bc-endpoint")}, 60*time.Second); err != nil {
		t.Fatalf("EndpointDeleted waiter: %v", err)
	}
	if _, err := c.sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String("bc-config")}); err != nil {
		t.Fatalf("DeleteEndpointConfig: %v", err)
	}
	if _, err := c.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("bc-model")}); err != nil {
		t.Fatalf("DeleteModel: %v", err)
	}
	_, err = c.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("bc-model")})
	expectAPIError(t, "DescribeModel after delete", err, "ValidationException", 400, `Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/bc-model"`)
	_, err = c.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("bc-config")})
	expectAPIError(t, "DescribeEndpointConfig after delete", err, "ValidationException", 400, "Could not find endpoint configuration")
	le, err = c.sm.ListEndpoints(ctx, &sagemaker.ListEndpointsInput{})
	if err != nil || len(le.Endpoints) != 0 {
		t.Errorf("ListEndpoints after delete: %v %+v", err, le)
	}
}
