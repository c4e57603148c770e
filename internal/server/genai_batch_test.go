package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	btypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/inferbox/inferbox/internal/config"
)

func bedrockClient(c clients) *bedrock.Client {
	return bedrock.NewFromConfig(c.cfg, func(o *bedrock.Options) { o.BaseEndpoint = aws.String(c.url) })
}

// putBatchInput creates bucket (if needed) and uploads body as key.
func putBatchInput(t *testing.T, c clients, bucket, key, body string) {
	t.Helper()
	ctx := context.Background()
	cl := s3Client(c)
	_, _ = cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func getObjectText(t *testing.T, c clients, bucket, key string) string {
	t.Helper()
	out, err := s3Client(c).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func createJob(t *testing.T, br *bedrock.Client, name, input, output string) string {
	t.Helper()
	out, err := br.CreateModelInvocationJob(context.Background(), &bedrock.CreateModelInvocationJobInput{
		JobName: aws.String(name), RoleArn: aws.String("arn:aws:iam::123456789012:role/batch"),
		ModelId:         aws.String("meta.stories260k"),
		InputDataConfig: &btypes.ModelInvocationJobInputDataConfigMemberS3InputDataConfig{Value: btypes.ModelInvocationJobS3InputDataConfig{S3Uri: aws.String(input)}},
		OutputDataConfig: &btypes.ModelInvocationJobOutputDataConfigMemberS3OutputDataConfig{
			Value: btypes.ModelInvocationJobS3OutputDataConfig{S3Uri: aws.String(output)}},
		TimeoutDurationInHours: aws.Int32(24),
	})
	if err != nil {
		t.Fatalf("CreateModelInvocationJob: %v", err)
	}
	return aws.ToString(out.JobArn)
}

func waitJob(t *testing.T, br *bedrock.Client, arn string, within time.Duration, want ...btypes.ModelInvocationJobStatus) *bedrock.GetModelInvocationJobOutput {
	t.Helper()
	var got *bedrock.GetModelInvocationJobOutput
	waitFor(t, within, "job "+arn+" in "+fmt.Sprint(want), func() (bool, string) {
		out, err := br.GetModelInvocationJob(context.Background(), &bedrock.GetModelInvocationJobInput{JobIdentifier: aws.String(arn)})
		if err != nil {
			return false, err.Error()
		}
		got = out
		for _, w := range want {
			if out.Status == w {
				return true, ""
			}
		}
		return false, string(out.Status) + " " + aws.ToString(out.Message)
	})
	return got
}

// bigInput is n records asking for many tokens each.
func bigInput(n, tokens int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"recordId":"BIG%08d","modelInput":{"prompt":"Once upon a time","temperature":0.8,"max_gen_len":%d}}`+"\n", i, tokens)
	}
	return b.String()
}

func TestGenAIBatchBedrock(t *testing.T) {
	t.Parallel()
	model := storiesPath(t)
	var data string
	c, _, stop := start(t, func(cfg *config.Config) {
		cfg.FoundationModels = []config.FoundationModel{{ID: "meta.stories260k", Path: model, ChatFormat: "raw"}}
		cfg.Auth.AccessKeys = map[string]string{"AKIDANY": "anysecret"}
		data = cfg.Data
	})
	br := bedrockClient(c)
	ctx := context.Background()
	input := strings.Join([]string{
		`{"recordId":"REC00000001","modelInput":{"prompt":"Once upon a time","temperature":0,"max_gen_len":40}}`,
		`{"recordId":"REC00000002","modelInput":{"prompt":"Once upon a time","temperature":0,"max_gen_len":10}}`,
		`{"recordId":"REC00000003", this is not json`,
		`{"recordId":"REC00000004","modelInput":{"prompt":"Once upon a time","temperature":7}}`,
		`{"modelInput":{"prompt":"Once upon a time","temperature":0,"max_gen_len":5}}`,
	}, "\n") + "\n"
	putBatchInput(t, c, "batch", "in/records.jsonl", input)

	arn := createJob(t, br, "job-one", "s3://batch/in/records.jsonl", "s3://batch/out/")
	if !strings.HasPrefix(arn, "arn:aws:bedrock:us-east-1:") || !strings.Contains(arn, ":model-invocation-job/") {
		t.Fatalf("jobArn %q", arn)
	}
	jobID := arn[strings.LastIndex(arn, "/")+1:]
	got := waitJob(t, br, arn, 60*time.Second, btypes.ModelInvocationJobStatusCompleted)
	if aws.ToInt64(got.TotalRecordCount) != 5 || aws.ToInt64(got.ProcessedRecordCount) != 5 ||
		aws.ToInt64(got.SuccessRecordCount) != 3 || aws.ToInt64(got.ErrorRecordCount) != 2 {
		t.Errorf("counts total %d processed %d success %d errors %d", aws.ToInt64(got.TotalRecordCount),
			aws.ToInt64(got.ProcessedRecordCount), aws.ToInt64(got.SuccessRecordCount), aws.ToInt64(got.ErrorRecordCount))
	}
	if aws.ToString(got.JobName) != "job-one" || got.EndTime == nil || got.SubmitTime == nil ||
		aws.ToString(got.ModelId) != "meta.stories260k" {
		t.Errorf("job %+v", got)
	}

	// Outputs: one line per record, joined on recordId.
	out := getObjectText(t, c, "batch", "out/"+jobID+"/records.jsonl.out")
	type line struct {
		RecordID    string          `json:"recordId"`
		ModelInput  json.RawMessage `json:"modelInput"`
		ModelOutput *struct {
			Generation           string `json:"generation"`
			PromptTokenCount     int    `json:"prompt_token_count"`
			GenerationTokenCount int    `json:"generation_token_count"`
			StopReason           string `json:"stop_reason"`
		} `json:"modelOutput"`
		Error *struct {
			ErrorCode    int    `json:"errorCode"`
			ErrorMessage string `json:"errorMessage"`
		} `json:"error"`
	}
	byID := map[string]line{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		byID[l.RecordID] = l
	}
	if len(byID) != 5 {
		t.Fatalf("output has %d records, want 5:\n%s", len(byID), out)
	}
	r1 := byID["REC00000001"]
	if r1.ModelOutput == nil || !strings.HasPrefix(storiesRef, "Once upon a time"+r1.ModelOutput.Generation) ||
		len(r1.ModelOutput.Generation) < 60 || r1.ModelOutput.GenerationTokenCount != 40 || r1.ModelOutput.StopReason != "length" {
		t.Errorf("record 1: %+v", r1.ModelOutput)
	}
	if !strings.Contains(string(r1.ModelInput), `"max_gen_len":40`) {
		t.Errorf("record 1 modelInput %s", r1.ModelInput)
	}
	if r := byID["REC00000002"]; r.ModelOutput == nil || r.ModelOutput.GenerationTokenCount != 10 {
		t.Errorf("record 2: %+v", r.ModelOutput)
	}
	var malformed, outOfRange int
	for _, l := range byID {
		if l.Error != nil && l.Error.ErrorCode == 400 {
			if strings.Contains(l.Error.ErrorMessage, "temperature") {
				outOfRange++
			} else {
				malformed++
			}
		}
	}
	if malformed != 1 || outOfRange != 1 {
		t.Errorf("errors: %d malformed, %d out of range:\n%s", malformed, outOfRange, out)
	}

	var manifest map[string]int
	if err := json.Unmarshal([]byte(getObjectText(t, c, "batch", "out/"+jobID+"/manifest.json.out")), &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest["totalRecordCount"] != 5 || manifest["errorRecordCount"] != 2 || manifest["successRecordCount"] != 3 ||
		manifest["outputTokenCount"] != 55 || manifest["inputTokenCount"] <= 0 {
		t.Errorf("manifest %v", manifest)
	}

	// Stop: a large job stops with what it processed.
	putBatchInput(t, c, "batch", "big/big.jsonl", bigInput(200, 400))
	bigArn := createJob(t, br, "job-big", "s3://batch/big/big.jsonl", "s3://batch/out")
	if _, err := br.StopModelInvocationJob(ctx, &bedrock.StopModelInvocationJobInput{JobIdentifier: aws.String(bigArn)}); err != nil {
		t.Fatalf("StopModelInvocationJob: %v", err)
	}
	big := waitJob(t, br, bigArn, 60*time.Second, btypes.ModelInvocationJobStatusStopped)
	if aws.ToInt64(big.ProcessedRecordCount) >= 200 {
		t.Errorf("stopped job processed %d of 200", aws.ToInt64(big.ProcessedRecordCount))
	}
	_, err := br.StopModelInvocationJob(ctx, &bedrock.StopModelInvocationJobInput{JobIdentifier: aws.String(bigArn)})
	expectAPIError(t, "stop a stopped job", err, "ValidationException", 400)
	_, err = br.GetModelInvocationJob(ctx, &bedrock.GetModelInvocationJobInput{JobIdentifier: aws.String("nosuchjob000")})
	expectAPIError(t, "get an unknown job", err, "ResourceNotFoundException", 400)

	list, err := br.ListModelInvocationJobs(ctx, &bedrock.ListModelInvocationJobsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.InvocationJobSummaries) != 2 || aws.ToString(list.InvocationJobSummaries[0].JobArn) != bigArn {
		t.Errorf("list: %d jobs", len(list.InvocationJobSummaries))
	}
	list, err = br.ListModelInvocationJobs(ctx, &bedrock.ListModelInvocationJobsInput{StatusEquals: btypes.ModelInvocationJobStatusCompleted})
	if err != nil || len(list.InvocationJobSummaries) != 1 || aws.ToString(list.InvocationJobSummaries[0].JobName) != "job-one" {
		t.Errorf("list Completed: %v %v", list, err)
	}
	_, err = br.CreateModelInvocationJob(ctx, &bedrock.CreateModelInvocationJobInput{
		JobName: aws.String("bad"), RoleArn: aws.String("r"), ModelId: aws.String("no.such.model"),
		InputDataConfig:  &btypes.ModelInvocationJobInputDataConfigMemberS3InputDataConfig{Value: btypes.ModelInvocationJobS3InputDataConfig{S3Uri: aws.String("s3://batch/in/records.jsonl")}},
		OutputDataConfig: &btypes.ModelInvocationJobOutputDataConfigMemberS3OutputDataConfig{Value: btypes.ModelInvocationJobS3OutputDataConfig{S3Uri: aws.String("s3://batch/out/")}},
	})
	expectAPIError(t, "unknown model", err, "ValidationException", 400)

	stop()
	var batchRows, batchOut int
	for _, inv := range readLedger(t, data) {
		if inv.Mode == "bedrock-batch" && inv.Resource == "meta.stories260k" {
			batchRows++
			batchOut += inv.OutputTokens
		}
	}
	if batchRows < 3 || batchOut < 55 {
		t.Errorf("ledger: %d bedrock-batch rows, %d output tokens", batchRows, batchOut)
	}
}

// A job running when the server stops runs again at the next start.
func TestGenAIBatchRestart(t *testing.T) {
	t.Parallel()
	mutate := storiesOn(t, t.TempDir(), false)
	c, _, stop := start(t, mutate)
	br := bedrockClient(c)
	putBatchInput(t, c, "batch", "in/big.jsonl", bigInput(60, 150))
	arn := createJob(t, br, "survivor", "s3://batch/in/big.jsonl", "s3://batch/out/")
	waitJob(t, br, arn, 60*time.Second, btypes.ModelInvocationJobStatusInProgress)
	stop()

	c, _, stop = start(t, mutate)
	defer stop()
	br = bedrockClient(c)
	got := waitJob(t, br, arn, 120*time.Second, btypes.ModelInvocationJobStatusCompleted)
	if aws.ToInt64(got.SuccessRecordCount) != 60 || aws.ToInt64(got.ProcessedRecordCount) != 60 {
		t.Errorf("resumed job: %d processed, %d succeeded", aws.ToInt64(got.ProcessedRecordCount), aws.ToInt64(got.SuccessRecordCount))
	}
	jobID := arn[strings.LastIndex(arn, "/")+1:]
	out := getObjectText(t, c, "batch", "out/"+jobID+"/big.jsonl.out")
	if n := strings.Count(out, "\n"); n != 60 {
		t.Errorf("output has %d lines, want 60", n)
	}
}
