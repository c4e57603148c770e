package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// batchEnv is a server with the example XGBoost model registered, an S3
// client on its embedded store and a bucket.
type batchEnv struct {
	c      clients
	s3     *s3.Client
	bucket string
	rows   []string // the sample rows
}

func newBatchEnv(t *testing.T) *batchEnv {
	t.Helper()
	c, url, _ := start(t, nil)
	s3c := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDANY", "anysecret", ""),
	})
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	createModel(t, c, "churn", xgboostImage, "file://"+repoPath(t, "examples/xgboost/model"))
	rows := strings.Split(strings.TrimSpace(string(readFile(t, repoPath(t, "examples/xgboost/sample.csv")))), "\n")
	return &batchEnv{c: c, s3: s3c, bucket: "data", rows: rows}
}

func (e *batchEnv) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PutObject %s: %v", key, err)
	}
}

func (e *batchEnv) get(t *testing.T, key string) (string, bool) {
	t.Helper()
	out, err := e.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		return "", false
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// csvRows returns n rows cycling through the sample.
func (e *batchEnv) csvRows(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = e.rows[i%len(e.rows)]
	}
	return out
}

type jobSpec struct {
	name, prefix, out, strategy, split, compression, assemble string
	payloadMB, concurrent                                     int32
	dp                                                        *smtypes.DataProcessing
}

func (e *batchEnv) create(t *testing.T, s jobSpec) error {
	t.Helper()
	in := &sagemaker.CreateTransformJobInput{
		TransformJobName: aws.String(s.name),
		ModelName:        aws.String("churn"),
		TransformInput: &smtypes.TransformInput{
			DataSource: &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{
				S3DataType: smtypes.S3DataTypeS3Prefix, S3Uri: aws.String("s3://" + e.bucket + "/" + s.prefix),
			}},
			ContentType: aws.String("text/csv"),
			SplitType:   smtypes.SplitType(s.split),
		},
		TransformOutput: &smtypes.TransformOutput{
			S3OutputPath: aws.String("s3://" + e.bucket + "/" + s.out),
			Accept:       aws.String("text/csv"),
			AssembleWith: smtypes.AssemblyType(s.assemble),
		},
		TransformResources: &smtypes.TransformResources{InstanceType: smtypes.TransformInstanceTypeMlM5Large, InstanceCount: aws.Int32(1)},
		BatchStrategy:      smtypes.BatchStrategy(s.strategy),
		DataProcessing:     s.dp,
	}
	if s.compression != "" {
		in.TransformInput.CompressionType = smtypes.CompressionType(s.compression)
	}
	if s.payloadMB != 0 {
		in.MaxPayloadInMB = aws.Int32(s.payloadMB)
	}
	if s.concurrent != 0 {
		in.MaxConcurrentTransforms = aws.Int32(s.concurrent)
	}
	_, err := e.c.sm.CreateTransformJob(context.Background(), in)
	return err
}

// wait runs the SDK's TransformJobCompletedOrStopped waiter; it returns
// the final description (the waiter fails on Failed).
func (e *batchEnv) wait(t *testing.T, name string) *sagemaker.DescribeTransformJobOutput {
	t.Helper()
	w := sagemaker.NewTransformJobCompletedOrStoppedWaiter(e.c.sm, func(o *sagemaker.TransformJobCompletedOrStoppedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 250*time.Millisecond
	})
	werr := w.Wait(context.Background(), &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String(name)}, 60*time.Second)
	d, err := e.c.sm.DescribeTransformJob(context.Background(), &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeTransformJob %s: %v", name, err)
	}
	if werr != nil && d.TransformJobStatus != smtypes.TransformJobStatusFailed {
		t.Fatalf("waiter: %v (status %s)", werr, d.TransformJobStatus)
	}
	return d
}

func TestTransformEndToEnd(t *testing.T) {
	e := newBatchEnv(t)
	ctx := context.Background()
	files := map[string][]string{
		"in/a.csv":     e.csvRows(300),
		"in/b.csv":     e.csvRows(5),
		"in/sub/c.csv": e.csvRows(37),
	}
	for k, rows := range files {
		e.put(t, k, []byte(strings.Join(rows, "\n")+"\n"))
	}
	

	// Predictions from a real-time endpoint of the same model, per file.
	createConfig(t, e.c, "churn-rt", "churn", "AllTraffic", "ml.m5.large", 1)
	createEndpoint(t, e.c, "churn-rt", "churn-rt")
	waitInService(t, e.c, "churn-rt")
	realtime := map[string]string{}
	for k, rows := range files {
		out, err := invoke(ctx, e.c, "churn-rt", "text/csv", "text/csv", []byte(strings.Join(rows, "\n")+"\n"), "")
		if err != nil {
			t.Fatalf("invoke %s: %v", k, err)
		}
		realtime[k] = strings.TrimRight(string(out.Body), "\n") + "\n"
	}

	// MultiRecord and SingleRecord must both give the real-time
	// predictions line for line, in input order.
	if err := e.create(t, jobSpec{name: "multi", prefix: "in/", out: "out-multi", strategy: "MultiRecord", split: "Line", assemble: "Line", payloadMB: 1, concurrent: 4}); err != nil {
		t.Fatalf("CreateTransformJob: %v", err)
	}
	if err := e.create(t, jobSpec{name: "single", prefix: "in/", out: "out-single", strategy: "SingleRecord", split: "Line", assemble: "Line", concurrent: 2}); err != nil {
		t.Fatalf("CreateTransformJob: %v", err)
	}
	for _, job := range []string{"multi", "single"} {
		d := e.wait(t, job)
		if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
			t.Fatalf("%s: status %s: %s", job, d.TransformJobStatus, aws.ToString(d.FailureReason))
		}
		if d.TransformStartTime == nil || d.TransformEndTime == nil || d.TransformEndTime.Before(*d.TransformStartTime) {
			t.Errorf("%s: timestamps %v %v", job, d.TransformStartTime, d.TransformEndTime)
		}
		for k := range files {
			got, ok := e.get(t, "out-"+job+"/"+strings.TrimPrefix(k, "in/")+".out")
			if !ok {
				t.Fatalf("%s: no output for %s", job, k)
			}
			if got != realtime[k] {
				t.Errorf("%s: output of %s differs from real-time predictions:\n got %.200q\nwant %.200q", job, k, got, realtime[k])
			}
		}
	}

	// Duplicate name: ResourceInUse.
	err := e.create(t, jobSpec{name: "multi", prefix: "in/", out: "x", split: "Line"})
	expectAPIError(t, "duplicate job", err, "ResourceInUse", 400, "Job name must be unique", "transform-job/multi")

	// Listing and a missing job.
	l, err := e.c.sm.ListTransformJobs(ctx, &sagemaker.ListTransformJobsInput{})
	if err != nil || len(l.TransformJobSummaries) != 2 {
		t.Fatalf("ListTransformJobs = %v, %v", l, err)
	}
	_, err = e.c.sm.DescribeTransformJob(ctx, &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String("nope")})
	expectAPIError(t, "describe missing", err, "ResourceNotFound", 400, "nope")
	_, err = e.c.sm.StopTransformJob(ctx, &sagemaker.StopTransformJobInput{TransformJobName: aws.String("nope")})
	expectAPIError(t, "stop missing", err, "ResourceNotFound", 400, "nope")
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.Bytes()
}
