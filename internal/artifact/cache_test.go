package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type entry struct {
	name string
	body string
	typ  byte // tar.TypeReg when zero
	link string
}

func tarGz(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Linkname: e.link, ModTime: time.Unix(1, 0)}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var modelEntries = []entry{
	{name: "./", typ: tar.TypeDir},
	{name: "./model.json", body: `{"w":[1,2]}`},
	{name: "code/", typ: tar.TypeDir},
	{name: "code/inference.py", body: "print('hi')"},
	{name: "latest", typ: tar.TypeSymlink, link: "model.json"},
}

func write(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func newCache(t *testing.T, dir string, opts ...Option) *Cache {
	t.Helper()
	c, err := NewCache(dir, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// modelDirs lists the finished model directories in the cache.
func modelDirs(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if isHexName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func assertNoLeftovers(t *testing.T, root string) {
	t.Helper()
	if d := modelDirs(t, root); len(d) != 0 {
		t.Errorf("model directories left behind: %v", d)
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Errorf("temporary entries left behind: %v", tmp)
	}
}

func TestTarGzUnpackedOnceAndReused(t *testing.T) {
	src := t.TempDir()
	root := filepath.Join(t.TempDir(), "cache")
	// Detected by content: the name says nothing about gzip.
	archive := write(t, filepath.Join(src, "model.artifact"), tarGz(t, modelEntries))
	c := newCache(t, root)
	ctx := context.Background()

	dir, err := c.Resolve(ctx, archive)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "model.json")); got != `{"w":[1,2]}` {
		t.Errorf("model.json = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "code", "inference.py")); got != "print('hi')" {
		t.Errorf("code/inference.py = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "latest")); got != `{"w":[1,2]}` {
		t.Errorf("symlink latest reads %q", got)
	}
	if filepath.Dir(dir) != root || !isHexName(filepath.Base(dir)) {
		t.Errorf("dir %q is not <cache>/<sha256>", dir)
	}

	again, err := c.Resolve(ctx, archive)
	if err != nil || again != dir {
		t.Fatalf("second Resolve = %q, %v; want %q", again, err, dir)
	}
	if n := c.unpacks.Load(); n != 1 {
		t.Errorf("unpacks after two Resolves = %d, want 1", n)
	}

	// After a restart the index answers without unpacking; a new path or
	// mtime with the same content finds the same directory.
	c2 := newCache(t, root)
	copyPath := write(t, filepath.Join(src, "copy.tar.gz"), tarGz(t, modelEntries))
	for _, p := range []string{archive, "file://" + copyPath} {
		got, err := c2.Resolve(ctx, p)
		if err != nil || got != dir {
			t.Errorf("after restart, Resolve(%s) = %q, %v; want %q", p, got, err, dir)
		}
	}
	if n := c2.unpacks.Load(); n != 0 {
		t.Errorf("unpacks after restart = %d, want 0", n)
	}
	if d := modelDirs(t, root); len(d) != 1 {
		t.Errorf("model directories = %v, want one", d)
	}
}

func TestUnsafeArchivesRefused(t *testing.T) {
	cases := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"dot-dot", []entry{{name: "../evil", body: "x"}}, "escapes"},
		{"nested dot-dot", []entry{{name: "a/../../evil", body: "x"}}, "escapes"},
		{"absolute", []entry{{name: "/tmp/evil", body: "x"}}, "escapes"},
		{"absolute symlink", []entry{{name: "l", typ: tar.TypeSymlink, link: "/etc/passwd"}}, "points outside"},
		{"relative symlink out", []entry{{name: "a/l", typ: tar.TypeSymlink, link: "../../x"}}, "points outside"},
		{"write through symlink", []entry{
			{name: "d", typ: tar.TypeSymlink, link: "."},
			{name: "d/l", typ: tar.TypeSymlink, link: ".."},
		}, "inside symlink"},
		{"hard link out", []entry{{name: "h", typ: tar.TypeLink, link: "../evil"}}, "escapes"},
		{"char device", []entry{{name: "null", typ: tar.TypeChar}}, "device"},
		{"fifo", []entry{{name: "p", typ: tar.TypeFifo}}, "FIFO"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			root := filepath.Join(parent, "cache")
			archive := write(t, filepath.Join(parent, "m.tar.gz"), tarGz(t, tc.entries))
			_, err := newCache(t, root).Resolve(context.Background(), archive)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), archive) {
				t.Fatalf("err = %v; want it to name %s and say %q", err, archive, tc.want)
			}
			assertNoLeftovers(t, root)
			if _, err := os.Lstat(filepath.Join(parent, "evil")); err == nil {
				t.Errorf("a file was written outside the cache")
			}
		})
	}
}

