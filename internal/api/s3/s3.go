// Package s3 is the S3 REST API adapter: enough of Amazon S3's wire
// protocol (path-style and virtual-host-style addressing, XML bodies,
// S3's error codes, SigV4 with unsigned, signed and streaming
// aws-chunked payloads) for the AWS CLI and SDKs to use inferbox's embedded
// object store. It translates requests to calls on a Store and holds no
// storage logic of its own.
//
// It imports objstore, awsproto and apierr; it must not import modes, the
// pool or the server.
package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/objstore"
)

// Store is what the adapter needs from object storage (objstore.Embedded).
type Store interface {
	CreateBucket(ctx context.Context, bucket string) error
	HeadBucket(ctx context.Context, bucket string) error
	DeleteBucket(ctx context.Context, bucket string) error
	ListBuckets(ctx context.Context) ([]objstore.Bucket, error)

	objstore.Objects
	CopyObject(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, replace *objstore.PutOptions) (objstore.Info, error)

	CreateUpload(ctx context.Context, bucket, key string, opts objstore.PutOptions) (objstore.Upload, error)
	UploadPart(ctx context.Context, bucket, key, id string, n int, r io.Reader, size int64, contentMD5 []byte) (objstore.Part, error)
	ListParts(ctx context.Context, bucket, key, id string) (objstore.Upload, []objstore.Part, error)
	CompleteUpload(ctx context.Context, bucket, key, id string, parts []objstore.CompletePart) (objstore.Info, error)
	AbortUpload(ctx context.Context, bucket, key, id string) error
}

var _ Store = (*objstore.Embedded)(nil)

// Verifier checks a request's SigV4 signature (awsproto.Verifier).
type Verifier interface {
	Verify(r *http.Request) (awsproto.Identity, error)
}

// Options configure the adapter.
type Options struct {
	// Region is reported by GetBucketLocation and HeadBucket.
	Region string
	// Domains are the host names under which <bucket>.<domain> addresses
	// a bucket (virtual-host style), e.g. "localhost".
	Domains []string
	// MaxObjectBytes bounds one PUT or part (default 5 GiB, as S3).
	MaxObjectBytes int64
}

// Handler serves the S3 API.
type Handler struct {
	store  Store
	verify Verifier
	log    *slog.Logger
	opts   Options
}

// New returns the S3 API handler over store.
func New(store Store, verify Verifier, log *slog.Logger, opts Options) *Handler {
	if opts.MaxObjectBytes <= 0 {
		opts.MaxObjectBytes = 5 << 30
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	return &Handler{store: store, verify: verify, log: log.With("component", "s3"), opts: opts}
}

// Claims reports whether r is an S3 request by signature or address: its
// SigV4 credential scope names service "s3" (Authorization header or a
// presigned X-Amz-Credential), or its Host is <bucket>.<one of Domains>.
// Unsigned path-style requests are not claimed; the composition root
// sends them here only when no other route matches.
func (h *Handler) Claims(r *http.Request) bool {
	if id := awsproto.Identify(r); id.Service != "" {
		return id.Service == "s3"
	}
	if c := r.URL.Query().Get("X-Amz-Credential"); c != "" {
		parts := strings.Split(c, "/")
		return len(parts) == 5 && parts[3] == "s3"
	}
	_, ok := h.virtualBucket(r)
	return ok
}

// virtualBucket returns the bucket a virtual-host-style Host names.
func (h *Handler) virtualBucket(r *http.Request) (string, bool) {
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = strings.ToLower(host)
	for _, d := range h.opts.Domains {
		if b, ok := strings.CutSuffix(host, "."+strings.ToLower(d)); ok && b != "" {
			return b, true
		}
	}
	return "", false
}

// request is one parsed S3 request.
type request struct {
	*http.Request
	id     string
	bucket string
	key    string
}

// ServeHTTP authenticates r and runs the operation it names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &request{Request: r, id: requestID()}
	w.Header().Set("x-amz-request-id", req.id)
	w.Header().Set("x-amz-id-2", req.id)
	w.Header().Set("Server", "inferbox")
	if b, ok := h.virtualBucket(r); ok {
		req.bucket, req.key = b, strings.TrimPrefix(r.URL.Path, "/")
	} else {
		req.bucket, req.key, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	}
	if err := h.authenticate(r); err != nil {
		h.fail(w, req, err)
		return
	}
	if err := h.route(w, req); err != nil {
		h.fail(w, req, err)
	}
}

func (h *Handler) route(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	switch {
	case r.bucket == "":
		if r.Method == http.MethodGet {
			return h.listBuckets(w, r)
		}
	case r.key == "":
		for _, sub := range unsupportedBucketSubresources {
			if has(sub) {
				return errorf(codeNotImplemented, "inferbox does not implement the %s subresource.", sub)
			}
		}
		switch r.Method {
		case http.MethodPut:
			return h.createBucket(w, r)
		case http.MethodHead:
			return h.headBucket(w, r)
		case http.MethodDelete:
			return h.deleteBucket(w, r)
		case http.MethodGet:
			switch {
			case has("location"):
				return h.bucketLocation(w, r)
			case has("uploads"):
				return errorf(codeNotImplemented, "inferbox does not implement ListMultipartUploads.")
			case q.Get("list-type") == "2":
				return h.listObjectsV2(w, r)
			}
			return h.listObjectsV1(w, r)
		case http.MethodPost:
			if has("delete") {
				return h.deleteObjects(w, r)
			}
		}
	default:
		switch r.Method {
		case http.MethodPut:
			switch {
			case has("uploadId") && r.Header.Get("X-Amz-Copy-Source") != "":
				return errorf(codeNotImplemented, "inferbox does not implement UploadPartCopy.")
			case has("uploadId"):
				return h.uploadPart(w, r)
			case has("tagging"), has("acl"), has("retention"), has("legal-hold"):
				return errorf(codeNotImplemented, "inferbox does not implement object subresources.")
			case r.Header.Get("X-Amz-Copy-Source") != "":
				return h.copyObject(w, r)
			}
			return h.putObject(w, r)
		case http.MethodGet:
			if has("uploadId") {
				return h.listParts(w, r)
			}
			if has("tagging") || has("acl") || has("attributes") {
				return errorf(codeNotImplemented, "inferbox does not implement object subresources.")
			}
			return h.getObject(w, r, true)
		case http.MethodHead:
			return h.getObject(w, r, false)
		case http.MethodDelete:
			if has("uploadId") {
				return h.abortUpload(w, r)
			}
			return h.deleteObject(w, r)
		case http.MethodPost:
			switch {
			case has("uploads"):
				return h.createUpload(w, r)
			case has("uploadId"):
				return h.completeUpload(w, r)
			}
		}
	}
	return errorf(codeMethodNotAllowed, "The specified method is not allowed against this resource.")
}

var unsupportedBucketSubresources = []string{
	"versioning", "versions", "policy", "acl", "cors", "lifecycle", "tagging", "website",
	"encryption", "replication", "notification", "logging", "object-lock", "ownershipControls",
	"publicAccessBlock", "accelerate", "requestPayment", "inventory", "analytics", "metrics",
	"intelligent-tiering",
}

// requestID returns an id shaped like S3's (16 upper-case hex digits).
func requestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
