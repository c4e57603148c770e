package s3

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/inferbox/inferbox/internal/apierr"
	"github.com/inferbox/inferbox/internal/objstore"
)

// S3 error codes and statuses, as S3 sends them
// (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
const (
	codeAccessDenied         = "AccessDenied"
	codeBadDigest            = "BadDigest"
	codeBucketExists         = "BucketAlreadyOwnedByYou"
	codeBucketNotEmpty       = "BucketNotEmpty"
	codeEntityTooLarge       = "EntityTooLarge"
	codeEntityTooSmall       = "EntityTooSmall"
	codeIncompleteBody       = "IncompleteBody"
	codeInternal             = "InternalError"
	codeInvalidAccessKey     = "InvalidAccessKeyId"
	codeInvalidArgument      = "InvalidArgument"
	codeInvalidBucketName    = "InvalidBucketName"
	codeInvalidDigest        = "InvalidDigest"
	codeInvalidPart          = "InvalidPart"
	codeInvalidPartOrder     = "InvalidPartOrder"
	codeInvalidRange         = "InvalidRange"
	codeInvalidRequest       = "InvalidRequest"
	codeKeyConflict          = "KeyConflict" // inferbox's: "a" and "a/b" cannot both exist
	codeKeyTooLong           = "KeyTooLongError"
	codeMalformedXML         = "MalformedXML"
	codeMalformedHeader      = "AuthorizationHeaderMalformed"
	codeMethodNotAllowed     = "MethodNotAllowed"
	codeNoSuchBucket         = "NoSuchBucket"
	codeNoSuchKey            = "NoSuchKey"
	codeNoSuchUpload         = "NoSuchUpload"
	codeNotImplemented       = "NotImplemented"
	codeSHA256Mismatch       = "XAmzContentSHA256Mismatch"
	codeSignatureDoesntMatch = "SignatureDoesNotMatch"
	codeStorageFull          = "InsufficientStorage" // inferbox's: the data directory's disk is full
	codeTimeSkewed           = "RequestTimeTooSkewed"
)

var statuses = map[string]int{
	codeAccessDenied: 403, codeBadDigest: 400, codeBucketExists: 409, codeBucketNotEmpty: 409,
	codeEntityTooLarge: 400, codeEntityTooSmall: 400, codeIncompleteBody: 400, codeInternal: 500,
	codeInvalidAccessKey: 403, codeInvalidArgument: 400, codeInvalidBucketName: 400, codeInvalidDigest: 400,
	codeInvalidPart: 400, codeInvalidPartOrder: 400, codeInvalidRange: 416, codeInvalidRequest: 400,
	codeKeyConflict: 409, codeKeyTooLong: 400, codeMalformedXML: 400, codeMalformedHeader: 400,
	codeMethodNotAllowed: 405, codeNoSuchBucket: 404, codeNoSuchKey: 404, codeNoSuchUpload: 404,
	codeNotImplemented: 501, codeSHA256Mismatch: 400, codeSignatureDoesntMatch: 403, codeStorageFull: 507,
	codeTimeSkewed: 403, "PreconditionFailed": 412, "InvalidPartNumber": 416,
}

// s3Error is an error with S3's code.
type s3Error struct {
	code, msg string
	err       error // cause, for logs
}

func (e *s3Error) Error() string { return e.code + ": " + e.msg }
func (e *s3Error) Unwrap() error { return e.err }

func errorf(code, format string, args ...any) error {
	return &s3Error{code: code, msg: fmt.Sprintf(format, args...)}
}