func TestCorruptArchive(t *testing.T) {
	good := tarGz(t, modelEntries)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-6] ^= 0xff // inside the gzip trailer's CRC
	cases := map[string]struct {
		data []byte
		want string
	}{
		"truncated":     {good[:len(good)/2], "unexpected EOF"},
		"bad checksum":  {flipped, "checksum"},
		"gzip, not tar": {gzipOf(t, "just some text, not a tar archive at all "+strings.Repeat("x", 600)), "tar"},
		"named .tar.gz": {[]byte("plain text"), "not gzip-compressed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			root := filepath.Join(parent, "cache")
			archive := write(t, filepath.Join(parent, "model.tar.gz"), tc.data)
			_, err := newCache(t, root).Resolve(context.Background(), archive)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), archive) {
				t.Fatalf("err = %v; want it to name the file and say %q", err, tc.want)
			}
			assertNoLeftovers(t, root)
		})
	}
}

func gzipOf(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSizeLimit(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "cache")
	archive := write(t, filepath.Join(parent, "m.tar.gz"), tarGz(t, []entry{{name: "a", body: "12345"}, {name: "b", body: "67890"}}))
	_, err := newCache(t, root, WithMaxUnpackedBytes(8)).Resolve(context.Background(), archive)
	if err == nil || !strings.Contains(err.Error(), "size limit") {
		t.Fatalf("err = %v, want size limit", err)
	}
	assertNoLeftovers(t, root)
}

func TestConcurrentResolveSharesOneUnpack(t *testing.T) {
	parent := t.TempDir()
	archive := write(t, filepath.Join(parent, "m.tar.gz"), tarGz(t, modelEntries))
	c := newCache(t, filepath.Join(parent, "cache"))
	const n = 8
	dirs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			dirs[i], err = c.Resolve(context.Background(), archive)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range dirs {
		if dirs[i] != dirs[0] {
			t.Errorf("Resolve %d = %q, Resolve 0 = %q", i, dirs[i], dirs[0])
		}
	}
	if got := c.unpacks.Load(); got != 1 {
		t.Errorf("unpacks = %d, want 1", got)
	}
}

func TestPlainFileAndDirectory(t *testing.T) {
	src := t.TempDir()
	root := filepath.Join(src, "cache") // same file system: a hard link
	model := write(t, filepath.Join(src, "xgboost-model.json"), []byte(`{"learner":{}}`))
	c := newCache(t, root)
	dir, err := c.Resolve(context.Background(), "file://"+model)
	if err != nil {
		t.Fatal(err)
	}
	placed := filepath.Join(dir, "xgboost-model.json")
	if got := readFile(t, placed); got != `{"learner":{}}` {
		t.Errorf("placed file = %q", got)
	}
	a, _ := os.Stat(model)
	b, _ := os.Stat(placed)
	if !os.SameFile(a, b) {
		t.Errorf("placed file is not a hard link of the source")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("model dir holds %d entries, want 1", len(ents))
	}

	// A directory is used as it is.
	got, err := c.Resolve(context.Background(), src)
	if err != nil || got != src {
		t.Errorf("Resolve(dir) = %q, %v; want %q", got, err, src)
	}
}

func TestSchemes(t *testing.T) {
	c := newCache(t, t.TempDir())
	for _, u := range []string{"s3://bucket/model.tar.gz", "https://example.com/model.tar.gz"} {
		_, err := c.Resolve(context.Background(), u)
		scheme := u[:strings.Index(u, ":")]
		if !errors.Is(err, ErrUnsupportedScheme) ||
			!strings.Contains(err.Error(), "unsupported scheme "+scheme+" in ModelDataUrl") ||
			!strings.Contains(err.Error(), "object storage is not configured") {
			t.Errorf("Resolve(%s) err = %v", u, err)
		}
	}
	if _, err := c.Resolve(context.Background(), "file://relative/model.tar.gz"); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative file URL: err = %v", err)
	}
	if _, err := c.Resolve(context.Background(), filepath.Join(t.TempDir(), "missing.tar.gz")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

// bytesOpener serves fixed objects: the stand-in for an object store, which
// is not what this test is about.
type bytesOpener map[string][]byte

func (o bytesOpener) Open(_ context.Context, url string) (io.ReadCloser, error) {
	b, ok := o[url]
	if !ok {
		return nil, os.ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func TestOpenerForOtherSchemes(t *testing.T) {
	root := t.TempDir()
	c := newCache(t, root, WithOpener("s3", bytesOpener{
		"s3://b/model.tar.gz": tarGz(t, modelEntries),
		"s3://b/m/model.json": []byte("{}"),
	}))
	dir, err := c.Resolve(context.Background(), "s3://b/model.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "code", "inference.py")); got != "print('hi')" {
		t.Errorf("inference.py = %q", got)
	}
	dir, err = c.Resolve(context.Background(), "s3://b/m/model.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "model.json")); got != "{}" {
		t.Errorf("model.json = %q", got)
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmp) != 0 {
		t.Errorf("downloads left behind: %v", tmp)
	}
}
