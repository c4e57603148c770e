package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	s3api "github.com/inferbox/inferbox/internal/api/s3"
	"github.com/inferbox/inferbox/internal/objstore"
)

const (
	accessKey = "AKIDS3TEST"
	secret    = "s3-test-secret"
)

type env struct {
	url    string
	store  *objstore.Embedded
	client *s3.Client
	served chan string // the path of every request whose handler returned
}

func start(t *testing.T) *env {
	t.Helper()
	store, err := objstore.OpenEmbedded(filepath.Join(t.TempDir(), "objects"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := awsproto.NewVerifier(awsproto.Credentials{accessKey: secret}, 1<<20)
	h := s3api.New(store, v, slog.New(slog.DiscardHandler), s3api.Options{Domains: []string{"localhost"}})
	served := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			select {
			case served <- r.URL.Path:
			default:
			}
		}()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return &env{url: srv.URL, store: store, client: client(srv.URL, secret), served: served}
}

func client(url, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secret, ""),
	})
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestSDKBucketsAndObjects(t *testing.T) {
	ctx := context.Background()
	e := start(t)
	c := e.client
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); code(err) != "BucketAlreadyOwnedByYou" {
		t.Fatalf("duplicate bucket: %v", err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bad..name")}); code(err) != "InvalidBucketName" {
		t.Fatalf("invalid bucket: %v", err)
	}
	// A bucket named like a SageMaker route still works.
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("endpoints")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(out.Buckets) != 2 || aws.ToString(out.Buckets[0].Name) != "bkt" {
		t.Fatalf("list buckets: %+v %v", out, err)
	}
	put, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("bkt"), Key: aws.String("dir/hello world+.txt"), Body: strings.NewReader("hello, world"),
		ContentType: aws.String("text/plain"), Metadata: map[string]string{"color": "blue"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.ETag) != `"e4d7f1b4ed2e42d15898f4b27b019da4"` {
		t.Fatalf("etag %s", aws.ToString(put.ETag))
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/hello world+.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if string(b) != "hello, world" || aws.ToString(get.ContentType) != "text/plain" || get.Metadata["color"] != "blue" || aws.ToInt64(get.ContentLength) != 12 {
		t.Fatalf("get: %q %+v", b, get)
	}
	rng, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/hello world+.txt"), Range: aws.String("bytes=7-")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(rng.Body)
	rng.Body.Close()
	if string(b) != "world" || aws.ToString(rng.ContentRange) != "bytes 7-11/12" {
		t.Fatalf("range: %q %s", b, aws.ToString(rng.ContentRange))
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/hello world+.txt"), Range: aws.String("bytes=50-")}); code(err) != "InvalidRange" {
		t.Fatalf("unsatisfiable range: %v", err)
	}
	var nsk *types.NoSuchKey
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("missing")}); !errors.As(err, &nsk) {
		t.Fatalf("missing key: %v", err)
	}
	var nf *types.NotFound
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("missing")}); !errors.As(err, &nf) {
		t.Fatalf("head missing key: %v", err)
	}
	var nsb *types.NoSuchBucket
	if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nobucket")}); !errors.As(err, &nsb) {
		t.Fatalf("missing bucket: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("../escape"), Body: strings.NewReader("x")}); code(err) != "InvalidArgument" {
		t.Fatalf("traversal key: %v", err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("endpoints"), Key: aws.String("copy.txt"), CopySource: aws.String("bkt/dir/hello%20world%2B.txt")}); err != nil {
		t.Fatal(err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("endpoints"), Key: aws.String("copy.txt")})
	if err != nil || aws.ToString(head.ETag) != aws.ToString(put.ETag) || head.Metadata["color"] != "blue" {
		t.Fatalf("copy: %+v %v", head, err)
	}
	for i := range 5 {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String(fmt.Sprintf("logs/%d.txt", i)), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	var keys, prefixes []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("bkt"), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	if len(keys) != 6 || keys[0] != "dir/hello world+.txt" || keys[5] != "logs/4.txt" {
		t.Fatalf("paginated keys: %v", keys)
	}
	lo, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range lo.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(cp.Prefix))
	}
	if fmt.Sprint(prefixes) != "[dir/ logs/]" || len(lo.Contents) != 0 {
		t.Fatalf("delimiter: %v %d", prefixes, len(lo.Contents))
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("bkt")}); code(err) != "BucketNotEmpty" {
		t.Fatalf("delete non-empty bucket: %v", err)
	}
	var objs []types.ObjectIdentifier
	for _, k := range keys {
		objs = append(objs, types.ObjectIdentifier{Key: aws.String(k)})
	}
	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("bkt"), Delete: &types.Delete{Objects: objs}})
	if err != nil || len(del.Deleted) != 6 {
		t.Fatalf("delete objects: %+v %v", del, err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := client(e.url, "wrong").ListBuckets(ctx, &s3.ListBucketsInput{}); code(err) != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
}

// unseekable hides Seek, so the SDK must stream.
type unseekable struct{ io.Reader }

func TestSDKMultipartUpload(t *testing.T) {
	ctx := context.Background()
	e := start(t)
	if _, err := e.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 12<<20+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	tm := transfermanager.New(e.client, func(o *transfermanager.Options) {
		o.PartSizeBytes, o.MultipartUploadThreshold = 5<<20, 5<<20
	})
	res, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("model.bin"), Body: unseekable{bytes.NewReader(data)}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(aws.ToString(res.ETag), `-3"`) {
		t.Fatalf("multipart etag %s", aws.ToString(res.ETag))
	}
	buf := &writeAtBuffer{}
	if _, err := tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("model.bin"), WriterAt: buf}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.bytes(), data) {
		t.Fatal("downloaded object differs")
	}
	// ListParts and Abort on an upload in progress.
	cu, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("aborted")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bkt"), Key: aws.String("aborted"), UploadId: cu.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part")}); err != nil {
		t.Fatal(err)
	}
	lp, err := e.client.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("bkt"), Key: aws.String("aborted"), UploadId: cu.UploadId})
	if err != nil || len(lp.Parts) != 1 || aws.ToInt64(lp.Parts[0].Size) != 4 {
		t.Fatalf("list parts: %+v %v", lp, err)
	}
	if _, err := e.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("aborted"), UploadId: cu.UploadId}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("aborted"), UploadId: cu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String("x")}}}})
	if code(err) != "NoSuchUpload" {
		t.Fatalf("complete aborted upload: %v", err)
	}
}

