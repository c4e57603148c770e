package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	bdtypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/inferbox/inferbox/internal/config"
)

func bedrockControl(t *testing.T, url string) *bedrock.Client {
	t.Helper()
	c := newClients(url, "AKIDANY", "anysecret")
	return bedrock.NewFromConfig(c.cfg, func(o *bedrock.Options) {
		o.BaseEndpoint = aws.String(url)
		o.RetryMaxAttempts = 1
	})
}

// waitPTInService polls GetProvisionedModelThroughput until the status
// leaves Creating (the SDK has no waiter for it).
func waitPTInService(t *testing.T, bc *bedrock.Client, arn string) *bedrock.GetProvisionedModelThroughputOutput {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := bc.GetProvisionedModelThroughput(context.Background(), &bedrock.GetProvisionedModelThroughputInput{ProvisionedModelId: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != bdtypes.ProvisionedModelStatusCreating {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still Creating", arn)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func converseOnce(ctx context.Context, br *bedrockruntime.Client, model string, maxTokens int32) (*bedrockruntime.ConverseOutput, error) {
	return br.Converse(ctx, &bedrockruntime.ConverseInput{
		ModelId: aws.String(model),
		Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser,
			Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "Once upon a time"}}}},
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(maxTokens), Temperature: aws.Float32(0)},
	})
}

