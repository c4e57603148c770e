package server_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
)

func TestErrorShapes(t *testing.T) {
	t.Parallel()
	c, _, _ := start(t, nil)
	ctx := context.Background()
	modelDir := repoPath(t, "examples/xgboost/model")
	sample := readFile(t, repoPath(t, "examples/xgboost/sample.csv"))
	deploy(t, c, "Err-Endpoint", "xgboost", "file://"+modelDir, "ml.m5.large", 1)

	t.Run("missing endpoint", func(t *testing.T) {
		_, err := c.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("No-Such")})
		expectAPIError(t, "DescribeEndpoint", err, "ValidationException", 400, `Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/no-such".`)
		_, err = c.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("no-such")})
		expectAPIError(t, "DeleteEndpoint", err, "ValidationException", 400, "Could not find endpoint")
		_, err = c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("no-such"), EndpointConfigName: aws.String("Err-Endpoint")})
		expectAPIError(t, "UpdateEndpoint", err, "ValidationException", 400, "Could not find endpoint")
		_, err = c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("x"), EndpointConfigName: aws.String("no-such")})
		expectAPIError(t, "CreateEndpoint with a missing config", err, "ValidationException", 400, "Could not find endpoint configuration")
	})
	t.Run("duplicates", func(t *testing.T) {
		_, err := c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("Err-Endpoint"), EndpointConfigName: aws.String("Err-Endpoint")})
		expectAPIError(t, "CreateEndpoint", err, "ValidationException", 400, `Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/err-endpoint"`)
		// Endpoint names are case-insensitive at create time.
		_, err = c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("err-endpoint"), EndpointConfigName: aws.String("Err-Endpoint")})
		expectAPIError(t, "CreateEndpoint in another case", err, "ValidationException", 400, "Cannot create already existing endpoint")
		_, err = c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String("Err-Endpoint"), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("xgboost"), ModelDataUrl: aws.String(modelDir)}})
		expectAPIError(t, "CreateModel", err, "ValidationException", 400, "Cannot create already existing model")
		_, err = c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("Err-Endpoint"), ProductionVariants: []smtypes.ProductionVariant{{
			VariantName: aws.String("v"), ModelName: aws.String("Err-Endpoint"), InstanceType: "ml.m5.large", InitialInstanceCount: aws.Int32(1),
		}}})
		expectAPIError(t, "CreateEndpointConfig", err, "ValidationException", 400, "Cannot create already existing endpoint configuration")
	})
	t.Run("bad names", func(t *testing.T) {
		for _, name := range []string{"bad_name", "-lead", "trail-", strings.Repeat("a", 64)} {
			_, err := c.sm.CreateModel(ctx, &sagemaker.CreateModelInput{ModelName: aws.String(name), PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("xgboost"), ModelDataUrl: aws.String(modelDir)}})
			expectAPIError(t, "CreateModel "+name, err, "ValidationException", 400, "failed to satisfy constraint")
			_, err = c.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String(name), EndpointConfigName: aws.String("Err-Endpoint")})
			expectAPIError(t, "CreateEndpoint "+name, err, "ValidationException", 400, "failed to satisfy constraint")
		}
	})
	t.Run("bad variants", func(t *testing.T) {
		cases := []struct {
			name    string
			variant smtypes.ProductionVariant
			want    string
		}{
			{"unknown instance type", smtypes.ProductionVariant{VariantName: aws.String("v"), ModelName: aws.String("Err-Endpoint"), InstanceType: "ml.bogus.large", InitialInstanceCount: aws.Int32(1)}, "Member must satisfy enum value set"},
			{"no instance type nor serverless", smtypes.ProductionVariant{VariantName: aws.String("v"), ModelName: aws.String("Err-Endpoint"), InitialInstanceCount: aws.Int32(1)}, "Either InstanceType or ServerlessConfig must be specified"},
			{"missing model", smtypes.ProductionVariant{VariantName: aws.String("v"), ModelName: aws.String("no-model"), InstanceType: "ml.m5.large", InitialInstanceCount: aws.Int32(1)}, `Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/no-model"`},
		}
		for _, tc := range cases {
			_, err := c.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{EndpointConfigName: aws.String("bad-config"), ProductionVariants: []smtypes.ProductionVariant{tc.variant}})
			expectAPIError(t, tc.name, err, "ValidationException", 400, tc.want)
		}
	})
	t.Run("invoke unknown endpoint", func(t *testing.T) {
		_, err := invoke(ctx, c, "no-such", "text/csv", "", sample, "")
		expectAPIError(t, "InvokeEndpoint", err, "ValidationError", 400, "Endpoint no-such of account 123456789012 not found.")
		var ve *rttypes.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("error is %T, want *types.ValidationError", err)
		}
		// The name's case must match at invoke time.
		_, err = invoke(ctx, c, "err-endpoint", "text/csv", "", sample, "")
		expectAPIError(t, "InvokeEndpoint in another case", err, "ValidationError", 400, "Endpoint err-endpoint of account 123456789012 not found.")
		if _, err := invoke(ctx, c, "Err-Endpoint", "text/csv", "", sample, ""); err != nil {
			t.Errorf("InvokeEndpoint with the created case: %v", err)
		}
	})
	t.Run("payload too large", func(t *testing.T) {
		body := bytes.Repeat([]byte("1"), 6291457)
		_, err := invoke(ctx, c, "Err-Endpoint", "text/csv", "", body, "")
		_, _, status := apiError(t, err)
		if status != 413 {
			t.Errorf("6291457-byte body: status %d (%v), want 413", status, err)
		}
		// Exactly at the limit is accepted by the front end (the model
		// then refuses the row, which is a ModelError, not a 413).
		body = append(bytes.Repeat([]byte("1,"), 6291456/2-1), '1', '\n')
		_, err = invoke(ctx, c, "Err-Endpoint", "text/csv", "", body[:6291456], "")
		if _, _, status := apiError(t, err); status != 424 {
			t.Errorf("6291456-byte body: status %d (%v), want 424 from the model", status, err)
		}
	})
	t.Run("malformed row", func(t *testing.T) {
		lines := strings.SplitAfter(string(sample), "\n")
		bad := lines[0] + lines[1] + "1,2,x\n"
		_, err := invoke(ctx, c, "Err-Endpoint", "text/csv", "", []byte(bad), "")
		expectAPIError(t, "malformed CSV", err, "ModelError", 424, "row 3")
		var me *rttypes.ModelError
		if !errors.As(err, &me) {
			t.Fatalf("error is %T, want *types.ModelError", err)
		}
		if aws.ToInt32(me.OriginalStatusCode) != 400 || !strings.Contains(aws.ToString(me.OriginalMessage), "row 3") {
			t.Errorf("ModelError: OriginalStatusCode %d, OriginalMessage %q", aws.ToInt32(me.OriginalStatusCode), aws.ToString(me.OriginalMessage))
		}
	})
	t.Run("corrupt model", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "xgboost-model")
		good := readFile(t, filepath.Join(modelDir, "xgboost-model"))
		if err := os.WriteFile(path, good[:len(good)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		createModel(t, c, "corrupt", "xgboost", "file://"+dir)
		createConfig(t, c, "corrupt", "corrupt", "AllTraffic", "ml.m5.large", 1)
		createEndpoint(t, c, "corrupt", "corrupt")
		w := sagemaker.NewEndpointInServiceWaiter(c.sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
			o.MinDelay, o.MaxDelay = 50*time.Millisecond, 250*time.Millisecond
		})
		if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("corrupt")}, 30*time.Second); err == nil {
			t.Fatal("EndpointInService waiter succeeded on a corrupt model")
		}
		d := describe(t, c, "corrupt")
		reason := aws.ToString(d.FailureReason)
		if d.EndpointStatus != smtypes.EndpointStatusFailed || !strings.Contains(reason, "xgboost-model") {
			t.Errorf("corrupt model: status %s, FailureReason %q (want Failed naming the file)", d.EndpointStatus, reason)
		}
		t.Logf("FailureReason: %s", reason)
		_, err := invoke(ctx, c, "corrupt", "text/csv", "", sample, "")
		expectAPIError(t, "invoke a Failed endpoint", err, "ValidationError", 400)
		// Another endpoint is unaffected.
		if _, err := invoke(ctx, c, "Err-Endpoint", "text/csv", "", sample, ""); err != nil {
			t.Errorf("healthy endpoint after a failed one: %v", err)
		}
		if d := describe(t, c, "Err-Endpoint"); d.EndpointStatus != smtypes.EndpointStatusInService {
			t.Errorf("healthy endpoint is %s", d.EndpointStatus)
		}
		// DeleteEndpoint is the one operation a Failed endpoint allows.
		_, err = c.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("corrupt"), EndpointConfigName: aws.String("Err-Endpoint")})
		expectAPIError(t, "UpdateEndpoint of a Failed endpoint", err, "ValidationException", 400)
		if _, err := c.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("corrupt")}); err != nil {
			t.Errorf("DeleteEndpoint of a Failed endpoint: %v", err)
		}
	})
	t.Run("unknown operation", func(t *testing.T) {
		_, err := c.sm.DescribeTrainingJob(ctx, &sagemaker.DescribeTrainingJobInput{TrainingJobName: aws.String("x")})
		code, _, status := apiError(t, err)
		if status != 400 || code == "" {
			t.Errorf("unsupported operation: %d %q (%v)", status, code, err)
		}
	})
}
