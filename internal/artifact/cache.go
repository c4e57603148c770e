// Package artifact turns a ModelDataUrl into a local model directory: the
// equivalent of the /opt/ml/model directory SageMaker fills before a
// container starts. It owns the on-disk cache of unpacked artifacts.
//
// A directory is used as it is. A gzip-compressed tar archive (recognised by
// its magic bytes, whatever its name) is unpacked once into
// <cache>/<sha256 of the archive>/; any other file is placed, under its base
// name, in a directory of its own (a hard link when the cache is on the same
// file system, a copy otherwise).
//
// Cache layout and reuse:
//
//	<cache>/<64 hex>/      a model directory, named by content hash; never
//	                       modified once it has its final name
//	<cache>/index/<64 hex> a small file naming the model directory for one
//	                       (absolute path, size, modification time) of a
//	                       local artifact, so a restart does not re-read it
//	<cache>/tmp/           work in progress, renamed into place when complete
//
// Resolve hashes a local file only when the index has no entry for its
// current path, size and modification time; it unpacks only when the
// directory for that content does not exist yet. Directories appear by an
// atomic rename, so a crash never leaves a partial model directory, and
// concurrent Resolves of the same artifact (in this process) share one
// unpack. Two processes sharing a cache race harmlessly: the second rename
// loses and its copy is discarded.
//
// Hard links share the source file's inode: a source rewritten in place
// (not replaced) changes the cached copy too. Model artifacts are normally
// replaced, not edited, so inferbox accepts this to avoid copying.
//
// Schemes other than plain paths and file:// are read through an Opener the
// composition root plugs in (WithOpener); without one, Resolve fails with
// ErrUnsupportedScheme. When the Opener also names an object's current
// version (a Versioner: ETag and size, from a HEAD), the index maps
// (URL, version) to the model directory, so each version of a remote
// object is downloaded once, across instances and restarts; otherwise it
// is downloaded on every Resolve. Either way it is unpacked only once per
// content.
//
// artifact imports nothing from inferbox; it must not import runtime, pool,
// modes or adapters.
package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnsupportedScheme is wrapped by Resolve errors for URL schemes with no
// Opener configured.
var ErrUnsupportedScheme = errors.New("unsupported scheme")

// Opener reads an object named by a URL of a scheme the cache does not read
// itself (s3://, https://). The caller closes the reader.
type Opener interface {
	Open(ctx context.Context, url string) (io.ReadCloser, error)
}

// Versioner is implemented by Openers that can name an object's current
// version cheaply (without reading it), e.g. its ETag and size.
type Versioner interface {
	Version(ctx context.Context, url string) (string, error)
}

// Option configures a Cache.
type Option func(*Cache)

// WithOpener makes Resolve read URLs of scheme (e.g. "s3") through o.
func WithOpener(scheme string, o Opener) Option {
	return func(c *Cache) { c.openers[strings.ToLower(scheme)] = o }
}

// WithMaxUnpackedBytes bounds the total size of the files in one archive
// (default 64 GiB): a sanity limit against archive bombs.
func WithMaxUnpackedBytes(n int64) Option {
	return func(c *Cache) { c.maxBytes = n }
}

const (
	defaultMaxBytes = 64 << 30
	maxEntries      = 1_000_000
	staleTemp       = 24 * time.Hour // tmp entries older than this are removed at start
)

// Cache resolves ModelDataUrls to local directories. It is safe for
// concurrent use.
type Cache struct {
	root     string
	logger   *slog.Logger
	openers  map[string]Opener
	maxBytes int64

	mu       sync.Mutex
	inflight map[string]*call // by index key (local) or content name

	unpacks   atomic.Int64 // archives unpacked by this Cache, for tests
	downloads atomic.Int64 // remote objects downloaded by this Cache, for tests
}

type call struct {
	done chan struct{}
	dir  string
	err  error
}

// NewCache opens (creating if needed) a cache rooted at dir. It removes
// work-in-progress directories left by a crash more than a day ago.
func NewCache(dir string, logger *slog.Logger, opts ...Option) (*Cache, error) {
	if dir == "" {
		return nil, errors.New("artifact cache: no directory given")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact cache %q: %w", dir, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		root:     root,
		logger:   logger.With("component", "artifact"),
		openers:  map[string]Opener{},
		maxBytes: defaultMaxBytes,
		inflight: map[string]*call{},
	}
	for _, o := range opts {
		o(c)
	}
	for _, d := range []string{root, c.tmpDir(), c.indexDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("artifact cache: %w", err)
		}
	}
	c.removeStaleTemp()
	return c, nil
}

