package objstore

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Multipart uploads (S3's CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload) live in <root>/.uploads/<id>/. A part of the
// upload's common part size is written in place into the upload's data
// file, which Complete renames into place (inplace.go); any other part is
// written like an object, into <root>/.uploads/<id>/<part number>, and
// Complete then streams the parts, in order, into one atomic write of the
// final object. Either way the object appears only on Complete, and the
// upload is removed.

// MinPartSize is the smallest part S3 accepts, except for the last one.
const MinPartSize = 5 << 20

// MaxParts is the highest part number.
const MaxParts = 10000

// Upload is an upload in progress.
type Upload struct {
	ID          string            `json:"id"`
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	ContentType string            `json:"content_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Initiated   time.Time         `json:"initiated"`
}

// Part is an uploaded part.
type Part struct {
	Number       int
	ETag         string // unquoted hex MD5
	Size         int64
	LastModified time.Time
}

func (e *Embedded) uploadDir(id string) (string, error) {
	if len(id) != 32 {
		return "", ErrNoSuchUpload
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", ErrNoSuchUpload
	}
	return filepath.Join(e.uploadsDir(), id), nil
}

// CreateUpload starts a multipart upload of bucket/key.
func (e *Embedded) CreateUpload(ctx context.Context, bucket, key string, opts PutOptions) (Upload, error) {
	if _, err := e.objectPath(bucket, key); err != nil {
		return Upload{}, err
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	u := Upload{ID: hex.EncodeToString(b[:]), Bucket: bucket, Key: key, ContentType: opts.ContentType, Metadata: opts.Metadata, Initiated: time.Now().UTC()}
	dir := filepath.Join(e.uploadsDir(), u.ID)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return Upload{}, classify(err)
	}
	data, _ := json.Marshal(u)
	if err := os.WriteFile(filepath.Join(dir, "upload.json"), data, 0o644); err != nil {
		os.RemoveAll(dir)
		return Upload{}, classify(err)
	}
	return u, nil
}

// upload reads an upload and checks it belongs to bucket/key.
func (e *Embedded) upload(bucket, key, id string) (Upload, string, error) {
	dir, err := e.uploadDir(id)
	if err != nil {
		return Upload{}, "", fmt.Errorf("%w: %s", ErrNoSuchUpload, id)
	}
	data, err := os.ReadFile(filepath.Join(dir, "upload.json"))
	if err != nil {
		return Upload{}, "", fmt.Errorf("%w: %s", ErrNoSuchUpload, id)
	}
	var u Upload
	if err := json.Unmarshal(data, &u); err != nil || u.Bucket != bucket || u.Key != key {
		return Upload{}, "", fmt.Errorf("%w: %s", ErrNoSuchUpload, id)
	}
	return u, dir, nil
}

func partName(n int) string { return fmt.Sprintf("%05d", n) }

// UploadPart writes part n (1..10000) of an upload from r, replacing an
// earlier part n. size is the part's length when the caller knows it (a
// Content-Length), else -1; only parts of known length are written in
// place.
func (e *Embedded) UploadPart(ctx context.Context, bucket, key, id string, n int, r io.Reader, size int64, contentMD5 []byte) (Part, error) {
	if n < 1 || n > MaxParts {
		return Part{}, fmt.Errorf("%w: part number %d is not between 1 and %d", ErrInvalidPart, n, MaxParts)
	}
	_, dir, err := e.upload(bucket, key, id)
	if err != nil {
		return Part{}, err
	}
	var etag string
	var fi fs.FileInfo
	if slot, ok := claimRegion(dir, n, size); ok {
		etag, fi, err = e.writeInPlace(ctx, dir, n, slot, r, contentMD5)
		if fi != nil {
			fi = sizedInfo{fi, slot.Size}
		}
		if errors.Is(err, errMoved) || errors.Is(err, fs.ErrNotExist) {
			err = ErrKeyConflict // completed or aborted meanwhile
		}
	} else {
		fi, err = commit(ctx, e.tmpDir(), filepath.Join(dir, partName(n)), objMeta{}, false, func(f *os.File) (string, error) {
			var err error
			etag, err = md5Copy(ctx, f, r, contentMD5)
			return etag, err
		})
	}
	if err != nil {
		if errors.Is(err, ErrKeyConflict) {
			return Part{}, fmt.Errorf("%w: %s", ErrNoSuchUpload, id) // aborted meanwhile
		}
		return Part{}, fmt.Errorf("upload part %d: %w", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "upload.json")); err != nil {
		return Part{}, fmt.Errorf("%w: %s", ErrNoSuchUpload, id)
	}
	return Part{Number: n, ETag: etag, Size: fi.Size(), LastModified: fi.ModTime().UTC()}, nil
}

// ListParts returns an upload and its parts in part-number order.
func (e *Embedded) ListParts(ctx context.Context, bucket, key, id string) (Upload, []Part, error) {
	u, dir, err := e.upload(bucket, key, id)
	if err != nil {
		return Upload{}, nil, err
	}
	parts, err := readParts(dir)
	return u, parts, err
}

// sizedInfo reports an in-place part record with its part's size.
type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (s sizedInfo) Size() int64 { return s.size }

// partRec is a part and where its bytes are: its own file at path, or
// slot of the upload's data file.
type partRec struct {
	Part
	path string
	slot *slotRef
}

func readParts(dir string) ([]Part, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var parts []Part
	for _, d := range des {
		n, err := strconv.Atoi(d.Name())
		if err != nil || !d.Type().IsRegular() {
			continue
		}
		p, err := readPart(filepath.Join(dir, d.Name()), n)
		if err != nil {
			continue
		}
		parts = append(parts, p.Part)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}

func readPart(path string, n int) (partRec, error) {
	f, err := os.Open(path)
	if err != nil {
		return partRec{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return partRec{}, err
	}
	m := getMeta(f, fi)
	p := partRec{Part: Part{Number: n, ETag: m.ETag, Size: fi.Size(), LastModified: fi.ModTime().UTC()}, path: path, slot: m.Slot}
	if m.Slot != nil {
		p.Size = m.Slot.Size
	}
	return p, nil
}

// CompletePart names a part in a CompleteMultipartUpload request.
type CompletePart struct {
	Number int
	ETag   string // quoted or not
}

// CompleteUpload assembles the listed parts into bucket/key and removes
// the upload. Parts must be listed in ascending order, match the uploaded
// ETags, and all but the last be at least MinPartSize.
func (e *Embedded) CompleteUpload(ctx context.Context, bucket, key, id string, list []CompletePart) (Info, error) {
	u, dir, err := e.upload(bucket, key, id)
	if err != nil {
		return Info{}, err
	}
	if len(list) == 0 {
		return Info{}, fmt.Errorf("%w: you must specify at least one part", ErrInvalidPart)
	}
	recs := make([]partRec, len(list))
	var size int64
	sums := md5.New()
	for i := 1; i < len(list); i++ {
		if list[i].Number <= list[i-1].Number {
			return Info{}, ErrPartOrder
		}
	}
	for i, cp := range list {
		p, err := readPart(filepath.Join(dir, partName(cp.Number)), cp.Number)
		if cp.Number < 1 || cp.Number > MaxParts || err != nil || p.ETag != strings.Trim(cp.ETag, `"`) {
			return Info{}, fmt.Errorf("%w: part %d was not found or its ETag does not match", ErrInvalidPart, cp.Number)
		}
		if i < len(list)-1 && p.Size < MinPartSize {
			return Info{}, fmt.Errorf("%w: part %d is %d bytes", ErrEntityTooSmall, cp.Number, p.Size)
		}
		raw, _ := hex.DecodeString(p.ETag)
		sums.Write(raw)
		recs[i], size = p, size+p.Size
	}
	dst, err := e.objectPath(bucket, key)
	if err != nil {
		return Info{}, err
	}
	meta := objMeta{
		ETag:        hex.EncodeToString(sums.Sum(nil)) + "-" + strconv.Itoa(len(list)),
		ContentType: u.ContentType, Metadata: u.Metadata,
		Parts: uniformLayout(recs),
	}
	var fi fs.FileInfo
	if inPlaceWhole(dir, recs) {
		fi, err = e.completeInPlace(ctx, dir, dst, size, meta)
	} else {
		fi, err = commit(ctx, e.tmpDir(), dst, meta, true, func(f *os.File) (string, error) {
			for _, p := range recs {
				var err error
				if p.slot != nil {
					err = appendRange(ctx, f, dir, *p.slot)
				} else {
					err = appendFile(ctx, f, p.path)
				}
				if err != nil {
					return "", err
				}
			}
			return "", nil
		})
	}
	if err != nil {
		return Info{}, fmt.Errorf("complete upload to s3://%s/%s: %w", bucket, key, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		e.log.Warn("removing completed upload", "upload", id, "err", err)
	}
	return fileInfo(bucket, key, fi, meta), nil
}

// appendFile copies the file at path onto the end of f (copy_file_range
// where the kernel can, so the bytes do not pass through user space).
func appendFile(ctx context.Context, f *os.File, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ErrNoSuchUpload // aborted meanwhile
		}
		return err
	}
	defer in.Close()
	_, err = io.Copy(f, in)
	return err
}

// AbortUpload discards an upload and its parts.
func (e *Embedded) AbortUpload(ctx context.Context, bucket, key, id string) error {
	_, dir, err := e.upload(bucket, key, id)
	if err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// uniformLayout is the part layout of parts that all have one size but
// the last (what the AWS CLI and SDKs upload), or nil.
func uniformLayout(recs []partRec) *PartLayout {
	l := &PartLayout{Count: len(recs), Size: recs[0].Size}
	for i, p := range recs {
		if (i < len(recs)-1 && p.Size != l.Size) || (i == len(recs)-1 && p.Size > l.Size) {
			return nil
		}
	}
	return l
}
