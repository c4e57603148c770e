package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// bigPayloadMB is the default input size of TestAsyncBigPayload: 256 MiB
// keeps the test short and its temporary files (input, output and the
// upload's parts) under a gigabyte on a shared two-core machine (about
// 6 s there). The 1 GB runs with INFERBOX_BIG_PAYLOAD_MB=1024
// (about 12 s there, 3 GB of temporary files).
const bigPayloadMB = 256

// rssHeadroom is how much the server's resident memory may grow above its
// idle level while a payload goes through it: the 128 MB. A path
// that held the payload (or the output) whole would need at least the
// payload's size, so the payload must be at least twice this for the
// test to tell streaming from buffering.
const rssHeadroom = 128 << 20

// TestAsyncBigPayload sends a large input through an async endpoint whose
// BYO model transforms it line by line as it streams (the fixture's
// "lines" mode: "got:" + line), with the real binary as a child process:
// upload with the SDK's transfer manager (the input is generated as it is
// read, never held), InvokeEndpointAsync, wait for the output, download it
// and check its size and SHA-256 against the transform computed on the fly.
// Meanwhile the server's VmRSS is sampled from /proc; its peak and VmHWM
// (the kernel's exact peak, so no sample can miss a spike) must stay
// within rssHeadroom of the idle server's VmRSS, measured once the
// endpoint is InService.
func TestAsyncBigPayload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and moves hundreds of megabytes")
	}
	size := int64(bigPayloadMB) << 20
	if v := os.Getenv("INFERBOX_BIG_PAYLOAD_MB"); v != "" {
		mb, err := strconv.Atoi(v)
		if err != nil || mb <= 0 {
			t.Fatalf("INFERBOX_BIG_PAYLOAD_MB=%q: want a positive number of MiB", v)
		}
		size = int64(mb) << 20
	}
	if size < 2*rssHeadroom {
		t.Fatalf("payload %d MiB: must be at least %d MiB for the memory bound to detect buffering", size>>20, 2*rssHeadroom>>20)
	}

	bin := buildBinary(t)
	srv := startBinary(t, bin, freePort(t), "--data", t.TempDir())
	pid := srv.cmd.Process.Pid
	c := newClients(srv.url, "AKIDANY", "anysecret")
	ctx := context.Background()
	makeBuckets(t, c, "asyncin", "asyncout")
	deployAsync(t, c, "big", fixtureImage(t), nil)

	idle := readProcStatus(t, pid)
	limit := idle.rss + rssHeadroom
	t.Logf("idle server: VmRSS %d MiB, VmHWM %d MiB; bound on VmRSS and VmHWM: %d MiB (idle + %d MiB); payload %d MiB",
		idle.rss>>20, idle.hwm>>20, limit>>20, rssHeadroom>>20, size>>20)
	mem := sampleMemory(t, pid)

	// Upload: the transfer manager reads the generator part by part.
	begin := time.Now()
	src := &lineSource{size: size}
	tm := transfermanager.New(s3Client(c), func(o *transfermanager.Options) {
		o.PartSizeBytes, o.MultipartUploadThreshold, o.Concurrency = 16<<20, 16<<20, 2
	})
	if _, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket: aws.String("asyncin"), Key: aws.String("big.txt"), Body: src, ContentType: aws.String("text/plain"),
	}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	upload := time.Since(begin)
	afterUpload := mem.peak()

	// Invoke and wait for the output (or a failure object).
	begin = time.Now()
	out := invokeAsync(t, c, "big", "s3://asyncin/big.txt", "mode=lines")
	s3c := s3Client(c)
	outBucket, outKey := splitURI(aws.ToString(out.OutputLocation))
	failBucket, failKey := splitURI(aws.ToString(out.FailureLocation))
	var outSize int64
	waitFor(t, 10*time.Minute, "the output of "+aws.ToString(out.InferenceId), func() (bool, string) {
		if h, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &outBucket, Key: &outKey}); err == nil {
			outSize = aws.ToInt64(h.ContentLength)
			return true, ""
		}
		if reason, ok := getObject(t, c, "s3://"+failBucket+"/"+failKey); ok {
			t.Fatalf("the request failed: %s", reason)
		}
		return false, "no output yet"
	})
	process := time.Since(begin)
	afterProcess := mem.peak()

	// Download and check against the transform of the same generator.
	begin = time.Now()
	got, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: &outBucket, Key: &outKey})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	gotHash := sha256.New()
	n, err := io.Copy(gotHash, got.Body)
	got.Body.Close()
	if err != nil {
		t.Fatalf("download: %v after %d bytes", err, n)
	}
	download := time.Since(begin)
	wantSize, wantSum := expectedOutput(size)
	if n != wantSize || outSize != wantSize {
		t.Errorf("output: %d bytes downloaded, HeadObject %d; want %d", n, outSize, wantSize)
	}
	if sum := hex.EncodeToString(gotHash.Sum(nil)); sum != wantSum {
		t.Errorf("output SHA-256 %s, want %s", sum, wantSum)
	}

	peak := mem.stop()
	final := readProcStatus(t, pid)
	mbps := func(b int64, d time.Duration) float64 { return float64(b) / (1 << 20) / d.Seconds() }
	t.Logf("input %d bytes (%d lines), output %d bytes", src.n, src.lines, n)
	t.Logf("upload %.1f s (%.0f MiB/s); process %.1f s (%.0f MiB/s in); download %.1f s", upload.Seconds(), mbps(src.n, upload), process.Seconds(), mbps(src.n, process), download.Seconds())
	t.Logf("server VmRSS peak (sampled): %d MiB during upload, %d MiB by the output, %d MiB overall; VmHWM %d MiB (idle %d MiB, %d samples)",
		afterUpload>>20, afterProcess>>20, peak>>20, final.hwm>>20, idle.rss>>20, mem.count())
	if peak > limit {
		t.Errorf("server VmRSS peaked at %d MiB: more than %d MiB (idle %d MiB + %d MiB) for a %d MiB payload; something buffers it",
			peak>>20, limit>>20, idle.rss>>20, rssHeadroom>>20, size>>20)
	}
	if final.hwm > limit {
		t.Errorf("server VmHWM %d MiB: more than %d MiB (idle %d MiB + %d MiB) for a %d MiB payload; something buffers it",
			final.hwm>>20, limit>>20, idle.rss>>20, rssHeadroom>>20, size>>20)
	}
	if t.Failed() {
		t.Logf("server log:\n%s", srv.log)
	}
}