func (c *Cache) tmpDir() string   { return filepath.Join(c.root, "tmp") }
func (c *Cache) indexDir() string { return filepath.Join(c.root, "index") }

func (c *Cache) removeStaleTemp() {
	entries, err := os.ReadDir(c.tmpDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < staleTemp {
			continue
		}
		p := filepath.Join(c.tmpDir(), e.Name())
		if err := os.RemoveAll(p); err != nil {
			c.logger.Warn("removing stale temporary entry", "path", p, "err", err)
		}
	}
}

// Resolve returns a directory holding the model named by modelDataURL: a
// plain path, a file:// URL with an absolute path, or a URL of a scheme
// with an Opener. The directory must not be modified by the caller.
func (c *Cache) Resolve(ctx context.Context, modelDataURL string) (string, error) {
	if modelDataURL == "" {
		return "", errors.New("empty ModelDataUrl")
	}
	if !strings.Contains(modelDataURL, "://") {
		return c.resolveLocal(ctx, modelDataURL)
	}
	u, err := url.Parse(modelDataURL)
	if err != nil {
		return "", fmt.Errorf("ModelDataUrl %q: %w", modelDataURL, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "file" {
		if (u.Host != "" && u.Host != "localhost") || !path.IsAbs(u.Path) {
			return "", fmt.Errorf("ModelDataUrl %q: a file URL needs an absolute path (file:///...)", modelDataURL)
		}
		return c.resolveLocal(ctx, filepath.FromSlash(u.Path))
	}
	o, ok := c.openers[scheme]
	if !ok {
		return "", fmt.Errorf("%w %s in ModelDataUrl %q: object storage is not configured", ErrUnsupportedScheme, scheme, modelDataURL)
	}
	return c.resolveRemote(ctx, o, modelDataURL, path.Base(u.Path))
}

func (c *Cache) resolveLocal(ctx context.Context, p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("ModelDataUrl %q: %w", p, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("ModelDataUrl: %w", err)
	}
	if fi.IsDir() {
		return abs, nil
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("ModelDataUrl %s: not a regular file or directory", abs)
	}
	key := hashString(abs + "\x00" + strconv.FormatInt(fi.Size(), 10) + "\x00" + strconv.FormatInt(fi.ModTime().UnixNano(), 10))
	return c.once(ctx, key, func(ctx context.Context) (string, error) {
		if name, ok := c.readIndex(key); ok {
			return filepath.Join(c.root, name), nil
		}
		dir, err := c.materialize(ctx, abs, filepath.Base(abs))
		if err != nil {
			return "", err
		}
		c.writeIndex(key, filepath.Base(dir))
		return dir, nil
	})
}

// resolveRemote returns the directory for the object's current version
// when the index has it; otherwise it downloads the object.
func (c *Cache) resolveRemote(ctx context.Context, o Opener, rawURL, base string) (string, error) {
	v, ok := o.(Versioner)
	if !ok {
		return c.download(ctx, o, rawURL, base)
	}
	version, err := v.Version(ctx, rawURL)
	if err != nil {
		return "", fmt.Errorf("ModelDataUrl %q: %w", rawURL, err)
	}
	key := hashString("remote\x00" + rawURL + "\x00" + version)
	return c.once(ctx, key, func(ctx context.Context) (string, error) {
		if name, ok := c.readIndex(key); ok {
			return filepath.Join(c.root, name), nil
		}
		dir, err := c.download(ctx, o, rawURL, base)
		if err != nil {
			return "", err
		}
		c.writeIndex(key, filepath.Base(dir))
		return dir, nil
	})
}

// download copies the object into the cache's tmp directory, then treats
// it like a local file.
func (c *Cache) download(ctx context.Context, o Opener, rawURL, base string) (string, error) {
	c.downloads.Add(1)
	rc, err := o.Open(ctx, rawURL)
	if err != nil {
		return "", fmt.Errorf("ModelDataUrl %q: %w", rawURL, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(c.tmpDir(), "download-")
	if err != nil {
		return "", fmt.Errorf("artifact cache: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, ctxReader{ctx, rc})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("download %q: %w", rawURL, err)
	}
	if base == "" || base == "." || base == "/" {
		base = "model"
	}
	return c.materialize(ctx, f.Name(), base)
}

// once runs fn for key unless a run for key is in progress, in which case
// it waits for that run's result. A waiter whose own ctx is still live
// retries when the run it waited for was cancelled by its own caller.
func (c *Cache) once(ctx context.Context, key string, fn func(context.Context) (string, error)) (string, error) {
	for {
		c.mu.Lock()
		cl, running := c.inflight[key]
		if !running {
			cl = &call{done: make(chan struct{})}
			c.inflight[key] = cl
		}
		c.mu.Unlock()
		if !running {
			cl.dir, cl.err = fn(ctx)
			c.mu.Lock()
			delete(c.inflight, key)
			c.mu.Unlock()
			close(cl.done)
			return cl.dir, cl.err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-cl.done:
		}
		if cl.err != nil && (errors.Is(cl.err, context.Canceled) || errors.Is(cl.err, context.DeadlineExceeded)) {
			continue
		}
		return cl.dir, cl.err
	}
}

// materialize makes the model directory for the file at src (named base in
// messages and in the directory) and returns its path.
func (c *Cache) materialize(ctx context.Context, src, base string) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("ModelDataUrl: %w", err)
	}
	defer f.Close()
	magic := make([]byte, 2)
	n, _ := io.ReadFull(f, magic)
	isGzip := n == 2 && bytes.Equal(magic, []byte{0x1f, 0x8b})
	if !isGzip && (strings.HasSuffix(base, ".tar.gz") || strings.HasSuffix(base, ".tgz")) {
		return "", fmt.Errorf("ModelDataUrl %s: named like a .tar.gz archive but is not gzip-compressed", src)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return "", fmt.Errorf("read %s: %w", src, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	name := sum
	if !isGzip {
		// The base name is part of the content: the same bytes under two
		// names are two model directories.
		name = hashString("file\x00" + base + "\x00" + sum)
	}
	dest := filepath.Join(c.root, name)
	return c.once(ctx, "content:"+name, func(ctx context.Context) (string, error) {
		if _, err := os.Stat(dest); err == nil {
			return dest, nil
		}
		tmp, err := os.MkdirTemp(c.tmpDir(), name[:12]+"-")
		if err != nil {
			return "", fmt.Errorf("artifact cache: %w", err)
		}
		if isGzip {
			err = c.unpack(ctx, src, tmp)
		} else {
			err = placeFile(ctx, src, filepath.Join(tmp, base))
		}
		if err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
		if err := os.Rename(tmp, dest); err != nil {
			os.RemoveAll(tmp)
			if _, serr := os.Stat(dest); serr != nil {
				return "", fmt.Errorf("artifact cache: %w", err)
			}
			// Another process got there first; its copy is as good.
		}
		return dest, nil
	})
}

func (c *Cache) unpack(ctx context.Context, src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("ModelDataUrl: %w", err)
	}
	defer f.Close()
	start := time.Now()
	files, size, err := untar(ctx, f, dst, c.maxBytes)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", src, err)
	}
	c.unpacks.Add(1)
	c.logger.Info("unpacked model archive", "archive", src, "files", files, "bytes", size, "took", time.Since(start))
	return nil
}

// placeFile hard-links src to dst, or copies it when linking fails (another
// file system, or links not allowed).
func placeFile(ctx context.Context, src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, ctxReader{ctx, in})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

func (c *Cache) readIndex(key string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(c.indexDir(), key))
	if err != nil {
		return "", false
	}
	name := strings.TrimSpace(string(b))
	if !isHexName(name) {
		return "", false
	}
	if fi, err := os.Stat(filepath.Join(c.root, name)); err != nil || !fi.IsDir() {
		return "", false
	}
	return name, true
}

// writeIndex records name for key; a failure only costs a re-hash later.
func (c *Cache) writeIndex(key, name string) {
	f, err := os.CreateTemp(c.tmpDir(), "index-")
	if err == nil {
		_, err = f.WriteString(name + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(c.indexDir(), key))
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}
	if err != nil {
		c.logger.Warn("writing cache index", "err", err)
	}
}

func hashString(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func isHexName(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// ctxReader stops a long copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
