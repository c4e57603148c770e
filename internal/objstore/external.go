package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// ExternalConfig points s3:// at an S3-compatible service.
type ExternalConfig struct {
	// Region of the service (required by SigV4).
	Region string
	// Endpoint is the service's URL (e.g. http://minio:9000); empty means
	// AWS's own endpoints for Region.
	Endpoint string
	// PathStyle addresses buckets as <endpoint>/<bucket> rather than
	// <bucket>.<endpoint> (MinIO and most self-hosted services want it).
	PathStyle bool
	// Credentials, when set, override the standard AWS chain (environment,
	// shared config and credentials files, SSO, container and instance
	// roles). Tests use it; deployments leave it nil.
	Credentials aws.CredentialsProvider
	// PartSize of multipart uploads (default 16 MiB). Memory held by one
	// upload is PartSize × Concurrency.
	PartSize    int64
	Concurrency int
}

// External is the backend for s3:// URIs when they name a real S3 service:
// the same operations as Embedded's object methods, through aws-sdk-go-v2.
// Uploads stream through the SDK's multipart uploader, so a large object
// is never held in memory; reads stream the GetObject body (ranged when a
// Range is given).
type External struct {
	client   *s3.Client
	uploader *transfermanager.Client
}

// NewExternal builds a client from cfg, loading credentials from the
// standard AWS chain.
func NewExternal(ctx context.Context, cfg ExternalConfig) (*External, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}
	if cfg.Credentials != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(cfg.Credentials))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("external s3: %w", err)
	}
	client := s3.NewFromConfig(ac, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	part := cfg.PartSize
	if part <= 0 {
		part = 16 << 20
	}
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = 4
	}
	up := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes = part
		o.MultipartUploadThreshold = part
		o.Concurrency = conc
	})
	return &External{client: client, uploader: up}, nil
}

// GetObject streams bucket/key (or a range of it).
func (x *External) GetObject(ctx context.Context, bucket, key string, rng *Range) (io.ReadCloser, Info, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if rng != nil {
		if rng.Start < 0 {
			in.Range = aws.String(fmt.Sprintf("bytes=%d", rng.Start))
		} else if rng.End < 0 {
			in.Range = aws.String(fmt.Sprintf("bytes=%d-", rng.Start))
		} else {
			in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", rng.Start, rng.End))
		}
	}
	out, err := x.client.GetObject(ctx, in)
	if err != nil {
		return nil, Info{}, mapErr(err, bucket, key)
	}
	info := Info{
		URI: S3URI(bucket, key), Key: key, Size: aws.ToInt64(out.ContentLength), ETag: strings.Trim(aws.ToString(out.ETag), `"`),
		LastModified: aws.ToTime(out.LastModified), ContentType: aws.ToString(out.ContentType), Metadata: out.Metadata,
	}
	if cr := aws.ToString(out.ContentRange); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				info.Size = n
			}
		}
	}
	return out.Body, info, nil
}

// HeadObject describes bucket/key.
func (x *External) HeadObject(ctx context.Context, bucket, key string) (Info, error) {
	out, err := x.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return Info{}, mapErr(err, bucket, key)
	}
	return Info{
		URI: S3URI(bucket, key), Key: key, Size: aws.ToInt64(out.ContentLength), ETag: strings.Trim(aws.ToString(out.ETag), `"`),
		LastModified: aws.ToTime(out.LastModified), ContentType: aws.ToString(out.ContentType), Metadata: out.Metadata,
	}, nil
}

// PutObject uploads r to bucket/key: one PutObject for a small body, a
// multipart upload (aborted on failure) for a large one.
func (x *External) PutObject(ctx context.Context, bucket, key string, r io.Reader, opts PutOptions) (Info, error) {
	in := &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: r, Metadata: opts.Metadata}
	if opts.ContentType != "" {
		in.ContentType = aws.String(opts.ContentType)
	}
	if _, err := x.uploader.UploadObject(ctx, in); err != nil {
		return Info{}, mapErr(err, bucket, key)
	}
	return x.HeadObject(ctx, bucket, key)
}

// DeleteObject removes bucket/key.
func (x *External) DeleteObject(ctx context.Context, bucket, key string) error {
	_, err := x.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return mapErr(err, bucket, key)
}

// ListObjects lists one page of bucket's keys under prefix.
func (x *External) ListObjects(ctx context.Context, bucket, prefix string, opts ListOptions) (ListPage, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	if opts.Delimiter != "" {
		in.Delimiter = aws.String(opts.Delimiter)
	}
	if opts.StartAfter != "" {
		in.StartAfter = aws.String(opts.StartAfter)
	}
	if opts.Token != "" {
		in.ContinuationToken = aws.String(opts.Token)
	}
	if opts.MaxKeys > 0 {
		in.MaxKeys = aws.Int32(int32(min(opts.MaxKeys, defaultMaxKeys)))
	}
	out, err := x.client.ListObjectsV2(ctx, in)
	if err != nil {
		return ListPage{}, mapErr(err, bucket, prefix)
	}
	var page ListPage
	for _, o := range out.Contents {
		k := aws.ToString(o.Key)
		page.Objects = append(page.Objects, Info{URI: S3URI(bucket, k), Key: k, Size: aws.ToInt64(o.Size), ETag: strings.Trim(aws.ToString(o.ETag), `"`), LastModified: aws.ToTime(o.LastModified)})
	}
	for _, p := range out.CommonPrefixes {
		page.CommonPrefixes = append(page.CommonPrefixes, aws.ToString(p.Prefix))
	}
	if aws.ToBool(out.IsTruncated) {
		page.NextToken = aws.ToString(out.NextContinuationToken)
	}
	return page, nil
}

// mapErr turns S3 errors into the package's sentinels.
func mapErr(err error, bucket, key string) error {
	if err == nil {
		return nil
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nsb *types.NoSuchBucket
	var ae smithy.APIError
	switch {
	case errors.As(err, &nsk), errors.As(err, &nf):
		return fmt.Errorf("%w: s3://%s/%s", ErrNotFound, bucket, key)
	case errors.As(err, &nsb):
		return fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket)
	case errors.As(err, &ae):
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w: s3://%s/%s", ErrNotFound, bucket, key)
		case "NoSuchBucket":
			return fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket)
		case "InvalidRange":
			return fmt.Errorf("%w: s3://%s/%s", ErrInvalidRange, bucket, key)
		}
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return fmt.Errorf("%w: s3://%s/%s", ErrNotFound, bucket, key)
	}
	return fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
}