// signedRequest signs a raw request the way the AWS CLI does.
func signedRequest(t *testing.T, method, url, host string, body io.Reader, payloadHash string, hdr map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secret}, req, payloadHash, "s3", "us-east-1", time.Now(),
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestAWSChunkedBodyAndVirtualHost(t *testing.T) {
	ctx := context.Background()
	e := start(t)
	if err := e.store.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	// STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer, as newer
	// SDKs send; "hello world" has CRC32 0x0d4a1185 (base64 DUoRhQ==).
	chunked := "6\r\nhello \r\n5\r\nworld\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"
	hdr := map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": "11", "X-Amz-Trailer": "x-amz-checksum-crc32"}
	u := strings.TrimPrefix(e.url, "http://")
	// Virtual-host style: the bucket is in the Host.
	req := signedRequest(t, http.MethodPut, e.url+"/greeting", "bkt.localhost:"+port(u), strings.NewReader(chunked), "STREAMING-UNSIGNED-PAYLOAD-TRAILER", hdr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chunked put: %s", resp.Status)
	}
	rc, _, err := e.store.GetObject(ctx, "bkt", "greeting", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello world" {
		t.Fatalf("decoded body %q", b)
	}
	// A trailer that does not match the body: refused, nothing stored.
	bad := strings.Replace(chunked, "DUoRhQ==", "AAAAAA==", 1)
	req = signedRequest(t, http.MethodPut, e.url+"/bkt/bad", "", strings.NewReader(bad), "STREAMING-UNSIGNED-PAYLOAD-TRAILER", hdr)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "<Code>BadDigest</Code>") {
		t.Fatalf("bad trailer: %s %s", resp.Status, body)
	}
	// A signed payload hash that does not match the body.
	sum := sha256.Sum256([]byte("other"))
	req = signedRequest(t, http.MethodPut, e.url+"/bkt/bad", "", strings.NewReader("body"), hex.EncodeToString(sum[:]), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "XAmzContentSHA256Mismatch") {
		t.Fatalf("sha mismatch: %s %s", resp.Status, body)
	}
	if _, err := e.store.HeadObject(ctx, "bkt", "bad"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("refused body stored: %v", err)
	}
	// Unsigned requests are refused when keys are configured.
	resp, err = http.Get(e.url + "/bkt/greeting")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>AccessDenied</Code>") || resp.Header.Get("x-amz-request-id") == "" {
		t.Fatalf("unsigned: %s %s", resp.Status, body)
	}
}

func port(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

// A client that disconnects in the middle of a PUT leaves no object.
func TestInterruptedUploadLeavesNoObject(t *testing.T) {
	ctx := context.Background()
	e := start(t)
	if err := e.store.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	req := signedRequest(t, http.MethodPut, e.url+"/bkt/partial", "", nil, "UNSIGNED-PAYLOAD", nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /bkt/partial HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.Host, 10<<20)
	for k, v := range req.Header {
		fmt.Fprintf(conn, "%s: %s\r\n", k, v[0])
	}
	fmt.Fprint(conn, "\r\n")
	conn.Write(bytes.Repeat([]byte("x"), 1<<20))
	conn.Close()
	select {
	case p := <-e.served:
		if p != "/bkt/partial" {
			t.Fatalf("served %s", p)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the interrupted request's handler did not return")
	}
	if des, _ := os.ReadDir(filepath.Join(e.store.Root(), ".tmp")); len(des) != 0 {
		t.Fatalf("temporary file of the interrupted upload left: %d", len(des))
	}
	if _, err := e.store.HeadObject(ctx, "bkt", "partial"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("interrupted upload visible: %v", err)
	}
}

// writeAtBuffer is an in-memory io.WriterAt for downloads in tests.
type writeAtBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (w *writeAtBuffer) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := int(off) + len(p); end > len(w.buf) {
		w.buf = append(w.buf, make([]byte, end-len(w.buf))...)
	}
	copy(w.buf[off:], p)
	return len(p), nil
}

func (w *writeAtBuffer) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf
}
