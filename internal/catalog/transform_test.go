package catalog

import (
	"context"
	"errors"
	"testing"
)

func TestTransformJobCRUD(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.InitTransformJobs(ctx); err != nil {
		t.Fatal(err)
	}
	six := 6
	j := &TransformJob{
		TransformJobName:   "Job-1",
		TransformJobArn:    "arn:aws:sagemaker:us-east-1:000000000000:transform-job/job-1",
		TransformJobStatus: TransformInProgress,
		ModelName:          "m",
		MaxPayloadInMB:     &six,
		TransformInput:     TransformInput{DataSource: TransformDataSource{S3DataSource: &S3DataSource{S3DataType: "S3Prefix", S3Uri: "s3://b/in/"}}, SplitType: "Line"},
		TransformOutput:    TransformOutput{S3OutputPath: "s3://b/out"},
		TransformResources: TransformResources{InstanceType: "ml.m5.large", InstanceCount: 1},
		CreationTime:       at(1700000000, 5),
	}
	if err := s.CreateTransformJob(ctx, j); err != nil {
		t.Fatalf("CreateTransformJob: %v", err)
	}
	if err := s.CreateTransformJob(ctx, &TransformJob{TransformJobName: "JOB-1"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate in another case: %v, want ErrExists", err)
	}
	j.TransformJobStatus = TransformCompleted
	j.TransformEndTime = at(1700000010, 0)
	if err := s.PutTransformJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.InitTransformJobs(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s2.GetTransformJob(ctx, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.TransformJobStatus != TransformCompleted || got.TransformEndTime != j.TransformEndTime || *got.MaxPayloadInMB != 6 ||
		got.TransformInput.DataSource.S3DataSource.S3Uri != "s3://b/in/" || !got.TransformStartTime.IsZero() {
		t.Errorf("stored job = %+v", got)
	}
	list, err := s2.ListTransformJobs(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListTransformJobs = %v, %v", list, err)
	}
	if _, err := s2.GetTransformJob(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing job: %v", err)
	}
	if err := s2.PutTransformJob(ctx, &TransformJob{TransformJobName: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("put missing job: %v", err)
	}
}
