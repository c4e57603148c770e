package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	s3api "github.com/inferbox/inferbox/internal/api/s3"
	"github.com/inferbox/inferbox/internal/objstore"
)

// The external-S3 code path runs against a real S3-compatible server:
// inferbox's own S3 API over an embedded store, on another loopback port.
func TestExternalAgainstS3Server(t *testing.T) {
	ctx := context.Background()
	backing, err := objstore.OpenEmbedded(filepath.Join(t.TempDir(), "objects"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := backing.CreateBucket(ctx, "remote"); err != nil {
		t.Fatal(err)
	}
	v := awsproto.NewVerifier(awsproto.Credentials{"AKIDEXT": "ext-secret"}, 1<<20)
	srv := httptest.NewServer(s3api.New(backing, v, slog.New(slog.DiscardHandler), s3api.Options{}))
	defer srv.Close()

	ext, err := objstore.NewExternal(ctx, objstore.ExternalConfig{
		Region: "us-east-1", Endpoint: srv.URL, PathStyle: true, PartSize: 5 << 20, Concurrency: 2,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXT", "ext-secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := objstore.NewResolver(ext)
	small, err := r.Put(ctx, "s3://remote/in/a.csv", bytes.NewReader([]byte("1,2,3\n")), objstore.PutOptions{ContentType: "text/csv", Metadata: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if small.Size != 6 || small.ContentType != "text/csv" || small.Metadata["k"] != "v" {
		t.Fatalf("small put: %+v", small)
	}
	// Large and unseekable: the SDK's multipart uploader streams it.
	big := bytes.Repeat([]byte("0123456789abcdef"), (11<<20)/16)
	info, err := r.Put(ctx, "s3://remote/in/big.bin", struct{ io.Reader }{bytes.NewReader(big)}, objstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(big)) || info.ETag[len(info.ETag)-2:] != "-3" {
		t.Fatalf("big put: %+v", info)
	}
	rc, got, err := r.Open(ctx, "s3://remote/in/big.bin", &objstore.Range{Start: 16, End: 31})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "0123456789abcdef" || got.Size != int64(len(big)) {
		t.Fatalf("ranged read: %q size %d", b, got.Size)
	}
	page, err := r.List(ctx, "s3://remote/in/", objstore.ListOptions{MaxKeys: 1})
	if err != nil || len(page.Objects) != 1 || page.Objects[0].URI != "s3://remote/in/a.csv" || page.NextToken == "" {
		t.Fatalf("list: %+v %v", page, err)
	}
	page, err = r.List(ctx, "s3://remote/in/", objstore.ListOptions{Token: page.NextToken})
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Key != "in/big.bin" || page.NextToken != "" {
		t.Fatalf("list page 2: %+v %v", page, err)
	}
	if err := r.Delete(ctx, "s3://remote/in/a.csv"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Head(ctx, "s3://remote/in/a.csv"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("head deleted: %v", err)
	}
	if _, _, err := r.Open(ctx, "s3://remote/missing", nil); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("open missing: %v", err)
	}
	if _, err := r.Head(ctx, "s3://nobucket/x"); err == nil {
		t.Fatal("missing bucket: no error")
	}
	// What the external service holds is exactly what was written.
	rc, _, err = backing.GetObject(ctx, "remote", "in/big.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(all, big) {
		t.Fatal("external object differs from what was put")
	}
}
