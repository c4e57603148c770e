package objstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func newEmbedded(t *testing.T) *Embedded {
	t.Helper()
	e, err := OpenEmbedded(filepath.Join(t.TempDir(), "objects"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.CreateBucket(context.Background(), "bkt"); err != nil {
		t.Fatal(err)
	}
	return e
}

func put(t *testing.T, e *Embedded, key, body string) Info {
	t.Helper()
	info, err := e.PutObject(context.Background(), "bkt", key, strings.NewReader(body), PutOptions{ContentType: "text/plain", Metadata: map[string]string{"who": "test"}})
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return info
}

func read(t *testing.T, e *Embedded, key string, rng *Range) (string, Info) {
	t.Helper()
	rc, info, err := e.GetObject(context.Background(), "bkt", key, rng)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), info
}

func TestEmbeddedObjects(t *testing.T) {
	ctx := context.Background()
	e := newEmbedded(t)
	info := put(t, e, "dir/a.txt", "hello")
	sum := md5.Sum([]byte("hello"))
	if info.ETag != hex.EncodeToString(sum[:]) || info.Size != 5 {
		t.Fatalf("put info %+v", info)
	}
	body, got := read(t, e, "dir/a.txt", nil)
	if body != "hello" || got.ContentType != "text/plain" || got.Metadata["who"] != "test" || got.ETag != info.ETag {
		t.Fatalf("get %q %+v", body, got)
	}
	if b, _ := read(t, e, "dir/a.txt", &Range{1, 3}); b != "ell" {
		t.Fatalf("range = %q", b)
	}
	if b, _ := read(t, e, "dir/a.txt", &Range{-2, -1}); b != "lo" {
		t.Fatalf("suffix range = %q", b)
	}
	if _, _, err := e.GetObject(ctx, "bkt", "dir/a.txt", &Range{5, -1}); !errors.Is(err, ErrInvalidRange) {
		t.Fatalf("range past the end: %v", err)
	}
	// The file is the object: readable with ordinary tools.
	if b, err := os.ReadFile(filepath.Join(e.Root(), "bkt", "dir", "a.txt")); err != nil || string(b) != "hello" {
		t.Fatalf("on disk: %q %v", b, err)
	}
	if _, err := e.HeadObject(ctx, "bkt", "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := e.HeadObject(ctx, "nobucket", "x"); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("missing bucket: %v", err)
	}
	// "dir" is a prefix of objects: it cannot be an object too.
	if _, err := e.PutObject(ctx, "bkt", "dir", strings.NewReader("x"), PutOptions{}); !errors.Is(err, ErrKeyConflict) {
		t.Fatalf("file over directory: %v", err)
	}
	if _, err := e.PutObject(ctx, "bkt", "dir/a.txt/b", strings.NewReader("x"), PutOptions{}); !errors.Is(err, ErrKeyConflict) {
		t.Fatalf("object under object: %v", err)
	}
	if err := e.DeleteBucket(ctx, "bkt"); !errors.Is(err, ErrBucketNotEmpty) {
		t.Fatalf("delete non-empty bucket: %v", err)
	}
	if err := e.DeleteObject(ctx, "bkt", "dir/a.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.Root(), "bkt", "dir")); !os.IsNotExist(err) {
		t.Fatalf("empty directory left behind: %v", err)
	}
	if err := e.DeleteBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateBucket(ctx, "../evil"); !errors.Is(err, ErrInvalidBucket) {
		t.Fatalf("traversal bucket: %v", err)
	}
}

func TestEmbeddedTraversalRefused(t *testing.T) {
	e := newEmbedded(t)
	for _, key := range []string{"../outside", "a/../../outside", "/etc/passwd", "a\x00b", strings.Repeat("x", 1025)} {
		if _, err := e.PutObject(context.Background(), "bkt", key, strings.NewReader("x"), PutOptions{}); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
	if _, err := os.Stat(filepath.Join(e.Root(), "outside")); !os.IsNotExist(err) {
		t.Fatal("a file escaped the bucket")
	}
}

// failingReader delivers some bytes, then fails: a client that goes away
// in the middle of an upload.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), f.n)
	for i := range p[:n] {
		p[i] = 'x'
	}
	f.n -= n
	return n, nil
}

func TestEmbeddedInterruptedPutLeavesNothing(t *testing.T) {
	ctx := context.Background()
	e := newEmbedded(t)
	if _, err := e.PutObject(ctx, "bkt", "k", &failingReader{n: 3 << 20}, PutOptions{}); err == nil {
		t.Fatal("interrupted put succeeded")
	}
	if _, err := e.HeadObject(ctx, "bkt", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("half-written object visible: %v", err)
	}
	put(t, e, "k", "old")
	if _, err := e.PutObject(ctx, "bkt", "k", &failingReader{n: 1 << 20}, PutOptions{}); err == nil {
		t.Fatal("interrupted put succeeded")
	}
	if b, _ := read(t, e, "k", nil); b != "old" {
		t.Fatalf("interrupted overwrite changed the object: %q", b[:min(len(b), 10)])
	}
	if des, _ := os.ReadDir(e.tmpDir()); len(des) != 0 {
		t.Fatalf("temporary files left: %d", len(des))
	}
	// A bad Content-MD5 is an interrupted write too.
	if _, err := e.PutObject(ctx, "bkt", "k", strings.NewReader("new"), PutOptions{ContentMD5: make([]byte, 16)}); !errors.Is(err, ErrBadDigest) {
		t.Fatalf("bad digest: %v", err)
	}
}

func TestEmbeddedConcurrentWritersLastCompleteWins(t *testing.T) {
	ctx := context.Background()
	e := newEmbedded(t)
	const writers, size = 8, 1 << 20
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte('a' + i)}, size)
			if _, err := e.PutObject(ctx, "bkt", "shared", bytes.NewReader(body), PutOptions{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	b, info := read(t, e, "shared", nil)
	if len(b) != size || strings.Count(b, b[:1]) != size {
		t.Fatalf("object mixes writers: %d bytes", len(b))
	}
	sum := md5.Sum([]byte(b))
	if info.ETag != hex.EncodeToString(sum[:]) {
		t.Fatal("ETag belongs to another writer's content")
	}
}

func TestEmbeddedList(t *testing.T) {
	ctx := context.Background()
	e := newEmbedded(t)
	keys := []string{"a-c", "a/b", "a/c/d", "a/c/e", "b", "dir/", "dir/x", "z%", "%lead"}
	for _, k := range keys {
		put(t, e, k, k)
	}
	all := func(prefix string, opts ListOptions) (got []string) {
		for {
			page, err := e.ListObjects(ctx, "bkt", prefix, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.Objects {
				got = append(got, o.Key)
			}
			for _, p := range page.CommonPrefixes {
				got = append(got, "P:"+p)
			}
			if page.NextToken == "" {
				return got
			}
			opts.Token = page.NextToken
		}
	}
	for _, c := range []struct {
		prefix string
		opts   ListOptions
		want   []string
	}{
		{"", ListOptions{}, []string{"%lead", "a-c", "a/b", "a/c/d", "a/c/e", "b", "dir/", "dir/x", "z%"}},
		{"", ListOptions{MaxKeys: 2}, []string{"%lead", "a-c", "a/b", "a/c/d", "a/c/e", "b", "dir/", "dir/x", "z%"}},
		{"", ListOptions{Delimiter: "/"}, []string{"%lead", "a-c", "P:a/", "b", "P:dir/", "z%"}},
		{"", ListOptions{Delimiter: "/", MaxKeys: 1}, []string{"%lead", "a-c", "P:a/", "b", "P:dir/", "z%"}},
		{"a/", ListOptions{Delimiter: "/"}, []string{"a/b", "P:a/c/"}},
		{"a/c", ListOptions{}, []string{"a/c/d", "a/c/e"}},
		{"a", ListOptions{StartAfter: "a/b"}, []string{"a/c/d", "a/c/e"}},
		{"dir/", ListOptions{Delimiter: "/"}, []string{"dir/", "dir/x"}},
		{"nothing", ListOptions{}, nil},
	} {
		got := all(c.prefix, c.opts)
		// Pages interleave objects and prefixes; compare as a sorted set.
		if !reflect.DeepEqual(sortedSet(got), sortedSet(c.want)) {
			t.Errorf("list %q %+v = %v, want %v", c.prefix, c.opts, got, c.want)
		}
	}
	page, _ := e.ListObjects(ctx, "bkt", "", ListOptions{MaxKeys: 3})
	if len(page.Objects) != 3 || page.NextToken == "" {
		t.Fatalf("first page: %+v", page)
	}
	if page.Objects[0].Key != "%lead" || page.Objects[1].Key != "a-c" || page.Objects[2].Key != "a/b" {
		t.Fatalf("not in byte order: %v %v %v", page.Objects[0].Key, page.Objects[1].Key, page.Objects[2].Key)
	}
}

func sortedSet(s []string) string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return fmt.Sprint(c)
}

func TestEmbeddedMultipart(t *testing.T) {
	ctx := context.Background()
	e := newEmbedded(t)
	u, err := e.CreateUpload(ctx, "bkt", "big", PutOptions{ContentType: "application/x-test"})
	if err != nil {
		t.Fatal(err)
	}
	p1 := bytes.Repeat([]byte("1"), MinPartSize)
	p2 := []byte("tail")
	var parts []CompletePart
	sums := md5.New()
	for i, body := range [][]byte{p1, p2} {
		p, err := e.UploadPart(ctx, "bkt", "big", u.ID, i+1, bytes.NewReader(body), int64(len(body)), nil)
		if err != nil {
			t.Fatal(err)
		}
		s := md5.Sum(body)
		sums.Write(s[:])
		parts = append(parts, CompletePart{Number: i + 1, ETag: `"` + p.ETag + `"`})
	}
	if _, err := e.HeadObject(ctx, "bkt", "big"); !errors.Is(err, ErrNotFound) {
		t.Fatal("object visible before completion")
	}
	if _, err := e.CompleteUpload(ctx, "bkt", "big", u.ID, []CompletePart{parts[1], parts[0]}); !errors.Is(err, ErrPartOrder) {
		t.Fatalf("out of order: %v", err)
	}
	if _, err := e.CompleteUpload(ctx, "bkt", "big", u.ID, []CompletePart{{1, "wrong"}, parts[1]}); !errors.Is(err, ErrInvalidPart) {
		t.Fatalf("wrong etag: %v", err)
	}
	info, err := e.CompleteUpload(ctx, "bkt", "big", u.ID, parts)
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(sums.Sum(nil)) + "-2"; info.ETag != want {
		t.Fatalf("etag %s, want %s", info.ETag, want)
	}
	b, got := read(t, e, "big", nil)
	if b != string(p1)+string(p2) || got.ContentType != "application/x-test" || got.ETag != info.ETag {
		t.Fatalf("assembled object wrong: %d bytes %+v", len(b), got)
	}
	if _, _, err := e.ListParts(ctx, "bkt", "big", u.ID); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("upload not removed: %v", err)
	}
	// A small part that is not the last is refused.
	u2, _ := e.CreateUpload(ctx, "bkt", "small", PutOptions{})
	a, _ := e.UploadPart(ctx, "bkt", "small", u2.ID, 1, strings.NewReader("a"), 1, nil)
	c, _ := e.UploadPart(ctx, "bkt", "small", u2.ID, 2, strings.NewReader("c"), 1, nil)
	if _, err := e.CompleteUpload(ctx, "bkt", "small", u2.ID, []CompletePart{{1, a.ETag}, {2, c.ETag}}); !errors.Is(err, ErrEntityTooSmall) {
		t.Fatalf("small part: %v", err)
	}
	if err := e.AbortUpload(ctx, "bkt", "small", u2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.UploadPart(ctx, "bkt", "small", "../../../etc", 1, strings.NewReader("x"), 1, nil); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("traversal upload id: %v", err)
	}
}

func TestResolverFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := NewResolver(nil)
	p := filepath.Join(dir, "in", "data.csv")
	if _, err := r.Put(ctx, "file://"+p, strings.NewReader("1,2\n"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Put(ctx, filepath.Join(dir, "in", "more.csv"), strings.NewReader("3,4\n"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	page, err := r.List(ctx, filepath.Join(dir, "in")+"/", ListOptions{})
	if err != nil || len(page.Objects) != 2 || page.Objects[0].Key != p {
		t.Fatalf("list: %+v %v", page, err)
	}
	rc, info, err := r.Open(ctx, p, &Range{2, -1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "2\n" || info.Size != 4 {
		t.Fatalf("open: %q %+v", b, info)
	}
	if _, err := r.Head(ctx, "s3://bkt/x"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("s3 without backend: %v", err)
	}
	if err := r.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Head(ctx, p); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
}