func splitURI(uri string) (bucket, key string) {
	bucket, key, _ = strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	return bucket, key
}

// lineSource is an io.Reader of about size bytes of text: numbered lines
// of 30 to 229 bytes, newline-terminated, the same every time. It holds
// one line at a time.
type lineSource struct {
	size  int64
	n     int64 // bytes produced
	lines int
	line  []byte
	off   int
}

const lineFill = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// next makes the next line (with its newline), or returns nil at the end.
func (g *lineSource) next() []byte {
	if g.n >= g.size {
		return nil
	}
	i := g.lines
	g.line = strconv.AppendInt(g.line[:0], int64(i), 10)
	g.line = append(g.line, ' ')
	for fill := 20 + i*7919%200; fill > 0; {
		k := min(fill, len(lineFill))
		g.line = append(g.line, lineFill[:k]...)
		fill -= k
	}
	g.line = append(g.line, '\n')
	g.lines++
	g.n += int64(len(g.line))
	return g.line
}

func (g *lineSource) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if g.off == len(g.line) {
			if g.next() == nil {
				break
			}
			g.off = 0
		}
		k := copy(p, g.line[g.off:])
		g.off += k
		p = p[k:]
		total += k
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// expectedOutput is the size and SHA-256 of the fixture's "lines"
// transform of a lineSource of size bytes, computed line by line.
func expectedOutput(size int64) (int64, string) {
	h := sha256.New()
	w := bufio.NewWriterSize(h, 1<<20)
	var n int64
	g := &lineSource{size: size}
	for line := g.next(); line != nil; line = g.next() {
		k, _ := w.WriteString("got:")
		m, _ := w.Write(line)
		n += int64(k + m)
	}
	_ = w.Flush()
	return n, hex.EncodeToString(h.Sum(nil))
}

type procMem struct{ rss, hwm int64 }

// readProcStatus reads VmRSS and VmHWM (in bytes) of a process.
func readProcStatus(t testing.TB, pid int) procMem {
	t.Helper()
	m, err := procStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func procStatus(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	var m procMem
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.rss = v << 10
		case "VmHWM:":
			m.hwm = v << 10
		}
	}
	if m.rss == 0 || m.hwm == 0 {
		return m, fmt.Errorf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return m, nil
}

// memSampler reads a process's VmRSS every 20 ms and keeps the peak; the
// test owns its goroutine and stops it with stop.
type memSampler struct {
	mu      sync.Mutex
	max     int64
	samples int
	done    chan struct{}
	wg      sync.WaitGroup
}

func sampleMemory(t testing.TB, pid int) *memSampler {
	s := &memSampler{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if m, err := procStatus(pid); err == nil {
				s.mu.Lock()
				s.max = max(s.max, m.rss)
				s.samples++
				s.mu.Unlock()
			}
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *memSampler) peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

func (s *memSampler) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// stop ends sampling (idempotent) and returns the peak.
func (s *memSampler) stop() int64 {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.wg.Wait()
	return s.peak()
}
