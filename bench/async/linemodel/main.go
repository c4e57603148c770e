// Command linemodel is the model of bench/async/bigpayload.sh: a
// bring-your-own model server (the SageMaker container contract: `serve`,
// GET /ping, POST /invocations on SAGEMAKER_BIND_TO_PORT) that transforms
// its input line by line as it streams, writing "got:" + line for each
// line, the same transform as the test fixture's "lines" mode. It is in Go
// so that the benchmark measures inferbox's async path rather than the
// speed of a Python loop; the fixture runs the same benchmark for
// comparison (MODEL=python).
//
// It imports nothing from inferbox.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: linemodel serve")
		os.Exit(2)
	}
	port := os.Getenv("SAGEMAKER_BIND_TO_PORT")
	if port == "" {
		port = "8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("POST /invocations", invocations)
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal((&http.Server{Handler: mux}).Serve(ln))
}

// invocations answers each complete input line as it is read; output is
// flushed every 1 MiB, so memory holds one buffer either way.
func invocations(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	in := bufio.NewReaderSize(r.Body, 1<<20)
	out := bufio.NewWriterSize(w, 1<<20)
	flusher := http.NewResponseController(w)
	// Without this the HTTP/1 server reads the whole request body away
	// before the first response byte goes out.
	if err := flusher.EnableFullDuplex(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for {
		line, err := in.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			http.Error(w, "line longer than 1 MiB", http.StatusBadRequest)
			return
		}
		if err != nil { // io.EOF drops a last line without a newline, as the fixture does
			if !errors.Is(err, io.EOF) {
				log.Printf("read: %v", err)
			}
			break
		}
		if out.Available() < len(line)+4 {
			if out.Flush() != nil || flusher.Flush() != nil {
				return
			}
		}
		out.WriteString("got:")
		out.Write(line)
	}
	_ = out.Flush()
}
