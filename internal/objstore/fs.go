package objstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// metaXattr is the extended attribute holding an object's ETag, content
// type and user metadata. An xattr is written on the temporary file before
// the rename, so data and metadata appear together, atomically; a sidecar
// file would need a second rename that readers could see half done.
const metaXattr = "user.inferbox.object"

// maxMetaBytes bounds the metadata S3 accepts (2 KB of user metadata) plus
// room for the content type and ETag; it also fits one ext4 xattr block.
const maxMetaBytes = 3072

type objMeta struct {
	ETag        string            `json:"etag"`
	ContentType string            `json:"content_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Slot is set on the record of a multipart part written in place in
	// its upload's data file (see inplace.go).
	Slot *slotRef `json:"slot,omitempty"`
	// Parts is a completed multipart object's layout.
	Parts *PartLayout `json:"parts,omitempty"`
}

func setMeta(f *os.File, m objMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > maxMetaBytes {
		return fmt.Errorf("%w: metadata of %d bytes is over the limit", ErrInvalidKey, len(b))
	}
	if err := unix.Fsetxattr(int(f.Fd()), metaXattr, b, 0); err != nil {
		return fmt.Errorf("store object metadata (the data directory's file system needs user extended attributes): %w", err)
	}
	return nil
}

// getMeta reads f's metadata; a file put there by hand has none, and gets
// an ETag derived from its size and modification time.
func getMeta(f *os.File, fi fs.FileInfo) objMeta {
	buf := make([]byte, maxMetaBytes+512)
	n, err := unix.Fgetxattr(int(f.Fd()), metaXattr, buf)
	var m objMeta
	if err == nil && json.Unmarshal(buf[:n], &m) == nil && m.ETag != "" {
		return m
	}
	sum := md5.Sum([]byte(strconv.FormatInt(fi.Size(), 10) + ":" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)))
	return objMeta{ETag: hex.EncodeToString(sum[:])}
}

// probeXattr fails when dir's file system cannot keep object metadata.
func probeXattr(dir string) error {
	f, err := os.CreateTemp(dir, "probe-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	return setMeta(f, objMeta{ETag: "probe"})
}

// classify maps file-system errors to the package's sentinels.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// commit writes a new file at dst atomically: write fills a temporary file
// in tmpDir (same file system) and returns the ETag; the file gets its
// metadata, is synced and renamed over dst. On any failure the temporary
// file is removed and dst is untouched.
//
// durable syncs the file before the rename; multipart parts skip it (they
// are temporary; the completed object is synced).
func commit(ctx context.Context, tmpDir, dst string, meta objMeta, durable bool, write func(f *os.File) (string, error)) (fi fs.FileInfo, err error) {
	f, err := os.CreateTemp(tmpDir, "put-")
	if err != nil {
		return nil, classify(err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	etag, err := write(f)
	if err != nil {
		return nil, classify(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if meta.ETag == "" {
		meta.ETag = etag
	}
	if err := setMeta(f, meta); err != nil {
		return nil, classify(err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			return nil, classify(err)
		}
	}
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, classify(err)
	}
	if err := place(tmp, dst); err != nil {
		return nil, err
	}
	return fi, nil
}

// place renames tmp to dst, creating dst's parent directories. A delete
// may remove an empty parent between MkdirAll and Rename, so it retries.
func place(tmp, dst string) error {
	var err error
	for range 5 {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: a parent of this key is an object", ErrKeyConflict)
			}
			return classify(err)
		}
		err = os.Rename(tmp, dst)
		if err == nil {
			syncDir(filepath.Dir(dst))
			return nil
		}
		switch {
		case errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
			return fmt.Errorf("%w: keys exist under this key followed by /", ErrKeyConflict)
		case errors.Is(err, syscall.ENOTDIR):
			return fmt.Errorf("%w: a parent of this key is an object", ErrKeyConflict)
		case !errors.Is(err, fs.ErrNotExist):
			return classify(err)
		}
	}
	return err
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// md5Copy copies r into f and returns the hex MD5 of what it copied.
func md5Copy(ctx context.Context, f io.Writer, r io.Reader, want []byte) (string, error) {
	h := md5.New()
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, r}, buf); err != nil {
		return "", err
	}
	sum := h.Sum(nil)
	if want != nil && !equalBytes(sum, want) {
		return "", ErrBadDigest
	}
	return hex.EncodeToString(sum), nil
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

// removeEmptyParents removes dir and its parents up to (not including)
// stop while they are empty.
func removeEmptyParents(dir, stop string) {
	for dir != stop && len(dir) > len(stop) {
		if err := os.Remove(dir); err != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// removeStale removes entries of dir older than age (left by a crash).
func removeStale(dir string, age time.Duration) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}
