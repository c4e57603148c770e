// Package objstore is inferbox's object storage: one small interface
// (Store) over plain paths, file:// URIs and s3://bucket/key URIs, an
// embedded S3-style store that keeps objects as files under the data
// directory, and a client for any external S3-compatible service. A
// Resolver picks the backend for a URI.
//
// Semantics every backend keeps:
//
//   - Put is streaming and atomic: the body is written to a temporary
//     object and made visible in one step (a rename, or S3's own commit),
//     so readers see the old object or the new one, never a part. A Put
//     that fails or whose context is cancelled leaves the previous object
//     (or none) in place.
//   - Concurrent Puts to one key: the last one to complete wins; the
//     object is always exactly one writer's bytes.
//   - List returns keys in ascending byte order (as S3 does), in pages.
//   - Open streams; it never loads an object into memory. A Range reads a
//     part of the object.
//
// objstore imports nothing from inferbox; adapters (api/s3) and modes
// import it, never the other way round.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// Store is what the modes (async inference, batch transform, the artifact
// cache) need from object storage. URIs are plain paths, file:///abs/path
// or s3://bucket/key.
type Store interface {
	// Open streams an object, or the part rng names (nil: all of it).
	// Info.Size is the whole object's size.
	Open(ctx context.Context, uri string, rng *Range) (io.ReadCloser, Info, error)
	// Put writes an object atomically from r.
	Put(ctx context.Context, uri string, r io.Reader, opts PutOptions) (Info, error)
	// Head describes an object without reading it.
	Head(ctx context.Context, uri string) (Info, error)
	// List returns one page of the objects whose URIs start with prefixURI.
	List(ctx context.Context, prefixURI string, opts ListOptions) (ListPage, error)
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, uri string) error
}

// Info describes an object.
type Info struct {
	// URI names the object the way it was asked for (s3://b/k, a path).
	URI string
	// Key is the object's key within its bucket (s3) or its path (files).
	Key          string
	Size         int64
	ETag         string // unquoted; hex MD5 for a single PUT, "<md5>-<n>" for multipart
	LastModified time.Time
	ContentType  string
	// Metadata is the user metadata (x-amz-meta-*), lower-case names
	// without the prefix.
	Metadata map[string]string
	// Parts describes a multipart object's part layout (nil otherwise),
	// for GetObject's partNumber.
	Parts *PartLayout
}

// PartLayout is a multipart object's parts: Count parts, all of Size bytes
// but the last, which has the rest. Objects whose parts differ in size
// (other than the last) keep no layout.
type PartLayout struct {
	Count int   `json:"n"`
	Size  int64 `json:"size"`
}

// PartRange returns the byte range of part n (1-based) of an object of
// total bytes; ok is false if there is no such part.
func (p *PartLayout) PartRange(n int, total int64) (r Range, ok bool) {
	if p == nil || n < 1 || n > p.Count {
		return Range{}, false
	}
	start := int64(n-1) * p.Size
	end := start + p.Size - 1
	if n == p.Count {
		end = total - 1
	}
	if start > end {
		return Range{}, false
	}
	return Range{Start: start, End: end}, true
}

// PutOptions are an object's attributes set at write time.
type PutOptions struct {
	ContentType string
	Metadata    map[string]string
	// Size is the body's length when known (-1 or 0 with an unknown body:
	// streamed until EOF). External S3 uses it to pick single or multipart.
	Size int64
	// ContentMD5, when set, is the MD5 the body must have (Content-MD5);
	// a mismatch fails the write with ErrBadDigest.
	ContentMD5 []byte
}

// ListOptions select a page of a listing.
type ListOptions struct {
	// Delimiter groups keys that contain it after the prefix into
	// CommonPrefixes (usually "/").
	Delimiter string
	// StartAfter lists keys strictly after this key.
	StartAfter string
	// Token continues a listing from ListPage.NextToken.
	Token string
	// MaxKeys bounds Objects+CommonPrefixes (default and maximum 1000).
	MaxKeys int
}

