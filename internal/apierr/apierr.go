// Package apierr is the one typed error that services return and protocol
// adapters map to the wire. A service says what kind of failure it is and
// words the message the way the real service does; each adapter owns one
// table from Kind to its protocol's status and error code.
//
// apierr imports nothing from inferbox.
package apierr

import (
	"errors"
	"fmt"
)

// Kind classifies a failure for the wire.
type Kind int

const (
	// Internal is a platform fault (500).
	Internal Kind = iota
	// Validation is a bad request: bad parameter, unknown or duplicate
	// resource (SageMaker answers these with ValidationException).
	Validation
	// NotFound is a missing resource where the API has a distinct error
	// (ResourceNotFound / ResourceNotFoundException); SageMaker's hosting
	// APIs report missing resources as Validation instead.
	NotFound
	// LimitExceeded is a quota or capacity refusal (ResourceLimitExceeded).
	LimitExceeded
	// InUse is a resource in a state that forbids the operation (ResourceInUse).
	InUse
	// Throttled is a rate or concurrency refusal the client should retry.
	Throttled
	// NotReady is a model still loading (ModelNotReadyException, 429).
	NotReady
	// Unavailable is a temporary refusal (ServiceUnavailable, 503).
	Unavailable
	// Model is a failure of the customer's model (ModelError, 424).
	Model
	// PayloadTooLarge is a body over the mode's limit.
	PayloadTooLarge
	// Unauthorized is a bad or missing signature.
	Unauthorized
)

// Error is a failure with a kind and a message worded for the caller.
type Error struct {
	Kind    Kind
	Message string
	// Code overrides the adapter's default error code for the kind
	// (e.g. SignatureDoesNotMatch).
	Code string
	// OriginalStatusCode and OriginalMessage describe a model's own answer
	// (Kind Model).
	OriginalStatusCode int
	OriginalMessage    string
	// Err is the underlying cause, for logs; never shown to callers.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a formatted message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Validationf is New(Validation, ...).
func Validationf(format string, args ...any) *Error { return New(Validation, format, args...) }

// As returns the *Error in err's chain, or an Internal error wrapping err.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Internal, Message: "An internal error occurred. Try again.", Err: err}
}
