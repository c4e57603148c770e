package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// files serves plain paths and file:// URIs: objects are the files
// themselves, keys are their paths. Writes are atomic (a temporary file in
// the destination's directory, renamed over it); content type and
// metadata are kept in an extended attribute when the file system allows.
type files struct{}

const localTempPrefix = ".inferbox-tmp-"

func (files) open(ctx context.Context, p string, rng *Range) (io.ReadCloser, Info, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, Info{}, fmt.Errorf("%w: %s", ErrNotFound, p)
		}
		return nil, Info{}, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, Info{}, fmt.Errorf("%w: %s is not a regular file", ErrNotFound, p)
	}
	info := localInfo(p, fi, getMeta(f, fi))
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

func (fs_ files) put(ctx context.Context, p string, r io.Reader, opts PutOptions) (Info, error) {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Info{}, classify(err)
	}
	f, err := os.CreateTemp(dir, localTempPrefix)
	if err != nil {
		return Info{}, classify(err)
	}
	tmp := f.Name()
	fail := func(err error) (Info, error) {
		f.Close()
		os.Remove(tmp)
		return Info{}, fmt.Errorf("put %s: %w", p, classify(err))
	}
	etag, err := md5Copy(ctx, f, r, opts.ContentMD5)
	if err != nil {
		return fail(err)
	}
	meta := objMeta{ETag: etag, ContentType: opts.ContentType, Metadata: opts.Metadata}
	_ = setMeta(f, meta) // best effort: local files need no metadata
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return Info{}, fmt.Errorf("put %s: %w", p, classify(err))
	}
	syncDir(dir)
	return localInfo(p, fi, meta), nil
}

func (files) delete(ctx context.Context, p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (files) list(ctx context.Context, prefix string, opts ListOptions) (ListPage, error) {
	l := newLister(prefix, opts)
	l.decode = func(name string) (string, bool) { return name, !strings.HasPrefix(name, localTempPrefix) }
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
		return localInfo(key, fi, getMeta(f, fi)), true
	}
	dirKey := prefix[:strings.LastIndex(prefix, "/")+1]
	start := dirKey
	if start == "" {
		start = "."
	}
	return l.result(l.walk(start, dirKey))
}

func localInfo(p string, fi fs.FileInfo, m objMeta) Info {
	ct := m.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	return Info{URI: p, Key: p, Size: fi.Size(), ETag: m.ETag, LastModified: fi.ModTime().UTC(), ContentType: ct, Metadata: m.Metadata}
}
