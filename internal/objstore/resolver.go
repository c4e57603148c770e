package objstore

import (
	"context"
	"fmt"
	"io"
	"strconv"
)

// Objects is a bucket/key backend: Embedded or External.
type Objects interface {
	GetObject(ctx context.Context, bucket, key string, rng *Range) (io.ReadCloser, Info, error)
	PutObject(ctx context.Context, bucket, key string, r io.Reader, opts PutOptions) (Info, error)
	HeadObject(ctx context.Context, bucket, key string) (Info, error)
	DeleteObject(ctx context.Context, bucket, key string) error
	ListObjects(ctx context.Context, bucket, prefix string, opts ListOptions) (ListPage, error)
}

var (
	_ Objects = (*Embedded)(nil)
	_ Objects = (*External)(nil)
	_ Store   = (*Resolver)(nil)
)

// Resolver is the Store every mode uses: plain paths and file:// URIs go
// to the local file system, s3:// URIs to the configured Objects backend
// (the embedded store by default, an External service by configuration).
type Resolver struct {
	s3    Objects
	files files
}

// NewResolver returns a Resolver sending s3:// URIs to s3 (nil: s3:// URIs
// fail with ErrUnsupported).
func NewResolver(s3 Objects) *Resolver { return &Resolver{s3: s3} }

func (r *Resolver) loc(uri string) (Location, error) {
	l, err := Parse(uri)
	if err != nil {
		return l, err
	}
	if l.Scheme == "s3" && r.s3 == nil {
		return l, fmt.Errorf("%w: s3:// storage is not configured", ErrUnsupported)
	}
	return l, nil
}

// Open streams the object at uri (or the part rng names).
func (r *Resolver) Open(ctx context.Context, uri string, rng *Range) (io.ReadCloser, Info, error) {
	l, err := r.loc(uri)
	if err != nil {
		return nil, Info{}, err
	}
	if l.Scheme == "file" {
		return r.files.open(ctx, l.Key, rng)
	}
	return r.s3.GetObject(ctx, l.Bucket, l.Key, rng)
}

// Put writes the object at uri atomically.
func (r *Resolver) Put(ctx context.Context, uri string, body io.Reader, opts PutOptions) (Info, error) {
	l, err := r.loc(uri)
	if err != nil {
		return Info{}, err
	}
	if l.Scheme == "file" {
		return r.files.put(ctx, l.Key, body, opts)
	}
	return r.s3.PutObject(ctx, l.Bucket, l.Key, body, opts)
}

// Head describes the object at uri.
func (r *Resolver) Head(ctx context.Context, uri string) (Info, error) {
	l, err := r.loc(uri)
	if err != nil {
		return Info{}, err
	}
	if l.Scheme == "file" {
		rc, info, err := r.files.open(ctx, l.Key, nil)
		if err != nil {
			return Info{}, err
		}
		rc.Close()
		return info, nil
	}
	return r.s3.HeadObject(ctx, l.Bucket, l.Key)
}

// List returns a page of the objects under prefixURI. For s3:// the
// prefix is a key prefix; for files it is a path prefix ("dir/" lists a
// directory's tree, "dir/part" the names starting with "part").
func (r *Resolver) List(ctx context.Context, prefixURI string, opts ListOptions) (ListPage, error) {
	l, err := r.loc(prefixURI)
	if err != nil {
		return ListPage{}, err
	}
	if l.Scheme == "file" {
		return r.files.list(ctx, l.Key, opts)
	}
	page, err := r.s3.ListObjects(ctx, l.Bucket, l.Key, opts)
	for i := range page.Objects {
		page.Objects[i].URI = S3URI(l.Bucket, page.Objects[i].Key)
	}
	return page, err
}

// Delete removes the object at uri.
func (r *Resolver) Delete(ctx context.Context, uri string) error {
	l, err := r.loc(uri)
	if err != nil {
		return err
	}
	if l.Scheme == "file" {
		return r.files.delete(ctx, l.Key)
	}
	return r.s3.DeleteObject(ctx, l.Bucket, l.Key)
}

// URLOpener adapts a Store to the artifact cache's Opener: Open reads a
// whole object; Version names its current content (ETag and size) so the
// cache downloads each version once.
type URLOpener struct{ Store Store }

// Open streams the object at url.
func (o URLOpener) Open(ctx context.Context, url string) (io.ReadCloser, error) {
	rc, _, err := o.Store.Open(ctx, url, nil)
	return rc, err
}

// Version returns "<etag>-<size>" for the object at url.
func (o URLOpener) Version(ctx context.Context, url string) (string, error) {
	info, err := o.Store.Head(ctx, url)
	if err != nil {
		return "", err
	}
	return info.ETag + "/" + strconv.FormatInt(info.Size, 10), nil
}
