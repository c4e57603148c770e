package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	btypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/openai/openai-go/v3"

	"github.com/inferbox/inferbox/internal/catalog"
	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/genai"
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

// completionText is a greedy /v1/completions on model.
func completionText(ctx context.Context, oc openai.Client, model string) (string, error) {
	res, err := oc.Completions.New(ctx, openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(model),
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		Temperature: openai.Float(0), MaxTokens: openai.Int(24)})
	if err != nil {
		return "", err
	}
	return res.Choices[0].Text, nil
}

// Custom models and provisioned throughputs outside InvokeModel/Converse:
// a batch job refuses both (an imported model as on demand, a provisioned
// throughput as unsupported for batch); the OpenAI API refuses an imported
// model with Bedrock's on-demand message and serves a provisioned
// throughput named by its ARN, except in a batch.
func TestGenAICustomModelRouting(t *testing.T) {
	model := storiesPath(t)
	var data string
	_, url, _, stop := startGenAI(t, func(cfg *config.Config) { data = cfg.Data })
	ctx := context.Background()
	bc := bedrockControl(t, url)
	c := newClients(url, "AKIDANY", "anysecret")
	oc := oaiClient(url)
	weights, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3Client(c)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("custom/stories.gguf"),
		Body: bytes.NewReader(weights)}); err != nil {
		t.Fatal(err)
	}
	created, err := importJob(ctx, bc, "import-routing", "my-stories", "s3://models/custom/")
	if err != nil {
		t.Fatal(err)
	}
	job := waitImportJob(t, bc, *created.JobArn)
	if job.ImportedModelArn == nil {
		t.Fatalf("import job %+v", job)
	}
	modelArn := *job.ImportedModelArn
	pt, err := bc.CreateProvisionedModelThroughput(ctx, &bedrock.CreateProvisionedModelThroughputInput{
		ModelUnits: aws.Int32(1), ProvisionedModelName: aws.String("custom-pt"), ModelId: aws.String(modelArn)})
	if err != nil {
		t.Fatal(err)
	}
	ptArn := *pt.ProvisionedModelArn
	waitPTInService(t, bc, ptArn)

	putBatchInput(t, c, "routing", "in/records.jsonl",
		`{"recordId":"REC00000001","modelInput":{"prompt":"Once upon a time","max_gen_len":4}}`+"\n")
	for _, ref := range []string{"my-stories", modelArn} {
		_, err := createJobOn(ctx, bc, "custom-batch", ref, "s3://routing/in/records.jsonl", "s3://routing/out/")
		expectAPIError(t, "batch job on imported "+ref, err, "ValidationException", 400)
		if _, msg, _ := apiError(t, err); msg != genai.OnDemandCustomMessage {
			t.Errorf("batch job on %s: message %q, want %q", ref, msg, genai.OnDemandCustomMessage)
		}
	}
	_, err = createJobOn(ctx, bc, "pt-batch", ptArn, "s3://routing/in/records.jsonl", "s3://routing/out/")
	expectAPIError(t, "batch job on a provisioned throughput", err, "ValidationException", 400, "provisioned throughput")
	_, err = createJobOn(ctx, bc, "unknown-batch", "meta.nope", "s3://routing/in/records.jsonl", "s3://routing/out/")
	expectAPIError(t, "batch job on an unknown model", err, "ValidationException", 400, "The provided model identifier is invalid.")
	if list, err := bc.ListModelInvocationJobs(ctx, &bedrock.ListModelInvocationJobsInput{}); err != nil || len(list.InvocationJobSummaries) != 0 {
		t.Errorf("refused jobs were stored: %+v %v", list, err)
	}

	// OpenAI: the imported model is refused by name and by ARN, on both endpoints.
	for _, ref := range []string{"my-stories", modelArn} {
		_, err := completionText(ctx, oc, ref)
		expectOAIError(t, "completion on imported "+ref, err, 400, "model", "")
		var e *openai.Error
		if errors.As(err, &e) && e.Message != genai.OnDemandCustomMessage {
			t.Errorf("completion on %s: message %q", ref, e.Message)
		}
		_, err = oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: ref,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Once upon a time")}})
		expectOAIError(t, "chat on imported "+ref, err, 400, "model", "")
	}
	_, err = completionText(ctx, oc, "meta.nope")
	expectOAIError(t, "unknown model", err, 404, "model", "model_not_found")

	// Through its provisioned throughput's ARN the imported model serves:
	// the same greedy text as the foundation model on the same weights.
	want, err := completionText(ctx, oc, "meta.stories260k")
	if err != nil || want == "" {
		t.Fatalf("foundation model: %q %v", want, err)
	}
	got, err := completionText(ctx, oc, ptArn)
	if err != nil || got != want {
		t.Fatalf("through %s: %q %v; foundation model %q", ptArn, got, err, want)
	}
	chat, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: ptArn, MaxCompletionTokens: openai.Int(8),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Once upon a time")}})
	if err != nil || chat.Usage.CompletionTokens == 0 {
		t.Fatalf("chat through %s: %+v %v", ptArn, chat, err)
	}
	_, err = completionText(ctx, oc, ptArn[:strings.LastIndex(ptArn, "/")+1]+"nosuchptxxxx")
	expectOAIError(t, "unknown provisioned throughput", err, 404, "model", "model_not_found")

	// In an OpenAI batch, a line naming the provisioned throughput fails
	// with the batch message; the imported model with the on-demand one.
	line := func(id, model string) string {
		b, _ := json.Marshal(map[string]any{"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
			"body": map[string]any{"model": model, "max_completion_tokens": 4,
				"messages": []map[string]string{{"role": "user", "content": "Once upon a time"}}}})
		return string(b)
	}
	f := uploadBatch(t, oc, "routing.jsonl", line("pt", ptArn)+"\n"+line("custom", "my-stories")+"\n"+line("fm", oaiModel)+"\n")
	b := newBatch(t, oc, f.ID)
	b = waitBatch(t, oc, b.ID, 60*time.Second, statusIs(openai.BatchStatusCompleted))
	if b.RequestCounts.Completed != 1 || b.RequestCounts.Failed != 2 {
		t.Errorf("batch counts %+v", b.RequestCounts)
	}
	msgs := map[string]string{}
	for _, l := range outLines(t, fileText(t, oc, b.ErrorFileID)) {
		if l.CustomID != nil && l.Error != nil {
			msgs[*l.CustomID] = l.Error.Message
		}
	}
	if msgs["pt"] != genai.BatchProvisionedMessage || msgs["custom"] != genai.OnDemandCustomMessage {
		t.Errorf("batch line errors %q", msgs)
	}

	stop()
	var ptRows int
	for _, inv := range readLedger(t, data) {
		if inv.Mode == genai.ModeProvisioned && inv.Variant == "openai" {
			ptRows++
		}
	}
	if ptRows != 2 {
		t.Errorf("ledger: %d provisioned rows from the OpenAI API, want 2", ptRows)
	}
}

