package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Embedded is the default backend for s3:// URIs: buckets are directories
// and objects are plain files under its root, so a model uploaded with
// `aws s3 cp` can be read with `ls` and `cat`:
//
//	<root>/<bucket>/<key>      an object; "/" in keys makes directories
//	<root>/.tmp/               writes in progress, renamed into place
//	<root>/.uploads/<id>/      a multipart upload: upload.json and parts
//
// A key's segments map to path elements (see ValidateKey for what is
// refused); an empty segment ("dir/" keys) is stored as "%". Metadata (ETag,
// content type, x-amz-meta-*) is kept in an extended attribute of the
// object's file. Because a name cannot be both a file and a directory, the
// keys "a" and "a/b" cannot both exist: the second write fails with
// ErrKeyConflict.
//
// Embedded is safe for concurrent use; it keeps no state in memory.
type Embedded struct {
	root string
	log  *slog.Logger
}

// Bucket is a bucket and when it was created.
type Bucket struct {
	Name    string
	Created time.Time
}

// createdXattr records a bucket directory's creation time.
const createdXattr = "user.inferbox.created"

// OpenEmbedded opens (creating) an embedded store rooted at dir. It fails
// when the file system cannot hold object metadata in extended attributes.
func OpenEmbedded(dir string, log *slog.Logger) (*Embedded, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Embedded{root: root, log: log}
	for _, d := range []string{root, e.tmpDir(), e.uploadsDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("object store: %w", err)
		}
	}
	if err := probeXattr(e.tmpDir()); err != nil {
		return nil, fmt.Errorf("object store %s: %w", root, err)
	}
	removeStale(e.tmpDir(), time.Hour)
	return e, nil
}

// Root is the directory the store keeps its buckets in.
func (e *Embedded) Root() string { return e.root }

func (e *Embedded) tmpDir() string     { return filepath.Join(e.root, ".tmp") }
func (e *Embedded) uploadsDir() string { return filepath.Join(e.root, ".uploads") }

func (e *Embedded) bucketDir(bucket string) (string, error) {
	if err := ValidateBucket(bucket); err != nil {
		return "", err
	}
	return filepath.Join(e.root, bucket), nil
}

// objectPath returns the file of bucket/key, checking the bucket exists.
func (e *Embedded) objectPath(bucket, key string) (string, error) {
	dir, err := e.bucketDir(bucket)
	if err != nil {
		return "", err
	}
	rel, err := keyPath(key)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket)
	}
	return filepath.Join(dir, rel), nil
}

// CreateBucket creates a bucket; ErrBucketExists if it exists.
func (e *Embedded) CreateBucket(ctx context.Context, bucket string) error {
	dir, err := e.bucketDir(bucket)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrBucketExists, bucket)
		}
		return classify(err)
	}
	_ = unix.Setxattr(dir, createdXattr, []byte(time.Now().UTC().Format(time.RFC3339Nano)), 0)
	return nil
}

// HeadBucket reports whether bucket exists (ErrNoSuchBucket).
func (e *Embedded) HeadBucket(ctx context.Context, bucket string) error {
	dir, err := e.bucketDir(bucket)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket)
	}
	return nil
}

// DeleteBucket removes an empty bucket (ErrBucketNotEmpty otherwise).
func (e *Embedded) DeleteBucket(ctx context.Context, bucket string) error {
	dir, err := e.bucketDir(bucket)
	if err != nil {
		return err
	}
	if err := e.HeadBucket(ctx, bucket); err != nil {
		return err
	}
	if hasObject(dir, segmentKey) {
		return fmt.Errorf("%w: %s", ErrBucketNotEmpty, bucket)
	}
	// Only empty directories may remain: remove them bottom-up, and fail
	// (not empty) if an object arrived meanwhile.
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil {
			if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
				return fmt.Errorf("%w: %s", ErrBucketNotEmpty, bucket)
			}
			return err
		}
	}
	return nil
}

// ListBuckets returns every bucket, by name.
func (e *Embedded) ListBuckets(ctx context.Context) ([]Bucket, error) {
	des, err := os.ReadDir(e.root)
	if err != nil {
		return nil, err
	}
	var out []Bucket
	for _, d := range des {
		if !d.IsDir() || ValidateBucket(d.Name()) != nil {
			continue
		}
		b := Bucket{Name: d.Name()}
		p := filepath.Join(e.root, d.Name())
		buf := make([]byte, 64)
		if n, err := unix.Getxattr(p, createdXattr, buf); err == nil {
			b.Created, _ = time.Parse(time.RFC3339Nano, string(buf[:n]))
		}
		if b.Created.IsZero() {
			if fi, err := d.Info(); err == nil {
				b.Created = fi.ModTime()
			}
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// GetObject opens bucket/key, or the part rng names.
func (e *Embedded) GetObject(ctx context.Context, bucket, key string, rng *Range) (io.ReadCloser, Info, error) {
	p, err := e.objectPath(bucket, key)
	if err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, Info{}, notFound(err, bucket, key)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, Info{}, fmt.Errorf("%w: %s/%s", ErrNotFound, bucket, key)
	}
	info := fileInfo(bucket, key, fi, getMeta(f, fi))
	if rng == nil {
		return f, info, nil
	}
	start, n, err := rng.Resolve(fi.Size())
	if err != nil {
		f.Close()
		return nil, info, err
	}
	rc, err := openRange(f, start, n)
	if err != nil {
		f.Close()
		return nil, info, err
	}
	return rc, info, nil
}

// fileRange is n bytes of a file from its current offset. Its WriteTo
// hands the writer an *io.LimitedReader over the *os.File itself, the
// shape net.TCPConn.ReadFrom (through http's response.ReadFrom) turns into
// sendfile(2); an io.SectionReader would hide the file and copy through
// user space.
type fileRange struct {
	f *os.File
	r io.LimitedReader
}

// openRange positions f at start and returns a reader of its next n
// bytes that closes f.
func openRange(f *os.File, start, n int64) (*fileRange, error) {
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return nil, err
	}
	return &fileRange{f: f, r: io.LimitedReader{R: f, N: n}}, nil
}

func (s *fileRange) Read(p []byte) (int, error)         { return s.r.Read(p) }
func (s *fileRange) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, &s.r) }
func (s *fileRange) Close() error                       { return s.f.Close() }

