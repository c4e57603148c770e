package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// binaryServer is the real inferbox binary serving a data directory.
type binaryServer struct {
	cmd *exec.Cmd
	url string
	log *os.File
}

// serveBinary starts `inferbox serve` on a free loopback port and waits
// for /healthz.
func serveBinary(t *testing.T, bin, data string) *binaryServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logf, err := os.OpenFile(filepath.Join(data, "..", "serve-"+strconv.FormatInt(time.Now().UnixNano(), 10)+".log"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data", data)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &binaryServer{cmd: cmd, url: "http://" + addr, log: logf}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
		logf.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("inferbox serve did not answer /healthz within 60 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// children are the processes whose parent is pid (the BYO containers).
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at ")".
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, cpid)
		}
	}
	return out
}

// TestTransformKillAndResume kills the real server with SIGKILL while a
// job runs, restarts it on the same data directory and checks that the
// job completes without redoing the inputs it had finished, with outputs
// identical to an uninterrupted run's.
func TestTransformKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "inferbox")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/inferbox")
	build.Dir = repoPath(t, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	srv := serveBinary(t, bin, data)
	ctx := context.Background()
	c := newClients(srv.url, "AKIDANY", "anysecret")
	s3c := func(url string) *s3.Client {
		return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider("AKIDANY", "anysecret", "")})
	}
	st := s3c(srv.url)
	if _, err := st.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}
	createModel(t, c, "slow", fixtureImage(t), "")
	const objects, lines = 6, 8
	for i := range objects {
		var b strings.Builder
		for l := range lines {
			fmt.Fprintf(&b, "object %d line %d\n", i, l)
		}
		if _, err := st.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(fmt.Sprintf("in/part-%02d.txt", i)), Body: strings.NewReader(b.String())}); err != nil {
			t.Fatal(err)
		}
	}
	createJob := func(c clients, name, out string) {
		t.Helper()
		_, err := c.sm.CreateTransformJob(ctx, &sagemaker.CreateTransformJobInput{
			TransformJobName: aws.String(name), ModelName: aws.String("slow"),
			// The fixture echoes each record after 50 ms: 0.4 s an object.
			Environment:             map[string]string{"TEST_SLEEP_MS": "50"},
			BatchStrategy:           smtypes.BatchStrategySingleRecord,
			MaxConcurrentTransforms: aws.Int32(1),
			TransformInput: &smtypes.TransformInput{
				DataSource:  &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{S3DataType: smtypes.S3DataTypeS3Prefix, S3Uri: aws.String("s3://data/in/")}},
				ContentType: aws.String("text/plain"), SplitType: smtypes.SplitTypeLine,
			},
			TransformOutput:    &smtypes.TransformOutput{S3OutputPath: aws.String("s3://data/" + out), AssembleWith: smtypes.AssemblyTypeLine},
			TransformResources: &smtypes.TransformResources{InstanceType: smtypes.TransformInstanceTypeMlM5Large, InstanceCount: aws.Int32(1)},
		})
		if err != nil {
			t.Fatalf("CreateTransformJob %s: %v", name, err)
		}
	}
	type version struct{ etag, modified string }
	outputs := func(st *s3.Client, prefix string) map[string]version {
		t.Helper()
		l, err := st.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String(prefix)})
		if err != nil {
			t.Fatalf("ListObjectsV2: %v", err)
		}
		m := map[string]version{}
		for _, o := range l.Contents {
			m[strings.TrimPrefix(aws.ToString(o.Key), prefix)] = version{aws.ToString(o.ETag), o.LastModified.String()}
		}
		return m
	}

	createJob(c, "resume", "out-resume")
	var before map[string]version
	deadline := time.Now().Add(60 * time.Second)
	for {
		if before = outputs(st, "out-resume/"); len(before) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 2 outputs within 60 s")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	kids := children(srv.cmd.Process.Pid)
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Wait()
	// The BYO containers outlive a SIGKILLed parent (they run in their own
	// process groups): end them, as an operator's supervisor would.
	for _, k := range kids {
		_ = syscall.Kill(-k, syscall.SIGKILL)
	}
	// Outputs written between the listing and the kill count as finished.
	if len(before) == objects {
		t.Fatalf("the job finished before the kill; the test needs a slower model")
	}

	srv = serveBinary(t, bin, data)
	c = newClients(srv.url, "AKIDANY", "anysecret")
	st = s3c(srv.url)
	e := &batchEnv{c: c, s3: st, bucket: "data"}
	d := e.wait(t, "resume")
	if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Fatalf("after restart: status %s: %s", d.TransformJobStatus, aws.ToString(d.FailureReason))
	}
	after := outputs(st, "out-resume/")
	if len(after) != objects {
		t.Fatalf("%d outputs after the resumed run, want %d", len(after), objects)
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s was redone after the restart: %+v, then %+v", k, v, after[k])
		}
	}
	p := describeProgress(t, e, "resume")
	if p.ObjectsCompleted != objects || p.RecordsProcessed < int64((objects-len(before))*lines) {
		t.Errorf("Progress after the resumed run = %+v", p)
	}

	// An uninterrupted run of the same job writes the same bytes.
	createJob(c, "clean", "out-clean")
	if d := e.wait(t, "clean"); d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Fatalf("clean run: %s", d.TransformJobStatus)
	}
	for k := range after {
		got, _ := e.get(t, "out-resume/"+k)
		want, ok := e.get(t, "out-clean/"+k)
		if !ok || got != want {
			t.Errorf("%s: resumed output %q, uninterrupted %q", k, got, want)
		}
	}
}
