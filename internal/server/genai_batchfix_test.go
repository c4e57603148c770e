package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	btypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
)

// createJobOn is CreateModelInvocationJob of input on model.
func createJobOn(ctx context.Context, br *bedrock.Client, name, model, input, output string) (*bedrock.CreateModelInvocationJobOutput, error) {
	return br.CreateModelInvocationJob(ctx, &bedrock.CreateModelInvocationJobInput{
		JobName: aws.String(name), RoleArn: aws.String("arn:aws:iam::123456789012:role/batch"),
		ModelId:         aws.String(model),
		InputDataConfig: &btypes.ModelInvocationJobInputDataConfigMemberS3InputDataConfig{Value: btypes.ModelInvocationJobS3InputDataConfig{S3Uri: aws.String(input)}},
		OutputDataConfig: &btypes.ModelInvocationJobOutputDataConfigMemberS3OutputDataConfig{
			Value: btypes.ModelInvocationJobS3OutputDataConfig{S3Uri: aws.String(output)}},
	})
}

// batchOutLine is one line of a Bedrock batch output, modelOutput kept raw.
type batchOutLine struct {
	RecordID    string          `json:"recordId"`
	ModelOutput json.RawMessage `json:"modelOutput"`
	Error       *struct {
		ErrorCode    int    `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
	} `json:"error"`
}

// A batch job on a Titan-id or Mistral-id model takes that provider's
// InvokeModel body and writes its InvokeModel reply as modelOutput.
func TestGenAIBatchProviderBodies(t *testing.T) {
	t.Parallel()
	br, url := startBodies(t)
	c := newClients(url, "AKIDANY", "anysecret")
	bc := bedrockControl(t, url)
	ctx := context.Background()
	cases := []struct {
		model  string
		bodies []string
		bad    string // a body the provider's schema refuses
		badMsg string
	}{
		{titanID, []string{
			`{"inputText":"Once upon a time","textGenerationConfig":{"temperature":0,"maxTokenCount":30}}`,
			`{"inputText":"One day","textGenerationConfig":{"temperature":0,"maxTokenCount":12,"stopSequences":["."]}}`,
		}, `{"prompt":"Once upon a time","max_gen_len":5}`, "extraneous key [prompt]"},
		{mistralID, []string{
			`{"prompt":"<s>[INST] Once upon a time [/INST]","temperature":0,"max_tokens":30}`,
			`{"prompt":"One day","temperature":0,"max_tokens":12}`,
		}, `{"inputText":"Once upon a time"}`, "required key [prompt] not found"},
	}
	for i, tc := range cases {
		t.Run(tc.model, func(t *testing.T) {
			var in strings.Builder
			for k, b := range tc.bodies {
				fmt.Fprintf(&in, `{"recordId":"REC%08d","modelInput":%s}`+"\n", k+1, b)
			}
			fmt.Fprintf(&in, `{"recordId":"BAD00000001","modelInput":%s}`+"\n", tc.bad)
			key := fmt.Sprintf("in%d/records.jsonl", i)
			putBatchInput(t, c, "bodies", key, in.String())
			out, err := createJobOn(ctx, bc, fmt.Sprintf("bodies-%d", i), tc.model, "s3://bodies/"+key, "s3://bodies/out/")
			if err != nil {
				t.Fatalf("CreateModelInvocationJob: %v", err)
			}
			arn := aws.ToString(out.JobArn)
			got := waitJob(t, bc, arn, 60*time.Second, btypes.ModelInvocationJobStatusCompleted)
			if aws.ToInt64(got.SuccessRecordCount) != int64(len(tc.bodies)) || aws.ToInt64(got.ErrorRecordCount) != 1 {
				t.Errorf("counts success %d errors %d", aws.ToInt64(got.SuccessRecordCount), aws.ToInt64(got.ErrorRecordCount))
			}
			jobID := arn[strings.LastIndex(arn, "/")+1:]
			text := getObjectText(t, c, "bodies", "out/"+jobID+"/records.jsonl.out")
			if tc.model == mistralID && !strings.Contains(text, `"prompt":"<s>[INST] Once`) {
				t.Errorf("modelInput not echoed as written:\n%s", text)
			}
			lines := strings.Split(strings.TrimSpace(text), "\n")
			if len(lines) != len(tc.bodies)+1 {
				t.Fatalf("%d output lines:\n%s", len(lines), text)
			}
			for k, body := range tc.bodies {
				var l batchOutLine
				if err := json.Unmarshal([]byte(lines[k]), &l); err != nil {
					t.Fatalf("line %d: %v", k, err)
				}
				var fromBatch, fromInvoke map[string]any
				if err := json.Unmarshal(l.ModelOutput, &fromBatch); err != nil || l.Error != nil {
					t.Fatalf("line %d: %v %s", k, err, lines[k])
				}
				invokeJSON(t, br, tc.model, body, &fromInvoke)
				if !reflect.DeepEqual(fromBatch, fromInvoke) {
					t.Errorf("record %d modelOutput\n%v\nInvokeModel returns\n%v", k, fromBatch, fromInvoke)
				}
			}
			var bad batchOutLine
			if err := json.Unmarshal([]byte(lines[len(tc.bodies)]), &bad); err != nil {
				t.Fatal(err)
			}
			if bad.Error == nil || bad.Error.ErrorCode != 400 || !strings.Contains(bad.Error.ErrorMessage, tc.badMsg) || bad.ModelOutput != nil {
				t.Errorf("bad record: %s", lines[len(tc.bodies)])
			}
		})
	}
}
