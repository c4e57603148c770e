package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strconv"
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
		"in/a.csv":     e.variedRows(300),
		"in/b.csv":     e.variedRows(5),
		"in/sub/c.csv": e.variedRows(37),
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
	outputs := map[string]string{} // "job key" → output
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
			outputs[job+" "+k] = got
			if got != realtime[k] {
				t.Errorf("%s: output of %s differs from real-time predictions:\n got %.200q\nwant %.200q", job, k, got, realtime[k])
			}
		}
	}

	// Both agree with python3-xgboost line by line, and with each other
	// byte for byte.
	for k, rows := range files {
		want := pythonPredictions(t, rows)
		for _, job := range []string{"multi", "single"} {
			if bad := compareLines(outputs[job+" "+k], want, 1e-6); len(bad) > 0 {
				t.Errorf("%s: %s differs from python3-xgboost: %s", job, k, strings.Join(bad, "; "))
			}
		}
		if outputs["multi "+k] != outputs["single "+k] {
			t.Errorf("%s: MultiRecord and SingleRecord outputs differ", k)
		}
	}

	// Progress of a finished job counts every record, byte and object.
	p := describeProgress(t, e, "multi")
	var size int64
	for _, rows := range files {
		size += int64(len(strings.Join(rows, "\n")) + 1)
	}
	if p.RecordsProcessed != 342 || p.BytesProcessed != size || p.BytesTotal != size || p.ObjectsCompleted != 3 || p.ObjectsTotal != 3 || p.EstimatedSecondsRemaining != nil {
		t.Errorf("Progress of the finished job = %+v; want 342 records, %d bytes of %d, 3/3 objects, no estimate", p, size, size)
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

func TestTransformGzipJoinLimitStop(t *testing.T) {
	e := newBatchEnv(t)
	ctx := context.Background()
	expected := strings.Fields(string(readFile(t, repoPath(t, "examples/xgboost/sample.expected"))))
	rows := e.csvRows(10)
	e.put(t, "gz/part.csv.gz", gz(t, strings.Join(rows, "\n")+"\n"))
	e.put(t, "plain/rows.csv", []byte(strings.Join(rows, "\n")+"\n"))
	big := strings.Repeat("1,", 600<<10) + "1" // one 1.2 MB record
	e.put(t, "big/ok.csv", []byte(strings.Join(rows, "\n")+"\n"))
	e.put(t, "big/huge.csv", []byte(rows[0]+"\n"+rows[1]+"\n"+big+"\n"))

	if err := e.create(t, jobSpec{name: "gzip", prefix: "gz/", out: "out-gz", split: "Line", compression: "Gzip", assemble: "Line"}); err != nil {
		t.Fatal(err)
	}
	if err := e.create(t, jobSpec{name: "join", prefix: "plain/", out: "out-join", split: "Line", assemble: "Line", strategy: "MultiRecord",
		dp: &smtypes.DataProcessing{InputFilter: aws.String("$[0:]"), JoinSource: smtypes.JoinSourceInput, OutputFilter: aws.String("$[0,-1]")}}); err != nil {
		t.Fatal(err)
	}
	if err := e.create(t, jobSpec{name: "limit", prefix: "big/", out: "out-big", split: "Line", assemble: "Line", payloadMB: 1}); err != nil {
		t.Fatal(err)
	}

	d := e.wait(t, "gzip")
	if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Fatalf("gzip: %s %s", d.TransformJobStatus, aws.ToString(d.FailureReason))
	}
	got, _ := e.get(t, "out-gz/part.csv.gz.out")
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != len(rows) {
		t.Fatalf("gzip: %d output lines, want %d: %q", len(lines), len(rows), got)
	}
	for i, l := range lines {
		if !samePrediction(l, expected[i%len(expected)]) {
			t.Errorf("gzip line %d = %q, want %q", i+1, l, expected[i%len(expected)])
		}
	}

	d = e.wait(t, "join")
	if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Fatalf("join: %s %s", d.TransformJobStatus, aws.ToString(d.FailureReason))
	}
	got, _ = e.get(t, "out-join/rows.csv.out")
	lines = strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != len(rows) {
		t.Fatalf("join: %d lines: %q", len(lines), got)
	}
	for i, l := range lines {
		want := strings.Split(rows[i], ",")[0] + "," + expected[i%len(expected)]
		first, pred, _ := strings.Cut(l, ",")
		if first+"," != strings.Split(rows[i], ",")[0]+"," || !samePrediction(pred, expected[i%len(expected)]) {
			t.Errorf("join line %d = %q, want %q (first input column, prediction)", i+1, l, want)
		}
	}

	d = e.wait(t, "limit")
	reason := aws.ToString(d.FailureReason)
	if d.TransformJobStatus != smtypes.TransformJobStatusFailed || !strings.Contains(reason, "s3://data/big/huge.csv") || !strings.Contains(reason, "record 3") {
		t.Fatalf("limit: status %s, reason %q; want Failed naming s3://data/big/huge.csv and record 3", d.TransformJobStatus, reason)
	}
	if _, ok := e.get(t, "out-big/huge.csv.out"); ok {
		t.Error("limit: a failed input has an output")
	}
	if _, ok := e.get(t, "out-big/ok.csv.out"); !ok {
		t.Error("limit: the good input has no output")
	}

	// Bad filters and limits are refused at create.
	err := e.create(t, jobSpec{name: "badfilter", prefix: "plain/", out: "x", split: "Line", dp: &smtypes.DataProcessing{InputFilter: aws.String("$..a")}})
	expectAPIError(t, "recursive filter", err, "ValidationException", 400, "InputFilter")
	err = e.create(t, jobSpec{name: "toomuch", prefix: "plain/", out: "x", split: "Line", payloadMB: 50, concurrent: 3})
	expectAPIError(t, "payload × concurrency", err, "ValidationException", 400, "100")
	_, err = e.c.sm.CreateTransformJob(ctx, &sagemaker.CreateTransformJobInput{
		TransformJobName: aws.String("nomodel"), ModelName: aws.String("missing"),
		TransformInput:     &smtypes.TransformInput{DataSource: &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{S3DataType: smtypes.S3DataTypeS3Prefix, S3Uri: aws.String("s3://data/plain/")}}},
		TransformOutput:    &smtypes.TransformOutput{S3OutputPath: aws.String("s3://data/x")},
		TransformResources: &smtypes.TransformResources{InstanceType: smtypes.TransformInstanceTypeMlM5Large, InstanceCount: aws.Int32(1)},
	})
	expectAPIError(t, "missing model", err, "ValidationException", 400, "Could not find model")
}

