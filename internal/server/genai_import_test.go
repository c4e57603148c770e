package server_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	bdtypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/inferbox/inferbox/internal/config"
	"github.com/inferbox/inferbox/internal/genai"
)

// importFMs registers the stories weights twice as foundation models: as
// startGenAI does (raw chat format) and with the format picked from the
// file, as an import picks it, so a Converse through the imported
// model's provisioned throughput has a foundation model to match.
func importFMs(model string) func(*config.Config) {
	return func(cfg *config.Config) {
		cfg.FoundationModels = append(cfg.FoundationModels, config.FoundationModel{ID: "inferbox.stories-default", Path: model})
	}
}

// waitImportJob polls GetModelImportJob until the job leaves InProgress.
func waitImportJob(t *testing.T, bc *bedrock.Client, arn string) *bedrock.GetModelImportJobOutput {
	t.Helper()
	var out *bedrock.GetModelImportJobOutput
	waitFor(t, 30*time.Second, "import job ends", func() (bool, string) {
		var err error
		out, err = bc.GetModelImportJob(context.Background(), &bedrock.GetModelImportJobInput{JobIdentifier: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Status != bdtypes.ModelImportJobStatusInProgress, string(out.Status)
	})
	return out
}

func importJob(ctx context.Context, bc *bedrock.Client, job, model, uri string) (*bedrock.CreateModelImportJobOutput, error) {
	return bc.CreateModelImportJob(ctx, &bedrock.CreateModelImportJobInput{
		JobName: aws.String(job), ImportedModelName: aws.String(model),
		RoleArn:         aws.String("arn:aws:iam::000000000000:role/bedrock-import"),
		ModelDataSource: &bdtypes.ModelDataSourceMemberS3DataSource{Value: bdtypes.S3DataSource{S3Uri: aws.String(uri)}},
	})
}

func converseText(t *testing.T, br *bedrockruntime.Client, model string) string {
	t.Helper()
	out, err := converseOnce(context.Background(), br, model, 24)
	if err != nil {
		t.Fatalf("converse %s: %v", model, err)
	}
	return out.Output.(*brtypes.ConverseOutputMemberMessage).Value.Content[0].(*brtypes.ContentBlockMemberText).Value
}

func TestGenAICustomModelImport(t *testing.T) {
	model := storiesPath(t)
	br, url, data, stop := startGenAI(t, importFMs(model))
	ctx := context.Background()
	bc := bedrockControl(t, url)
	s3c := s3Client(newClients(url, "AKIDANY", "anysecret"))
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	put := func(key string, body []byte) {
		t.Helper()
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	weights, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	put("custom/stories.gguf", weights)
	put("custom/README.txt", []byte("the one .gguf under this prefix is imported"))
	put("bad/model.gguf", []byte("plain text, not a GGUF file at all"))

	// Import from a prefix holding exactly one .gguf.
	created, err := importJob(ctx, bc, "import-stories", "my-stories", "s3://models/custom/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(*created.JobArn, ":model-import-job/") {
		t.Fatalf("job ARN %s", *created.JobArn)
	}
	job := waitImportJob(t, bc, *created.JobArn)
	if job.Status != bdtypes.ModelImportJobStatusCompleted || job.ImportedModelArn == nil || *job.ImportedModelName != "my-stories" ||
		job.EndTime == nil || *job.RoleArn != "arn:aws:iam::000000000000:role/bedrock-import" {
		t.Fatalf("job %+v", job)
	}
	modelArn := *job.ImportedModelArn
	if !strings.HasPrefix(modelArn, "arn:aws:bedrock:us-east-1:") || !strings.Contains(modelArn, ":imported-model/") ||
		len(modelArn[strings.LastIndex(modelArn, "/")+1:]) != 12 {
		t.Fatalf("imported model ARN %s", modelArn)
	}
	// The copy is the server's: the source can go.
	if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("models"), Key: aws.String("custom/stories.gguf")}); err != nil {
		t.Fatal(err)
	}

	for _, ref := range []string{"my-stories", modelArn} {
		got, err := bc.GetImportedModel(ctx, &bedrock.GetImportedModelInput{ModelIdentifier: aws.String(ref)})
		if err != nil {
			t.Fatalf("get %s: %v", ref, err)
		}
		src, ok := got.ModelDataSource.(*bdtypes.ModelDataSourceMemberS3DataSource)
		if *got.ModelArn != modelArn || *got.ModelName != "my-stories" || *got.ModelArchitecture != "llama" ||
			got.InstructSupported == nil || *got.InstructSupported || got.ModelKmsKeyArn != nil || got.CreationTime == nil ||
			!ok || *src.Value.S3Uri != "s3://models/custom/" || *got.JobName != "import-stories" || *got.JobArn != *created.JobArn ||
			got.CustomModelUnits == nil || *got.CustomModelUnits.CustomModelUnitsPerModelCopy != 1 {
			t.Fatalf("get %s: %+v", ref, got)
		}
	}
	list, err := bc.ListImportedModels(ctx, &bedrock.ListImportedModelsInput{NameContains: aws.String("stories")})
	if err != nil || len(list.ModelSummaries) != 1 || *list.ModelSummaries[0].ModelArn != modelArn {
		t.Fatalf("list imported: %+v %v", list, err)
	}
	_, err = importJob(ctx, bc, "import-again", "my-stories", "s3://models/bad/model.gguf")
	expectAPIError(t, "same imported model name", err, "ConflictException", 400, "my-stories")
	_, err = importJob(ctx, bc, "import-stories", "other-name", "s3://models/bad/model.gguf")
	expectAPIError(t, "same job name", err, "ValidationException", 400, "The provided job name is currently in use.")

	// A file that is not a GGUF: the job fails, naming the problem.
	bad, err := importJob(ctx, bc, "import-bad", "bad-model", "s3://models/bad/model.gguf")
	if err != nil {
		t.Fatal(err)
	}
	failed := waitImportJob(t, bc, *bad.JobArn)
	if failed.Status != bdtypes.ModelImportJobStatusFailed || failed.FailureMessage == nil ||
		!strings.Contains(*failed.FailureMessage, "s3://models/bad/model.gguf") || !strings.Contains(*failed.FailureMessage, "bad magic") ||
		strings.Contains(*failed.FailureMessage, data) || failed.ImportedModelArn != nil {
		t.Fatalf("failed job %+v (message %q)", failed, aws.ToString(failed.FailureMessage))
	}
	missing, err := importJob(ctx, bc, "import-missing", "missing-model", "s3://models/nothing-here.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if j := waitImportJob(t, bc, *missing.JobArn); j.Status != bdtypes.ModelImportJobStatusFailed || !strings.Contains(aws.ToString(j.FailureMessage), "does not exist") {
		t.Fatalf("missing source: %+v", j)
	}
	jobs, err := bc.ListModelImportJobs(ctx, &bedrock.ListModelImportJobsInput{StatusEquals: bdtypes.ModelImportJobStatusFailed, SortOrder: bdtypes.SortOrderAscending})
	if err != nil || len(jobs.ModelImportJobSummaries) != 2 || *jobs.ModelImportJobSummaries[0].JobName != "import-bad" {
		t.Fatalf("failed jobs: %+v %v", jobs, err)
	}

	// On demand, the custom model is refused, however it is named.
	for _, ref := range []string{modelArn, "my-stories"} {
		_, err := converseOnce(ctx, br, ref, 8)
		expectAPIError(t, "converse on demand "+ref, err, "ValidationException", 400)
		if _, msg, _ := apiError(t, err); msg != genai.OnDemandCustomMessage {
			t.Errorf("converse on demand %s: message %q, want %q", ref, msg, genai.OnDemandCustomMessage)
		}
		_, err = br.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(ref), ContentType: aws.String("application/json"),
			Body: []byte(`{"prompt":"Once upon a time","max_gen_len":8}`)})
		expectAPIError(t, "invoke on demand "+ref, err, "ValidationException", 400)
		if _, msg, _ := apiError(t, err); msg != genai.OnDemandCustomMessage {
			t.Errorf("invoke on demand %s: message %q", ref, msg)
		}
	}

	// Through provisioned throughput it serves, the same text as the
	// foundation model on the same weights.
	pt, err := bc.CreateProvisionedModelThroughput(ctx, &bedrock.CreateProvisionedModelThroughputInput{
		ModelUnits: aws.Int32(1), ProvisionedModelName: aws.String("custom-pt"), ModelId: aws.String(modelArn)})
	if err != nil {
		t.Fatal(err)
	}
	desc := waitPTInService(t, bc, *pt.ProvisionedModelArn)
	if desc.Status != bdtypes.ProvisionedModelStatusInService || *desc.ModelArn != modelArn {
		t.Fatalf("provisioned throughput %+v", desc)
	}
	want := converseText(t, br, "inferbox.stories-default")
	if got := converseText(t, br, *pt.ProvisionedModelArn); got != want || got == "" {
		t.Fatalf("through the provisioned throughput %q, foundation model %q", got, want)
	}
	byName, err := bc.CreateProvisionedModelThroughput(ctx, &bedrock.CreateProvisionedModelThroughputInput{
		ModelUnits: aws.Int32(1), ProvisionedModelName: aws.String("custom-pt-2"), ModelId: aws.String("my-stories")})
	if err != nil {
		t.Fatalf("provisioned throughput by model name: %v", err)
	}
	waitPTInService(t, bc, *byName.ProvisionedModelArn)
	if _, err := bc.DeleteProvisionedModelThroughput(ctx, &bedrock.DeleteProvisionedModelThroughputInput{ProvisionedModelId: byName.ProvisionedModelArn}); err != nil {
		t.Fatal(err)
	}

	_, err = bc.DeleteImportedModel(ctx, &bedrock.DeleteImportedModelInput{ModelIdentifier: aws.String(modelArn)})
	expectAPIError(t, "delete while provisioned", err, "ValidationException", 400, "custom-pt", "Delete the Provisioned Throughput")

	// Restart on the same data directory: the model is listed and its
	// provisioned throughput serves again.
	stop()
	br, url, _, _ = startGenAI(t, func(cfg *config.Config) {
		cfg.Data = data
		importFMs(model)(cfg)
	})
	bc = bedrockControl(t, url)
	list, err = bc.ListImportedModels(ctx, &bedrock.ListImportedModelsInput{})
	if err != nil || len(list.ModelSummaries) != 1 || *list.ModelSummaries[0].ModelArn != modelArn || *list.ModelSummaries[0].ModelArchitecture != "llama" {
		t.Fatalf("imported models after restart: %+v %v", list, err)
	}
	jobs, err = bc.ListModelImportJobs(ctx, &bedrock.ListModelImportJobsInput{})
	if err != nil || len(jobs.ModelImportJobSummaries) != 3 {
		t.Fatalf("import jobs after restart: %+v %v", jobs, err)
	}
	waitPTInService(t, bc, *pt.ProvisionedModelArn)
	if got := converseText(t, br, *pt.ProvisionedModelArn); got != want {
		t.Fatalf("after restart %q, want %q", got, want)
	}
	_, err = converseOnce(ctx, br, modelArn, 8)
	expectAPIError(t, "on demand after restart", err, "ValidationException", 400, genai.OnDemandCustomMessage)

	if _, err := bc.DeleteProvisionedModelThroughput(ctx, &bedrock.DeleteProvisionedModelThroughputInput{ProvisionedModelId: pt.ProvisionedModelArn}); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.DeleteImportedModel(ctx, &bedrock.DeleteImportedModelInput{ModelIdentifier: aws.String(modelArn)}); err != nil {
		t.Fatal(err)
	}
	_, err = bc.GetImportedModel(ctx, &bedrock.GetImportedModelInput{ModelIdentifier: aws.String("my-stories")})
	expectAPIError(t, "get after delete", err, "ResourceNotFoundException", 404)
	_, err = converseOnce(ctx, br, modelArn, 8)
	expectAPIError(t, "converse after delete", err, "ValidationException", 400, "The provided model identifier is invalid.")

	fms, err := bc.ListFoundationModels(ctx, &bedrock.ListFoundationModelsInput{ByInferenceType: bdtypes.InferenceTypeProvisioned})
	if err != nil || len(fms.ModelSummaries) != 2 {
		t.Fatalf("foundation models byInferenceType=PROVISIONED: %+v %v", fms, err)
	}
}
