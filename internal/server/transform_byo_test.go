package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// TestTransformBYOBatchMode runs the BYO test container as a transform job
// that sets neither MaxConcurrentTransforms, BatchStrategy nor
// MaxPayloadInMB: the container's /execution-parameters (3, MULTI_RECORD,
// 5 MB) must decide them, and it must see SAGEMAKER_BATCH=true.
func TestTransformBYOBatchMode(t *testing.T) {
	e := newBatchEnv(t)
	ctx := context.Background()
	createModel(t, e.c, "byo", fixtureImage(t), "")

	// 11.5 MB of 100-byte lines: 3 requests at 5 MB (2 at the default 6).
	const lines, width = 115000, 100
	var b strings.Builder
	for i := range lines {
		fmt.Fprintf(&b, "line-%07d,%s\n", i, strings.Repeat("x", width-14))
	}
	e.put(t, "byo/in.txt", []byte(b.String()))

	_, err := e.c.sm.CreateTransformJob(ctx, &sagemaker.CreateTransformJobInput{
		TransformJobName: aws.String("byo-batch"),
		ModelName:        aws.String("byo"),
		// The fixture answers each request with its environment and the
		// body size; TEST_BARRIER holds each request until 3 are in
		// flight at once, which only MaxConcurrentTransforms 3 allows.
		Environment: map[string]string{"TEST_MODE": "env", "TEST_BARRIER": "3"},
		TransformInput: &smtypes.TransformInput{
			DataSource: &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{
				S3DataType: smtypes.S3DataTypeS3Prefix, S3Uri: aws.String("s3://data/byo/"),
			}},
			ContentType: aws.String("text/plain"),
			SplitType:   smtypes.SplitTypeLine,
		},
		TransformOutput:    &smtypes.TransformOutput{S3OutputPath: aws.String("s3://data/byo-out"), AssembleWith: smtypes.AssemblyTypeLine},
		TransformResources: &smtypes.TransformResources{InstanceType: smtypes.TransformInstanceTypeMlM5Large, InstanceCount: aws.Int32(1)},
	})
	if err != nil {
		t.Fatalf("CreateTransformJob: %v", err)
	}
	d := e.wait(t, "byo-batch")
	if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Fatalf("status %s: %s", d.TransformJobStatus, aws.ToString(d.FailureReason))
	}
	// The job's own fields stay unset: SageMaker reports what was asked.
	if d.MaxConcurrentTransforms != nil || d.MaxPayloadInMB != nil || d.BatchStrategy != "" {
		t.Errorf("Describe shows %v %v %q; the job set none of them", d.MaxConcurrentTransforms, d.MaxPayloadInMB, d.BatchStrategy)
	}

	out, ok := e.get(t, "byo-out/in.txt.out")
	if !ok {
		t.Fatal("no output object")
	}
	var total int
	reps := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, line := range reps {
		var rep struct {
			Env        map[string]*string `json:"env"`
			BodyBytes  int                `json:"body_bytes"`
			BarrierMet *bool              `json:"barrier_met"`
		}
		if err := json.Unmarshal([]byte(line), &rep); err != nil {
			t.Fatalf("response %d is not the fixture's env report: %v: %.200q", i+1, err, line)
		}
		if v := rep.Env["SAGEMAKER_BATCH"]; v == nil || *v != "true" {
			t.Errorf("response %d: SAGEMAKER_BATCH = %v, want true", i+1, v)
		}
		if rep.BodyBytes > 5<<20 {
			t.Errorf("response %d: a %d-byte request, over the container's MaxPayloadInMB 5", i+1, rep.BodyBytes)
		}
		if rep.BarrierMet == nil || !*rep.BarrierMet {
			t.Errorf("response %d: 3 requests were never in flight at once (MaxConcurrentTransforms 3 not honoured)", i+1)
		}
		total += rep.BodyBytes
	}
	if len(reps) != 3 || total != lines*width {
		t.Errorf("%d requests carrying %d bytes; want 3 MultiRecord requests of at most 5 MB carrying all %d", len(reps), total, lines*width)
	}
	if p := describeProgress(t, e, "byo-batch"); p.RecordsProcessed != lines || p.BytesProcessed != lines*width {
		t.Errorf("Progress = %+v, want %d records and %d bytes", p, lines, lines*width)
	}
}
