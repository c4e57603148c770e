package server

import (
	"net/http"
	"time"

	"github.com/inferbox/inferbox/internal/api/awsproto"
	"github.com/inferbox/inferbox/internal/apierr"
)

// authCodes is the error table for signature failures, shared by every AWS protocol.
var authCodes = awsproto.ErrorCodes{
	apierr.Internal:        {500, "InternalFailure"},
	apierr.Unauthorized:    {403, "AccessDeniedException"},
	apierr.Validation:      {400, "ValidationException"},
	apierr.PayloadTooLarge: {413, ""},
}

// withRequestID sets x-amzn-RequestId on every response and records when
// the request arrived.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(awsproto.WithReceived(r.Context(), time.Now()))
		w.Header().Set("x-amzn-RequestId", awsproto.RequestID())
		next.ServeHTTP(w, r)
	})
}

// signed verifies SigV4 before the AWS handlers run.
func signed(v *awsproto.Verifier, next http.Handler, fail func(http.ResponseWriter, *http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := v.Verify(r); err != nil {
			fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