// HeadObject describes bucket/key.
func (e *Embedded) HeadObject(ctx context.Context, bucket, key string) (Info, error) {
	rc, info, err := e.GetObject(ctx, bucket, key, nil)
	if err != nil {
		return Info{}, err
	}
	rc.Close()
	return info, nil
}

// PutObject writes bucket/key atomically from r; opts.Size is ignored.
func (e *Embedded) PutObject(ctx context.Context, bucket, key string, r io.Reader, opts PutOptions) (Info, error) {
	p, err := e.objectPath(bucket, key)
	if err != nil {
		return Info{}, err
	}
	meta := objMeta{ContentType: opts.ContentType, Metadata: opts.Metadata}
	var etag string
	fi, err := commit(ctx, e.tmpDir(), p, meta, true, func(f *os.File) (string, error) {
		var err error
		etag, err = md5Copy(ctx, f, r, opts.ContentMD5)
		return etag, err
	})
	if err != nil {
		return Info{}, fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	meta.ETag = etag
	return fileInfo(bucket, key, fi, meta), nil
}

// CopyObject copies src to dst. With replace nil the metadata is copied;
// otherwise it is replaced by *replace.
func (e *Embedded) CopyObject(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, replace *PutOptions) (Info, error) {
	src, info, err := e.GetObject(ctx, srcBucket, srcKey, nil)
	if err != nil {
		return Info{}, err
	}
	defer src.Close()
	p, err := e.objectPath(dstBucket, dstKey)
	if err != nil {
		return Info{}, err
	}
	meta := objMeta{ContentType: info.ContentType, Metadata: info.Metadata}
	if replace != nil {
		meta = objMeta{ContentType: replace.ContentType, Metadata: replace.Metadata}
	}
	keepETag := !strings.Contains(info.ETag, "-") // a plain MD5 stays the content's MD5
	if keepETag {
		meta.ETag = info.ETag
	}
	_, err = commit(ctx, e.tmpDir(), p, meta, true, func(f *os.File) (string, error) {
		if keepETag {
			_, err := io.Copy(f, src.(*os.File)) // copy_file_range where the kernel can
			return "", err
		}
		return md5Copy(ctx, f, src, nil)
	})
	if err != nil {
		return Info{}, fmt.Errorf("copy to s3://%s/%s: %w", dstBucket, dstKey, err)
	}
	return e.HeadObject(ctx, dstBucket, dstKey)
}

// DeleteObject removes bucket/key; a missing key is not an error (S3's
// DeleteObject answers 204 either way), a missing bucket is.
func (e *Embedded) DeleteObject(ctx context.Context, bucket, key string) error {
	p, err := e.objectPath(bucket, key)
	if err != nil {
		if errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrKeyTooLong) {
			return nil // such a key cannot exist
		}
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil || fi.IsDir() {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	removeEmptyParents(filepath.Dir(p), filepath.Join(e.root, bucket))
	return nil
}

// ListObjects lists bucket's keys that start with prefix.
func (e *Embedded) ListObjects(ctx context.Context, bucket, prefix string, opts ListOptions) (ListPage, error) {
	dir, err := e.bucketDir(bucket)
	if err != nil {
		return ListPage{}, err
	}
	if err := e.HeadBucket(ctx, bucket); err != nil {
		return ListPage{}, err
	}
	l := newLister(prefix, opts)
	l.decode = segmentKey
	l.info = func(path, key string, d fs.DirEntry) (Info, bool) {
		f, err := os.Open(path)
		if err != nil {
			return Info{}, false
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return Info{}, false
		}
		return fileInfo(bucket, key, fi, getMeta(f, fi)), true
	}
	// Start in the deepest directory the prefix names.
	dirKey := prefix[:strings.LastIndex(prefix, "/")+1]
	start := dir
	if dirKey != "" {
		rel, err := keyPath(strings.TrimSuffix(dirKey, "/"))
		if err != nil {
			return ListPage{}, nil // no key can have this prefix
		}
		start = filepath.Join(dir, rel)
	}
	return l.result(l.walk(start, dirKey))
}

func fileInfo(bucket, key string, fi fs.FileInfo, m objMeta) Info {
	ct := m.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	return Info{
		URI: S3URI(bucket, key), Key: key, Size: fi.Size(), ETag: m.ETag,
		LastModified: fi.ModTime().UTC(), ContentType: ct, Metadata: m.Metadata, Parts: m.Parts,
	}
}

func notFound(err error, bucket, key string) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) {
		return fmt.Errorf("%w: %s/%s", ErrNotFound, bucket, key)
	}
	return err
}