func TestTransformStop(t *testing.T) {
	e := newBatchEnv(t)
	ctx := context.Background()
	// Many files, one request each and one at a time: long enough to stop.
	for i := range 40 {
		e.put(t, "many/f"+strings.Repeat("0", 3-len(itoa(i)))+itoa(i)+".csv", []byte(strings.Join(e.csvRows(2000), "\n")+"\n"))
	}
	if err := e.create(t, jobSpec{name: "stopme", prefix: "many/", out: "out-stop", split: "Line", strategy: "SingleRecord", concurrent: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.sm.StopTransformJob(ctx, &sagemaker.StopTransformJobInput{TransformJobName: aws.String("stopme")}); err != nil {
		t.Fatalf("StopTransformJob: %v", err)
	}
	d := e.wait(t, "stopme")
	if d.TransformJobStatus != smtypes.TransformJobStatusStopped && d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Fatalf("status %s, want Stopped", d.TransformJobStatus)
	}
	if d.TransformJobStatus == smtypes.TransformJobStatusStopped {
		l, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String("out-stop/")})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Contents) != 0 {
			t.Errorf("a stopped job left %d outputs", len(l.Contents))
		}
	}
	_, err := e.c.sm.StopTransformJob(ctx, &sagemaker.StopTransformJobInput{TransformJobName: aws.String("stopme")})
	expectAPIError(t, "stop an ended job", err, "ValidationException", 400, "already ended")
}

// samePrediction compares a prediction with python-xgboost's within
// float32 rounding (the runtimes sum trees in different orders).
func samePrediction(got, want string) bool {
	g, err1 := strconv.ParseFloat(got, 64)
	w, err2 := strconv.ParseFloat(want, 64)
	d := g - w
	return err1 == nil && err2 == nil && d < 1e-6 && d > -1e-6
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return fmtInt(i/10) + string(rune('0'+i%10))
}
