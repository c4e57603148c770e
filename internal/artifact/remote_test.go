package artifact

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// versionedStore holds objects by URL and names their versions by MD5, as
// an object store's HEAD does with ETags.
type versionedStore struct {
	mu      sync.Mutex
	objects map[string][]byte
	opens   int
}

func (s *versionedStore) Open(ctx context.Context, url string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[url]
	if !ok {
		return nil, os.ErrNotExist
	}
	s.opens++
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *versionedStore) Version(ctx context.Context, url string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.objects[url]
	if !ok {
		return "", os.ErrNotExist
	}
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:]), nil
}

func TestRemoteDownloadedOncePerVersion(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	store := &versionedStore{objects: map[string][]byte{"s3://b/model.tar.gz": tarGz(t, modelEntries)}}
	c := newCache(t, root, WithOpener("s3", store))
	first, err := c.Resolve(ctx, "s3://b/model.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	// A second instance of the same model, and a restarted cache.
	again, err := c.Resolve(ctx, "s3://b/model.tar.gz")
	if err != nil || again != first {
		t.Fatalf("second resolve: %s %v", again, err)
	}
	c2 := newCache(t, root, WithOpener("s3", store))
	restarted, err := c2.Resolve(ctx, "s3://b/model.tar.gz")
	if err != nil || restarted != first {
		t.Fatalf("after restart: %s %v", restarted, err)
	}
	if store.opens != 1 || c.downloads.Load()+c2.downloads.Load() != 1 {
		t.Fatalf("downloads = %d (opens %d), want 1", c.downloads.Load()+c2.downloads.Load(), store.opens)
	}
	// A new version of the object is downloaded again.
	store.mu.Lock()
	store.objects["s3://b/model.tar.gz"] = tarGz(t, []entry{{name: "model.json", body: "{\"v\":2}"}})
	store.mu.Unlock()
	updated, err := c2.Resolve(ctx, "s3://b/model.tar.gz")
	if err != nil || updated == first {
		t.Fatalf("new version: %s %v", updated, err)
	}
	if got := readFile(t, filepath.Join(updated, "model.json")); got != "{\"v\":2}" || store.opens != 2 {
		t.Fatalf("new version content %q, opens %d", got, store.opens)
	}
	if _, err := c2.Resolve(ctx, "s3://b/missing.tar.gz"); err == nil {
		t.Fatal("missing object resolved")
	}
}