// ListPage is one page of a listing.
type ListPage struct {
	Objects        []Info
	CommonPrefixes []string // full prefixes in the key space (s3: keys; files: paths)
	// NextToken is non-empty when the listing is truncated.
	NextToken string
}

// Range is a byte range as HTTP names it: Start..End inclusive. End -1
// reads to the end; a negative Start reads the last -Start bytes.
type Range struct {
	Start, End int64
}

// Resolve returns the first byte and length of r within an object of
// size bytes, or ErrInvalidRange when r selects nothing.
func (r Range) Resolve(size int64) (start, length int64, err error) {
	if r.Start < 0 {
		n := min(-r.Start, size)
		if n == 0 {
			return 0, 0, ErrInvalidRange
		}
		return size - n, n, nil
	}
	if r.Start >= size {
		return 0, 0, ErrInvalidRange
	}
	end := r.End
	if end < 0 || end >= size {
		end = size - 1
	}
	if end < r.Start {
		return 0, 0, ErrInvalidRange
	}
	return r.Start, end - r.Start + 1, nil
}

// Errors callers branch on; wrapped with context.
var (
	ErrNotFound       = errors.New("no such key")
	ErrNoSuchBucket   = errors.New("no such bucket")
	ErrBucketExists   = errors.New("bucket already exists")
	ErrBucketNotEmpty = errors.New("bucket not empty")
	ErrInvalidBucket  = errors.New("invalid bucket name")
	ErrInvalidKey     = errors.New("invalid key")
	ErrKeyTooLong     = errors.New("key too long")
	ErrKeyConflict    = errors.New("key conflicts with another key")
	ErrInvalidRange   = errors.New("range not satisfiable")
	ErrNoSpace        = errors.New("storage full")
	ErrNoSuchUpload   = errors.New("no such upload")
	ErrInvalidPart    = errors.New("invalid part")
	ErrPartOrder      = errors.New("parts not in ascending order")
	ErrEntityTooSmall = errors.New("part too small")
	ErrBadDigest      = errors.New("content digest mismatch")
	ErrUnsupported    = errors.New("unsupported URI")
)

// Location is a parsed storage URI.
type Location struct {
	Scheme string // "file" (plain paths too) or "s3"
	Bucket string // s3 only
	Key    string // s3: the key; file: the absolute or relative path
}

// Parse splits a URI into a Location. Plain paths and file:// URIs are
// files; s3://bucket/key is an object. Other schemes are ErrUnsupported.
func Parse(uri string) (Location, error) {
	if !strings.Contains(uri, "://") {
		if uri == "" {
			return Location{}, fmt.Errorf("%w: empty", ErrUnsupported)
		}
		return Location{Scheme: "file", Key: uri}, nil
	}
	scheme, rest, _ := strings.Cut(uri, "://")
	switch strings.ToLower(scheme) {
	case "file":
		u, err := url.Parse(uri)
		if err != nil {
			return Location{}, fmt.Errorf("%w: %q: %v", ErrUnsupported, uri, err)
		}
		if (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") {
			return Location{}, fmt.Errorf("%w: %q: a file URI needs an absolute path (file:///...)", ErrUnsupported, uri)
		}
		return Location{Scheme: "file", Key: u.Path}, nil
	case "s3":
		// Keys are taken verbatim (no percent-decoding), as the AWS CLI does.
		bucket, key, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return Location{}, fmt.Errorf("%w: %q: no bucket", ErrInvalidBucket, uri)
		}
		return Location{Scheme: "s3", Bucket: bucket, Key: key}, nil
	}
	return Location{}, fmt.Errorf("%w: scheme %q in %q", ErrUnsupported, scheme, uri)
}

// S3URI formats s3://bucket/key.
func S3URI(bucket, key string) string { return "s3://" + bucket + "/" + key }

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
