package catalog

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestImportedModelsAndJobs(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	j := &ModelImportJob{ID: "job000000001", Name: "job-a", ImportedModelName: "m-a", SourceURI: "s3://b/m.gguf",
		Status: "InProgress", Created: now, LastChanged: now}
	if err := s.CreateImportJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	dupJob := *j
	dupJob.ID, dupJob.Name = "job000000002", "JOB-A"
	if err := s.CreateImportJob(ctx, &dupJob); !errors.Is(err, ErrExists) {
		t.Fatalf("same job name in another case: %v, want ErrExists", err)
	}
	j.Status, j.ImportedModelID, j.Ended = "Completed", "abcdefghijkl", now
	if err := s.PutImportJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	m := &ImportedModel{ID: "abcdefghijkl", Name: "m-a", JobID: j.ID, JobName: j.Name, Path: "/x/y.gguf",
		SHA256: "00", Architecture: "llama", Created: now}
	if err := s.CreateImportedModel(ctx, m); err != nil {
		t.Fatal(err)
	}
	dup := *m
	dup.ID, dup.Name = "zzzzzzzzzzzz", "M-A"
	if err := s.CreateImportedModel(ctx, &dup); !errors.Is(err, ErrExists) {
		t.Fatalf("same model name in another case: %v, want ErrExists", err)
	}
	s.Close()

	s = reopen(t, path)
	jobs, err := s.ListImportJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Status != "Completed" || jobs[0].ImportedModelID != m.ID || !jobs[0].Ended.Equal(now) {
		t.Fatalf("jobs after reopen: %+v", jobs)
	}
	models, err := s.ListImportedModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 1 || models[0].Name != "m-a" || models[0].Path != "/x/y.gguf" {
		t.Fatalf("models after reopen: %+v", models)
	}
	if err := s.DeleteImportedModel(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteImportedModel(ctx, m.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.PutImportJob(ctx, &dupJob); !errors.Is(err, ErrNotFound) {
		t.Fatalf("put of an unknown job: %v", err)
	}
}
