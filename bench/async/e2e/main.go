// Command e2e measures the end-to-end latency of tiny async requests on a
// warm inferbox async endpoint, one request at a time: from sending
// InvokeEndpointAsync to (a) the success notification arriving at this
// program's webhook, and (b) in a second pass, the output object being
// readable (HEAD polled every -poll). It prints p50/p90/p99/max for each.
//
//	e2e -url http://127.0.0.1:PORT -endpoint NAME -input s3://b/k -webhook 127.0.0.1:PORT2 -n 200
//
// The endpoint's SuccessTopic must be http://<-webhook>/. Requests are
// unsigned (accepted on loopback when no access keys are configured).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "inferbox server URL")
	endpoint := flag.String("endpoint", "", "async endpoint")
	input := flag.String("input", "", "input location (s3://bucket/key)")
	webhook := flag.String("webhook", "", "address to receive notifications on (host:port)")
	n := flag.Int("n", 200, "requests per pass")
	poll := flag.Duration("poll", time.Millisecond, "output HEAD polling interval in pass (b)")
	flag.Parse()
	if *url == "" || *endpoint == "" || *input == "" || *webhook == "" {
		flag.Usage()
		os.Exit(2)
	}

	// arrived returns the channel closed when id's notification arrives;
	// whichever of the 202 and the notification comes first creates it.
	var mu sync.Mutex
	chans := map[string]chan struct{}{}
	arrived := func(id string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		ch, ok := chans[id]
		if !ok {
			ch = make(chan struct{})
			chans[id] = ch
		}
		return ch
	}
	seen := map[string]bool{}
	ln, err := net.Listen("tcp", *webhook)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			InferenceID string `json:"inferenceId"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		ch := arrived(ev.InferenceID)
		mu.Lock()
		if !seen[ev.InferenceID] { // at least once: a duplicate is possible
			seen[ev.InferenceID] = true
			close(ch)
		}
		mu.Unlock()
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	client := &http.Client{Timeout: 30 * time.Second}
	submit := func() (id, output string) {
		req, _ := http.NewRequest(http.MethodPost, *url+"/endpoints/"+*endpoint+"/async-invocations", nil)
		req.Header.Set("X-Amzn-SageMaker-InputLocation", *input)
		req.Header.Set("X-Amzn-SageMaker-Content-Type", "text/csv")
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ InferenceId string }
		if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&out) != nil {
			b, _ := io.ReadAll(resp.Body)
			log.Fatalf("submit: %s %s", resp.Status, b)
		}
		return out.InferenceId, resp.Header.Get("X-Amzn-SageMaker-OutputLocation")
	}

	// Warm up: the instance is started and every code path has run.
	for range 10 {
		id, _ := submit()
		select {
		case <-arrived(id):
		case <-time.After(30 * time.Second):
		}
	}

	notified := make([]time.Duration, 0, *n)
	for range *n {
		t0 := time.Now()
		id, _ := submit()
		select {
		case <-arrived(id):
		case <-time.After(30 * time.Second):
			log.Fatalf("no notification for %s", id)
		}
		notified = append(notified, time.Since(t0))
	}
	report("submit -> success notification", notified)

	visible := make([]time.Duration, 0, *n)
	for range *n {
		t0 := time.Now()
		_, output := submit()
		u := *url + "/" + strings.TrimPrefix(output, "s3://")
		for {
			resp, err := client.Head(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Since(t0) > 30*time.Second {
				log.Fatalf("no output at %s", output)
			}
			time.Sleep(*poll)
		}
		visible = append(visible, time.Since(t0))
	}
	report("submit -> output readable", visible)
}

func report(what string, d []time.Duration) {
	slices.Sort(d)
	q := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000 }
	fmt.Printf("%-32s n=%d  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", what, len(d), q(0.5), q(0.9), q(0.99), q(1))
}