// A large batch input is streamed: while the job runs, the server's live
// heap grows by far less than the input (the old runner held every line
// and every output). The server runs in this process, so the test reads
// the heap directly: live bytes after a forced collection, sampled until
// the job ends.
func TestGenAIBatchLargeInputMemory(t *testing.T) {
	const records = 20000
	c, _, _ := start(t, func(cfg *config.Config) {
		cfg.FoundationModels = []config.FoundationModel{{ID: "meta.stories260k", Path: storiesPath(t), ChatFormat: "raw"}}
		cfg.Auth.AccessKeys = map[string]string{"AKIDANY": "anysecret"}
		// Batch records count against the on-demand quota (genai.Generate):
		// unlimited here, so that none is throttled.
		cfg.GenAI.Quotas.RequestsPerMinute, cfg.GenAI.Quotas.TokensPerMinute = 0, 0
	})
	br := bedrockClient(c)
	ctx := context.Background()
	// Short records (one token each) made long by their recordId, so that
	// the input is large and the job quick.
	pad := strings.Repeat("x", 1500)
	var in strings.Builder
	for i := range records {
		fmt.Fprintf(&in, `{"recordId":"R%08d-%s","modelInput":{"prompt":"Once","temperature":0,"max_gen_len":1}}`+"\n", i, pad)
	}
	size := in.Len()
	putBatchInput(t, c, "large", "in/large.jsonl", in.String())
	in = strings.Builder{}

	live := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	// A small job first, so that what any job sets up once (the model's
	// instances, the SDK's and encoders' caches, the ledger's buffer) is
	// in the baseline.
	putBatchInput(t, c, "large", "warm/warm.jsonl", bigInput(64, 1))
	waitJob(t, br, createJob(t, br, "warm", "s3://large/warm/warm.jsonl", "s3://large/out/"), 60*time.Second, btypes.ModelInvocationJobStatusCompleted)
	base := live()
	arn := createJob(t, br, "large", "s3://large/in/large.jsonl", "s3://large/out/")
	var peak uint64
	var status btypes.ModelInvocationJobStatus
	waitFor(t, 120*time.Second, "the large job completes", func() (bool, string) {
		peak = max(peak, live())
		out, err := br.GetModelInvocationJob(ctx, &bedrock.GetModelInvocationJobInput{JobIdentifier: aws.String(arn)})
		if err != nil {
			return false, err.Error()
		}
		status = out.Status
		return catalogTerminal(out.Status), fmt.Sprintf("%s, %d processed", out.Status, aws.ToInt64(out.ProcessedRecordCount))
	})
	growth := int64(peak) - int64(base)
	t.Logf("input %d bytes (%d records); live heap %d before the job, peak %d during it: +%d bytes", size, records, base, peak, growth)
	if status != btypes.ModelInvocationJobStatusCompleted {
		t.Fatalf("job %s", status)
	}
	if growth >= int64(size/2) {
		t.Errorf("live heap grew by %d bytes during a job on a %d-byte input; want < %d", growth, size, size/2)
	}

	jobID := arn[strings.LastIndex(arn, "/")+1:]
	out := getObjectText(t, c, "large", "out/"+jobID+"/large.jsonl.out")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != records {
		t.Fatalf("%d output lines, want %d", len(lines), records)
	}
	for i, l := range lines {
		var o batchOutLine
		if err := json.Unmarshal([]byte(l), &o); err != nil || o.RecordID != fmt.Sprintf("R%08d-%s", i, pad) || o.Error != nil || len(o.ModelOutput) == 0 {
			t.Fatalf("output line %d out of order or failed: %.30s…%s (%v)", i, l, l[max(0, len(l)-200):], err)
		}
	}
}