func TestGenAIProvisionedThroughput(t *testing.T) {
	var data string
	br, url, _, stop := startGenAI(t, func(cfg *config.Config) { data = cfg.Data })
	bc := bedrockControl(t, url)
	ctx := context.Background()

	created, err := bc.CreateProvisionedModelThroughput(ctx, &bedrock.CreateProvisionedModelThroughputInput{
		ModelUnits: aws.Int32(1), ProvisionedModelName: aws.String("stories-pt"),
		ModelId: aws.String("meta.stories260k"), CommitmentDuration: bdtypes.CommitmentDurationOneMonth,
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := *created.ProvisionedModelArn
	if !strings.HasPrefix(arn, "arn:aws:bedrock:") || !strings.Contains(arn, ":provisioned-model/") {
		t.Fatalf("arn %q", arn)
	}
	got := waitPTInService(t, bc, arn)
	if got.Status != bdtypes.ProvisionedModelStatusInService || *got.ModelUnits != 1 || *got.ProvisionedModelName != "stories-pt" ||
		got.CommitmentDuration != bdtypes.CommitmentDurationOneMonth || got.CommitmentExpirationTime == nil ||
		!strings.HasSuffix(*got.FoundationModelArn, "foundation-model/meta.stories260k") {
		t.Fatalf("get: %+v", got)
	}

	// A second, no-commitment throughput.
	nc, err := bc.CreateProvisionedModelThroughput(ctx, &bedrock.CreateProvisionedModelThroughputInput{
		ModelUnits: aws.Int32(1), ProvisionedModelName: aws.String("no-commit"), ModelId: aws.String("meta.stories260k"),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitPTInService(t, bc, *nc.ProvisionedModelArn)

	// Bad input.
	_, err = bc.CreateProvisionedModelThroughput(ctx, &bedrock.CreateProvisionedModelThroughputInput{
		ModelUnits: aws.Int32(1), ProvisionedModelName: aws.String("STORIES-PT"), ModelId: aws.String("meta.stories260k"),
	})
	if apiCode(err) != "ConflictException" {
		t.Errorf("duplicate name: %v", err)
	}
	_, err = bc.CreateProvisionedModelThroughput(ctx, &bedrock.CreateProvisionedModelThroughputInput{
		ModelUnits: aws.Int32(1), ProvisionedModelName: aws.String("x"), ModelId: aws.String("meta.nope"),
	})
	if apiCode(err) != "ValidationException" {
		t.Errorf("unknown model: %v", err)
	}
	_, err = bc.GetProvisionedModelThroughput(ctx, &bedrock.GetProvisionedModelThroughputInput{ProvisionedModelId: aws.String("zzzzzzzzzzzz")})
	if apiCode(err) != "ResourceNotFoundException" {
		t.Errorf("missing: %v", err)
	}

	list, err := bc.ListProvisionedModelThroughputs(ctx, &bedrock.ListProvisionedModelThroughputsInput{SortOrder: bdtypes.SortOrderAscending})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.ProvisionedModelSummaries) != 2 || *list.ProvisionedModelSummaries[0].ProvisionedModelName != "stories-pt" {
		t.Fatalf("list: %+v", list.ProvisionedModelSummaries)
	}

	if _, err := bc.UpdateProvisionedModelThroughput(ctx, &bedrock.UpdateProvisionedModelThroughputInput{
		ProvisionedModelId: aws.String(arn), DesiredProvisionedModelName: aws.String("stories-pt-2"),
	}); err != nil {
		t.Fatal(err)
	}

	// Converse through the provisioned ARN: the reference continuation.
	out, err := converseOnce(ctx, br, arn, 40)
	if err != nil {
		t.Fatal(err)
	}
	text := out.Output.(*brtypes.ConverseOutputMemberMessage).Value.Content[0].(*brtypes.ContentBlockMemberText).Value
	if !strings.HasPrefix(storiesRef, "Once upon a time"+text) || *out.Usage.OutputTokens != 40 {
		t.Fatalf("through the provisioned model: %q, %+v", text, out.Usage)
	}

	// Under a one-month commitment, delete is refused; without one it works.
	_, err = bc.DeleteProvisionedModelThroughput(ctx, &bedrock.DeleteProvisionedModelThroughputInput{ProvisionedModelId: aws.String(arn)})
	if apiCode(err) != "ValidationException" || !strings.Contains(err.Error(), "before the commitment term is over") {
		t.Fatalf("delete under commitment: %v", err)
	}
	if _, err := bc.DeleteProvisionedModelThroughput(ctx, &bedrock.DeleteProvisionedModelThroughputInput{ProvisionedModelId: nc.ProvisionedModelArn}); err != nil {
		t.Fatal(err)
	}
	if _, err := converseOnce(ctx, br, *nc.ProvisionedModelArn, 4); apiCode(err) != "ValidationException" {
		t.Fatalf("invoking a deleted provisioned model: %v", err)
	}

	// Restart: the committed throughput comes back, renamed, and serves.
	stop()
	br, url, _, stop = startGenAI(t, func(cfg *config.Config) { cfg.Data = data })
	defer stop()
	bc = bedrockControl(t, url)
	got = waitPTInService(t, bc, arn)
	if got.Status != bdtypes.ProvisionedModelStatusInService || *got.ProvisionedModelName != "stories-pt-2" {
		t.Fatalf("after restart: %+v", got)
	}
	list, err = bc.ListProvisionedModelThroughputs(ctx, &bedrock.ListProvisionedModelThroughputsInput{})
	if err != nil || len(list.ProvisionedModelSummaries) != 1 {
		t.Fatalf("after restart, list: %v %+v", err, list)
	}
	if _, err := converseOnce(ctx, br, arn, 8); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// On-demand quotas: maxTokens is reserved up front, so a second request
// within the minute is refused with ThrottlingException (429) on Bedrock
// and rate_limit_exceeded on the OpenAI API; provisioned traffic is not
// subject to them.
func TestGenAIQuotaThrottling(t *testing.T) {
	br, url, _, stop := startGenAI(t, func(cfg *config.Config) {
		cfg.GenAI.Quotas = config.GenAIQuotas{GenAIQuota: config.GenAIQuota{RequestsPerMinute: 100, TokensPerMinute: 150}}
	})
	defer stop()
	ctx := context.Background()
	noRetry := func(o *bedrockruntime.Options) { o.RetryMaxAttempts = 1 }

	if _, err := converseOnce(ctx, br, "meta.stories260k", 100); err != nil {
		t.Fatal(err)
	}
	// 100 reserved again, but only ~150 - (prompt + 100 used) left.
	_, err := br.Converse(ctx, &bedrockruntime.ConverseInput{
		ModelId: aws.String("meta.stories260k"),
		Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser,
			Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "Once upon a time"}}}},
		InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(100)},
	}, noRetry)
	var he interface{ HTTPStatusCode() int }
	if apiCode(err) != "ThrottlingException" || !errors.As(err, &he) || he.HTTPStatusCode() != http.StatusTooManyRequests ||
		!strings.Contains(err.Error(), "Too many tokens") {
		t.Fatalf("over the token quota: %v", err)
	}

	// The same caller on the OpenAI API shares the model's quota.
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(
		`{"model":"meta.stories260k","max_tokens":100,"messages":[{"role":"user","content":"Once upon a time"}]}`))
	req.Header.Set("Authorization", "Bearer AKIDANY:anysecret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	_, _ = io.Copy(&body, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body.String(), "rate_limit_exceeded") {
		t.Fatalf("openai over quota: %d %s", resp.StatusCode, body.String())
	}

	// A provisioned throughput is not subject to the on-demand quota.
	bc := bedrockControl(t, url)
	created, err := bc.CreateProvisionedModelThroughput(ctx, &bedrock.CreateProvisionedModelThroughputInput{
		ModelUnits: aws.Int32(1), ProvisionedModelName: aws.String("q"), ModelId: aws.String("meta.stories260k"),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitPTInService(t, bc, *created.ProvisionedModelArn)
	if _, err := converseOnce(ctx, br, *created.ProvisionedModelArn, 100); err != nil {
		t.Fatalf("provisioned while on-demand is throttled: %v", err)
	}
}
