package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/server"
)

// `serve --examples` deploys the example XGBoost and LLM endpoints and
// registers the demo LLM as a foundation model, so every API has something
// to answer on a fresh machine; a restart on the same data keeps them.
func TestExamples(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	mutate := func(cfg *config.Config) { cfg.Examples, cfg.Data = true, data }
	for round := range 2 {
		c, url, stop := start(t, mutate)
		waitInService(t, c, server.ExampleEndpoint)
		waitInService(t, c, server.ExampleLLMEndpoint)
		out, err := c.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
			EndpointName: aws.String(server.ExampleLLMEndpoint), ContentType: aws.String("application/json"),
			Body: []byte(`{"inputs":"In the beginning","parameters":{"max_new_tokens":8,"temperature":0}}`)})
		if err != nil {
			t.Fatalf("round %d: invoke %s: %v", round, server.ExampleLLMEndpoint, err)
		}
		var gen []struct {
			GeneratedText string `json:"generated_text"`
		}
		if err := json.Unmarshal(out.Body, &gen); err != nil || len(gen) != 1 || gen[0].GeneratedText == "" {
			t.Fatalf("round %d: example-llm answered %s (%v)", round, out.Body, err)
		}

		br := bedrockruntime.NewFromConfig(c.cfg, func(o *bedrockruntime.Options) { o.BaseEndpoint = aws.String(url) })
		conv, err := br.Converse(ctx, &bedrockruntime.ConverseInput{
			ModelId: aws.String(server.ExampleFoundationModel),
			Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser,
				Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "In the beginning"}}}},
			InferenceConfig: &brtypes.InferenceConfiguration{MaxTokens: aws.Int32(8), Temperature: aws.Float32(0)},
		})
		if err != nil {
			t.Fatalf("round %d: converse %s: %v", round, server.ExampleFoundationModel, err)
		}
		if *conv.Usage.OutputTokens != 8 || conv.StopReason != brtypes.StopReasonMaxTokens {
			t.Errorf("round %d: converse usage %+v stop %s", round, conv.Usage, conv.StopReason)
		}

		req, _ := http.NewRequest(http.MethodGet, url+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer anysecret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Count(string(body), `"id":"`+server.ExampleFoundationModel+`"`) != 1 {
			t.Errorf("round %d: /v1/models: %d %s", round, resp.StatusCode, body)
		}
		stop()
	}
}