// toS3 maps any error to S3's code and message.
func toS3(err error) *s3Error {
	var se *s3Error
	if errors.As(err, &se) {
		return se
	}
	var ae *apierr.Error
	if errors.As(err, &ae) && ae.Kind == apierr.Unauthorized {
		switch ae.Code {
		case "UnrecognizedClientException":
			return &s3Error{codeInvalidAccessKey, "The AWS Access Key Id you provided does not exist in our records.", err}
		case "MissingAuthenticationTokenException":
			return &s3Error{codeAccessDenied, "Access Denied", err}
		case "IncompleteSignatureException":
			return &s3Error{codeMalformedHeader, ae.Message, err}
		}
		if strings.HasPrefix(ae.Message, "Signature expired") {
			return &s3Error{codeTimeSkewed, "The difference between the request time and the current time is too large.", err}
		}
		return &s3Error{codeSignatureDoesntMatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method.", err}
	}
	m := func(code, msg string) *s3Error { return &s3Error{code, msg, err} }
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return m(codeNoSuchKey, "The specified key does not exist.")
	case errors.Is(err, objstore.ErrNoSuchBucket):
		return m(codeNoSuchBucket, "The specified bucket does not exist")
	case errors.Is(err, objstore.ErrBucketExists):
		return m(codeBucketExists, "Your previous request to create the named bucket succeeded and you already own it.")
	case errors.Is(err, objstore.ErrBucketNotEmpty):
		return m(codeBucketNotEmpty, "The bucket you tried to delete is not empty")
	case errors.Is(err, objstore.ErrInvalidBucket):
		return m(codeInvalidBucketName, "The specified bucket is not valid.")
	case errors.Is(err, objstore.ErrKeyTooLong):
		return m(codeKeyTooLong, "Your key is too long")
	case errors.Is(err, objstore.ErrInvalidKey):
		return m(codeInvalidArgument, "Invalid key: "+errText(err))
	case errors.Is(err, objstore.ErrKeyConflict):
		return m(codeKeyConflict, "The key conflicts with an existing key: "+errText(err))
	case errors.Is(err, objstore.ErrInvalidRange):
		return m(codeInvalidRange, "The requested range is not satisfiable")
	case errors.Is(err, objstore.ErrNoSpace):
		return m(codeStorageFull, "The server's storage is full; the object was not stored.")
	case errors.Is(err, objstore.ErrNoSuchUpload):
		return m(codeNoSuchUpload, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	case errors.Is(err, objstore.ErrPartOrder):
		return m(codeInvalidPartOrder, "The list of parts was not in ascending order. Parts must be ordered by part number.")
	case errors.Is(err, objstore.ErrInvalidPart):
		return m(codeInvalidPart, "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
	case errors.Is(err, objstore.ErrEntityTooSmall):
		return m(codeEntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size.")
	case errors.Is(err, objstore.ErrBadDigest):
		return m(codeBadDigest, "The Content-MD5 you specified did not match what we received.")
	case errors.Is(err, context.Canceled):
		return m(codeIncompleteBody, "The request was cancelled before it completed.")
	}
	return m(codeInternal, "We encountered an internal error. Please try again.")
}

func errText(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}

type errorBody struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string
	Message    string
	BucketName string `xml:",omitempty"`
	Key        string `xml:",omitempty"`
	Resource   string
	RequestID  string `xml:"RequestId"`
	HostID     string `xml:"HostId"`
}

// fail writes err as S3's XML error (no body for HEAD).
func (h *Handler) fail(w http.ResponseWriter, r *request, err error) {
	e := toS3(err)
	status, ok := statuses[e.code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 && e.code != codeNotImplemented {
		h.log.Error("s3 request failed", "method", r.Method, "bucket", r.bucket, "code", e.code, "err", err)
	} else {
		h.log.Debug("s3 request refused", "method", r.Method, "bucket", r.bucket, "code", e.code, "err", err)
	}
	body := errorBody{Code: e.code, Message: e.msg, Resource: r.URL.Path, RequestID: r.id, HostID: r.id}
	switch e.code {
	case codeNoSuchKey:
		body.Key = r.key
	case codeNoSuchBucket, codeBucketExists, codeBucketNotEmpty, codeInvalidBucketName:
		body.BucketName = r.bucket
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	writeXML(w, status, body)
}

// writeXML writes v with the XML declaration S3 sends.
func writeXML(w http.ResponseWriter, status int, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		out = []byte("<Error><Code>InternalError</Code><Message>response encoding failed</Message></Error>")
	}
	out = append([]byte(xml.Header), out...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	_, _ = w.Write(out)
}
