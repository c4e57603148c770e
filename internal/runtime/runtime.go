// Package runtime defines what a loaded model is: something that answers
// invocations with streaming bodies. Concrete runtimes live in subpackages
// (xgboost, process, llama); the pool reaches them only through Model.
//
// runtime imports nothing from inferbox; every other package may import it.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Request is one invocation. Body streams: a 1 GB payload never has to sit in
// memory. Size is the body length when known, -1 otherwise.
type Request struct {
	ContentType      string
	Accept           string
	Body             io.Reader
	Size             int64
	CustomAttributes string
	InferenceID      string
}

// Response is a model's answer. The caller must Close Body. A runtime that
// produces output incrementally (a BYO server's chunked response, LLM tokens)
// writes it to Body as it is produced; readers see it as it arrives.
type Response struct {
	ContentType      string
	CustomAttributes string
	Body             io.ReadCloser
	// Usage, when not nil, reports the tokens the invocation read and
	// generated (LLM runtimes), for the usage ledger. It may be called at
	// any time, concurrently with reading Body; once Body has been read to
	// its end the counts are final (for a stream closed early: the tokens
	// generated so far).
	Usage func() (inputTokens, outputTokens int)
}

// Model is one loaded copy of a model. Invoke may be called concurrently;
// the pool bounds how many calls are in flight. Close releases the model;
// Invoke must not be called after Close.
type Model interface {
	Invoke(ctx context.Context, req *Request) (*Response, error)
	Close() error
}

// Spec says what to load and with which resources.
type Spec struct {
	// Kind names the runtime: "xgboost", "process", "llama".
	Kind string
	// Image is the container image (or command) the user gave, for messages.
	Image string
	// ModelDir is the unpacked artifact directory (SageMaker's /opt/ml/model).
	// Empty when the model has no artifact.
	ModelDir string
	// Command is the program to start for process runtimes; "serve" is appended.
	Command []string
	// Environment is the container environment from CreateModel.
	Environment map[string]string
	// Threads is the number of CPU threads the instance may use (from its instance type).
	Threads int
	// MemoryBytes is the instance's memory budget; 0 means unlimited.
	MemoryBytes int64
	// StartupTimeout bounds how long a process runtime may take to answer
	// its health check; 0 means the runtime's default (4 minutes).
	StartupTimeout time.Duration
	// Logger receives the runtime's own logs (and a child process's output).
	Logger *slog.Logger
}

// Loader loads models of one kind.
type Loader interface {
	Load(ctx context.Context, spec Spec) (Model, error)
}

// LoaderFunc adapts a function to Loader.
type LoaderFunc func(ctx context.Context, spec Spec) (Model, error)

// Load calls f.
func (f LoaderFunc) Load(ctx context.Context, spec Spec) (Model, error) { return f(ctx, spec) }

// ModelError is a failure that belongs to the model, not to inferbox: bad
// input rejected by the model, a crash, a model server's non-2xx answer.
// SageMaker reports these as 424 ModelError with OriginalStatusCode.
type ModelError struct {
	// StatusCode is what the model answered (400 for input it rejects,
	// 500 for its own failure, 0 when it gave no answer at all).
	StatusCode int
	// Message is the model's message, safe to show to the caller.
	Message string
}

func (e *ModelError) Error() string {
	return fmt.Sprintf("model error (%d): %s", e.StatusCode, e.Message)
}

// BadInput returns a ModelError with status 400.
func BadInput(format string, args ...any) error {
	return &ModelError{StatusCode: 400, Message: fmt.Sprintf(format, args...)}
}

// ErrUnsupported is wrapped by load errors for artifacts or settings a
// runtime does not implement (an unknown objective, tensor type, ...).
var ErrUnsupported = errors.New("unsupported")
