package catalog

import (
	"context"
	"errors"
	"testing"
)

func TestOpenAIFiles(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.InitOpenAIFiles(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*OpenAIFile{
		{ID: "file-b", Purpose: "batch", Filename: "in.jsonl", Bytes: 10, CreatedAt: 100, URI: "s3://x/files/file-b"},
		{ID: "file-a", Purpose: "batch_output", Filename: "out.jsonl", Bytes: 5, CreatedAt: 100, URI: "s3://x/files/file-a"},
		{ID: "file-c", Purpose: "batch", Filename: "in2.jsonl", Bytes: 7, CreatedAt: 101, URI: "s3://x/files/file-c"},
	} {
		if err := s.CreateOpenAIFile(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateOpenAIFile(ctx, &OpenAIFile{ID: "file-a", Purpose: "batch"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate id: %v, want ErrExists", err)
	}
	s.Close()
	s2 := reopen(t, path)
	if err := s2.InitOpenAIFiles(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := s2.ListOpenAIFiles(ctx, "")
	if err != nil || len(all) != 3 || all[0].ID != "file-b" || all[1].ID != "file-a" || all[2].ID != "file-c" {
		t.Fatalf("list in creation order after reopening: %v %v", all, err)
	}
	batch, err := s2.ListOpenAIFiles(ctx, "batch")
	if err != nil || len(batch) != 2 || batch[1].ID != "file-c" {
		t.Fatalf("list purpose batch: %v %v", batch, err)
	}
	f, err := s2.GetOpenAIFile(ctx, "file-a")
	if err != nil || f.Bytes != 5 || f.Filename != "out.jsonl" || f.URI != "s3://x/files/file-a" {
		t.Fatalf("get: %+v %v", f, err)
	}
	if err := s2.DeleteOpenAIFile(ctx, "file-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.GetOpenAIFile(ctx, "file-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := s2.DeleteOpenAIFile(ctx, "file-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}