// catalogTerminal is whether a job status is final.
func catalogTerminal(s btypes.ModelInvocationJobStatus) bool {
	switch s {
	case btypes.ModelInvocationJobStatusCompleted, btypes.ModelInvocationJobStatusFailed, btypes.ModelInvocationJobStatusStopped,
		btypes.ModelInvocationJobStatusPartiallyCompleted, btypes.ModelInvocationJobStatusExpired:
		return true
	}
	return false
}

// markStopping sets a stopped server's job to Stopping in its catalog, as
// if StopModelInvocationJob (or an OpenAI cancel) had been answered just
// before the server went down, before the job wrote its outputs.
func markStopping(t *testing.T, data, jobID string) {
	t.Helper()
	ctx := context.Background()
	st, err := catalog.Open(ctx, filepath.Join(data, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	j, err := st.GetModelJob(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != catalog.ModelJobInProgress {
		t.Fatalf("job %s is %s at shutdown, want InProgress", jobID, j.Status)
	}
	j.Status = catalog.ModelJobStopping
	if err := st.PutModelJob(ctx, j); err != nil {
		t.Fatal(err)
	}
}

// A job that was stopping when the server went down ends at the next start
// with the outputs of the records it had finished, and runs no other.
func TestGenAIBatchStoppingAtRestart(t *testing.T) {
	data := t.TempDir()
	mutate := storiesOn(t, data, true)
	const n = 60
	t.Run("bedrock", func(t *testing.T) {
		c, _, stop := start(t, mutate)
		br := bedrockClient(c)
		var in strings.Builder
		for i := range n {
			fmt.Fprintf(&in, `{"recordId":"S%010d","modelInput":{"prompt":"Once upon a time","temperature":0,"max_gen_len":300}}`+"\n", i)
		}
		putBatchInput(t, c, "stopping", "in/stop.jsonl", in.String())
		arn := createJob(t, br, "stopping", "s3://stopping/in/stop.jsonl", "s3://stopping/out/")
		waitFor(t, 60*time.Second, "8 records processed", func() (bool, string) {
			got := waitJob(t, br, arn, 10*time.Second, btypes.ModelInvocationJobStatusInProgress)
			return aws.ToInt64(got.ProcessedRecordCount) >= 8, fmt.Sprint(aws.ToInt64(got.ProcessedRecordCount))
		})
		stop()
		jobID := arn[strings.LastIndex(arn, "/")+1:]
		markStopping(t, data, jobID)
		restart := time.Now()

		c, _, stop = start(t, mutate)
		br = bedrockClient(c)
		got := waitJob(t, br, arn, 60*time.Second, btypes.ModelInvocationJobStatusStopped)
		processed := aws.ToInt64(got.ProcessedRecordCount)
		if processed < 8 || processed >= n || aws.ToInt64(got.SuccessRecordCount) != processed || aws.ToInt64(got.TotalRecordCount) != n {
			t.Errorf("stopped job: total %d processed %d success %d", aws.ToInt64(got.TotalRecordCount), processed, aws.ToInt64(got.SuccessRecordCount))
		}
		out := getObjectText(t, c, "stopping", "out/"+jobID+"/stop.jsonl.out")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if int64(len(lines)) != processed {
			t.Fatalf("%d output lines, %d records processed", len(lines), processed)
		}
		prev := -1
		for _, l := range lines {
			var o batchOutLine
			var k int
			if err := json.Unmarshal([]byte(l), &o); err != nil || len(o.ModelOutput) == 0 {
				t.Fatalf("output line %s: %v", l, err)
			}
			if _, err := fmt.Sscanf(o.RecordID, "S%d", &k); err != nil || k <= prev {
				t.Fatalf("record %s after %d", o.RecordID, prev)
			}
			prev = k
		}
		var manifest map[string]int
		if err := json.Unmarshal([]byte(getObjectText(t, c, "stopping", "out/"+jobID+"/manifest.json.out")), &manifest); err != nil ||
			int64(manifest["processedRecordCount"]) != processed || manifest["totalRecordCount"] != n {
			t.Errorf("manifest %v %v", manifest, err)
		}
		stop()
		if all, after := countBatchRows(t, data, "bedrock", restart); int64(all) != processed || after != 0 {
			t.Errorf("ledger: %d generations, %d after the restart; want %d, none after", all, after, processed)
		}
	})
	t.Run("openai", func(t *testing.T) {
		_, url, stop := start(t, mutate)
		oc := oaiClient(url)
		var lines []string
		for i := range n {
			lines = append(lines, chatLine(fmt.Sprintf("c%02d", i), "Once upon a time", 300))
		}
		f := uploadBatch(t, oc, "stopping.jsonl", strings.Join(lines, "\n")+"\n")
		b := newBatch(t, oc, f.ID)
		waitBatch(t, oc, b.ID, 60*time.Second, func(b *openai.Batch) bool { return b.RequestCounts.Completed >= 8 })
		stop()
		markStopping(t, data, b.ID)
		restart := time.Now()

		_, url, stop = start(t, mutate)
		oc = oaiClient(url)
		done := waitBatch(t, oc, b.ID, 60*time.Second, statusIs(openai.BatchStatusCancelled))
		rc := done.RequestCounts
		if rc.Completed < 8 || rc.Completed >= n || rc.Failed != 0 || rc.Total != n || done.OutputFileID == "" {
			t.Fatalf("cancelled batch counts %+v, output file %q", rc, done.OutputFileID)
		}
		out := outLines(t, fileText(t, oc, done.OutputFileID))
		if int64(len(out)) != rc.Completed {
			t.Errorf("%d output lines, %d requests completed", len(out), rc.Completed)
		}
		for _, l := range out {
			if l.Response == nil || l.Response.StatusCode != 200 {
				t.Errorf("output line %+v", l)
			}
		}
		stop()
		if _, after := countBatchRows(t, data, "openai", restart); after != 0 {
			t.Errorf("ledger: %d generations after the restart, want none", after)
		}
	})
}
