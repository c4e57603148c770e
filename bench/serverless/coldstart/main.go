// Command coldstart is the driver of the serverless benchmark
// (bench/serverless/run.sh). It has two modes:
//
//	coldstart cold --url URL --endpoint NAME --body FILE [--trials 25]
//
// repeats a cold start: it polls DescribeEndpoint until the serverless
// endpoint has scaled to zero (CurrentInstanceCount 0), then times one
// InvokeEndpoint from the client's side (request written to response body
// read, on a kept-alive loopback connection) and reads the
// X-Inferbox-Cold-Start header's duration_ms. It prints one line per trial
// and the median, p90, minimum and maximum of both.
//
//	coldstart pystart --command "/usr/bin/python3 serve.py" --model DIR [--trials 20]
//
// times a SageMaker-contract model server on its own: start the process
// (with `serve`, SAGEMAKER_BIND_TO_PORT and SM_MODEL_DIR as inferbox sets
// them) and poll GET /ping every millisecond until it answers 200, then kill
// it; the same summary.
//
//	coldstart warm --url URL --endpoints rt,slw --body FILE [--conns 1] [--duration 10s] [--rounds 3]
//
// compares warm endpoints: for each round and each endpoint in turn, conns
// goroutines invoke in a closed loop for the duration, and every request's
// client-side latency is kept (wrk's latency statistics are not used for
// this: at one connection its mean and p99 disagree with its own request
// rate). It prints req/s, mean, p50, p99 and errors per round and endpoint,
// and each endpoint's ratios to the first.
//
// It talks plain HTTP (unsigned AWS JSON 1.1 and REST calls, which inferbox
// accepts on loopback without access keys) and imports nothing from
// inferbox. Output is the benchmark's report, so it is printed with fmt.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: coldstart cold|pystart|warm [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "cold":
		err = cold(os.Args[2:])
	case "pystart":
		err = pystart(os.Args[2:])
	case "warm":
		err = warm(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (want cold, pystart or warm)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

func cold(args []string) error {
	fs := flag.NewFlagSet("cold", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "inferbox URL")
	endpoint := fs.String("endpoint", "", "serverless endpoint name")
	bodyPath := fs.String("body", "", "request body file")
	contentType := fs.String("content-type", "text/csv", "request Content-Type")
	trials := fs.Int("trials", 25, "cold starts to time")
	zeroTimeout := fs.Duration("zero-timeout", 30*time.Second, "how long to wait for scale to zero before a trial")
	fs.Parse(args)
	if *endpoint == "" || *bodyPath == "" {
		return errors.New("cold: --endpoint and --body are required")
	}
	body, err := os.ReadFile(*bodyPath)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Minute}
	ctx := context.Background()

	var walls, headers []float64
	fmt.Printf("%-6s %12s %16s  %s\n", "trial", "client ms", "header ms", "X-Inferbox-Cold-Start")
	for i := 1; i <= *trials; i++ {
		if err := waitZero(ctx, client, *url, *endpoint, *zeroTimeout); err != nil {
			return fmt.Errorf("trial %d: %w", i, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, *url+"/endpoints/"+*endpoint+"/invocations", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", *contentType)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("trial %d: invoke: %w", i, err)
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		wall := time.Since(start)
		if err != nil {
			return fmt.Errorf("trial %d: reading the answer: %w", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("trial %d: status %d: %s", i, resp.StatusCode, out)
		}
		h := resp.Header.Get("X-Inferbox-Cold-Start")
		ms, ok := strings.CutPrefix(h, "true; duration_ms=")
		if !ok {
			return fmt.Errorf("trial %d: X-Inferbox-Cold-Start %q: the invocation did not pay a cold start", i, h)
		}
		hd, err := strconv.ParseFloat(ms, 64)
		if err != nil {
			return fmt.Errorf("trial %d: X-Inferbox-Cold-Start %q: %w", i, h, err)
		}
		w := float64(wall.Microseconds()) / 1000
		walls, headers = append(walls, w), append(headers, hd)
		fmt.Printf("%-6d %12.2f %16.1f  %s\n", i, w, hd, h)
	}
	fmt.Println(summary("client wall time, zero -> first response", walls))
	fmt.Println(summary("X-Inferbox-Cold-Start duration_ms", headers))
	return nil
}

// waitZero polls DescribeEndpoint until the first variant has no instance.
func waitZero(ctx context.Context, client *http.Client, url, endpoint string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := instanceCount(ctx, client, url, endpoint)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still %d instances after %s", n, timeout)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

func instanceCount(ctx context.Context, client *http.Client, url, endpoint string) (int, error) {
	in, _ := json.Marshal(map[string]string{"EndpointName": endpoint})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/", bytes.NewReader(in))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Amz-Target", "SageMaker.DescribeEndpoint")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("DescribeEndpoint: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		EndpointStatus     string
		ProductionVariants []struct{ CurrentInstanceCount int }
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("DescribeEndpoint: status %d: %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("DescribeEndpoint: %w", err)
	}
	if len(out.ProductionVariants) == 0 {
		return 0, fmt.Errorf("DescribeEndpoint: no variants (status %s)", out.EndpointStatus)
	}
	return out.ProductionVariants[0].CurrentInstanceCount, nil
}

func pystart(args []string) error {
	fs := flag.NewFlagSet("pystart", flag.ExitOnError)
	command := fs.String("command", "", "model server command line (\"serve\" is appended)")
	model := fs.String("model", "", "model directory (SM_MODEL_DIR)")
	trials := fs.Int("trials", 20, "starts to time")
	fs.Parse(args)
	argv := strings.Fields(*command)
	if len(argv) == 0 || *model == "" {
		return errors.New("pystart: --command and --model are required")
	}
	dir, err := filepath.Abs(*model)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Second}
	var times []float64
	for i := 1; i <= *trials; i++ {
		d, err := startOnce(client, append(argv, "serve"), dir)
		if err != nil {
			return fmt.Errorf("trial %d: %w", i, err)
		}
		times = append(times, float64(d.Microseconds())/1000)
	}
	fmt.Println(summary(fmt.Sprintf("%q start to first 200 on /ping (1 ms polling)", *command), times))
	return nil
}

// startOnce starts the server, times it to its first 200 on /ping, and
// kills it.
func startOnce(client *http.Client, argv []string, modelDir string) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "SAGEMAKER_BIND_TO_PORT="+strconv.Itoa(port), "SM_MODEL_DIR="+modelDir)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	ping := fmt.Sprintf("http://127.0.0.1:%d/ping", port)
	deadline := start.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(ping)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	return 0, errors.New("no 200 on /ping within 30 s")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// summary is "NAME: n N, median M ms (min, p90, max)".
func summary(name string, xs []float64) string {
	if len(xs) == 0 {
		return name + ": no samples"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return fmt.Sprintf("%s: n %d, median %.2f ms (min %.2f, p90 %.2f, max %.2f)",
		name, len(s), quantile(s, 0.5), s[0], quantile(s, 0.9), s[len(s)-1])
}

// quantile of sorted xs, interpolating between neighbours.
func quantile(xs []float64, q float64) float64 {
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (pos-float64(i))*(xs[i+1]-xs[i])
}
