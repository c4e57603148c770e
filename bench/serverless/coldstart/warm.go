package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// load is what one endpoint did in one round.
type load struct {
	requests, errors int
	elapsed          time.Duration
	lat              []float64 // ms, sorted
}

func (l load) rps() float64 { return float64(l.requests) / l.elapsed.Seconds() }

func (l load) mean() float64 {
	var sum float64
	for _, x := range l.lat {
		sum += x
	}
	return sum / float64(len(l.lat))
}

func warm(args []string) error {
	fs := flag.NewFlagSet("warm", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "inferbox URL")
	endpoints := fs.String("endpoints", "", "comma-separated endpoints; ratios are to the first")
	bodyPath := fs.String("body", "", "request body file")
	contentType := fs.String("content-type", "text/csv", "request Content-Type")
	conns := fs.Int("conns", 1, "concurrent closed-loop clients")
	duration := fs.Duration("duration", 10*time.Second, "length of each run")
	rounds := fs.Int("rounds", 3, "rounds, endpoints alternating")
	fs.Parse(args)
	eps := strings.Split(*endpoints, ",")
	if *endpoints == "" || *bodyPath == "" {
		return errors.New("warm: --endpoints and --body are required")
	}
	body, err := os.ReadFile(*bodyPath)
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns},
	}
	fmt.Printf("%d closed-loop client(s), %s per run, Go net/http client\n", *conns, *duration)
	fmt.Printf("%-6s %-10s %9s %9s %9s %9s %7s\n", "round", "endpoint", "req/s", "mean ms", "p50 ms", "p99 ms", "errors")
	for r := 1; r <= *rounds; r++ {
		var first load
		for i, ep := range eps {
			l := run(client, *url+"/endpoints/"+ep+"/invocations", *contentType, body, *conns, *duration)
			fmt.Printf("%-6d %-10s %9.0f %9.3f %9.3f %9.3f %7d\n", r, ep, l.rps(), l.mean(), quantile(l.lat, 0.5), quantile(l.lat, 0.99), l.errors)
			if i == 0 {
				first = l
				continue
			}
			fmt.Printf("       %s/%s: mean %.2fx, p50 %.2fx, p99 %.2fx, throughput %.2fx\n", ep, eps[0],
				l.mean()/first.mean(), quantile(l.lat, 0.5)/quantile(first.lat, 0.5), quantile(l.lat, 0.99)/quantile(first.lat, 0.99), l.rps()/first.rps())
		}
	}
	return nil
}

// run drives url with conns closed-loop clients for d.
func run(client *http.Client, url, contentType string, body []byte, conns int, d time.Duration) load {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var total load
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine load
			for ctx.Err() == nil {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", contentType)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					mine.errors++
					continue
				}
				mine.requests++
				mine.lat = append(mine.lat, float64(time.Since(t0).Nanoseconds())/1e6)
			}
			mu.Lock()
			total.requests += mine.requests
			total.errors += mine.errors
			total.lat = append(total.lat, mine.lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	total.elapsed = time.Since(start)
	slices.Sort(total.lat)
	return total
}
