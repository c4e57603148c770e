package awsproto

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/inferbox/inferbox/internal/apierr"
)

// Credentials maps access key ids to secret keys. When it is empty, the
// Verifier accepts any signature (the server listens on loopback only).
type Credentials map[string]string

// Verifier checks AWS Signature Version 4 on requests by re-signing them
// with the AWS SDK's signer and comparing signatures, so the canonical
// request is built by the same code the clients use.
type Verifier struct {
	creds   Credentials
	maxBody int64 // bodies up to this size are hashed when the client sent no payload hash
	now     func() time.Time
	signer  *v4.Signer
}

// NewVerifier returns a verifier; maxBody bounds how much of a body it will
// buffer to hash.
func NewVerifier(creds Credentials, maxBody int64) *Verifier {
	return &Verifier{creds: creds, maxBody: maxBody, now: time.Now, signer: v4.NewSigner()}
}

// Enabled reports whether signatures are checked.
func (v *Verifier) Enabled() bool { return len(v.creds) > 0 }

// Identity is who signed a request.
type Identity struct {
	AccessKeyID string
	Region      string
	Service     string
}

type sigParts struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

func parseAuthorization(h string) (sigParts, bool) {
	var p sigParts
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return p, false
	}
	for _, kv := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return p, false
		}
		switch k {
		case "Credential":
			parts := strings.Split(val, "/")
			if len(parts) != 5 {
				return p, false
			}
			p.accessKey, p.date, p.region, p.service = parts[0], parts[1], parts[2], parts[3]
		case "SignedHeaders":
			p.signedHeaders = strings.Split(val, ";")
		case "Signature":
			p.signature = val
		}
	}
	return p, p.accessKey != "" && p.signature != ""
}

// Identify returns who signed r without checking the signature.
func Identify(r *http.Request) Identity {
	p, _ := parseAuthorization(r.Header.Get("Authorization"))
	return Identity{AccessKeyID: p.accessKey, Region: p.region, Service: p.service}
}

// Verify checks r's signature. It may read and replace r.Body (to hash it).
// Errors are *apierr.Error of kind Unauthorized with AWS's codes.
func (v *Verifier) Verify(r *http.Request) (Identity, error) {
	p, ok := parseAuthorization(r.Header.Get("Authorization"))
	id := Identity{AccessKeyID: p.accessKey, Region: p.region, Service: p.service}
	if !v.Enabled() {
		return id, nil
	}
	if r.Header.Get("Authorization") == "" {
		return id, &apierr.Error{Kind: apierr.Unauthorized, Code: "MissingAuthenticationTokenException", Message: "Missing Authentication Token"}
	}
	if !ok {
		return id, &apierr.Error{Kind: apierr.Unauthorized, Code: "IncompleteSignatureException", Message: "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters in AWS4-HMAC-SHA256 format."}
	}
	secret, known := v.creds[p.accessKey]
	if !known {
		return id, &apierr.Error{Kind: apierr.Unauthorized, Code: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signTime, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return id, &apierr.Error{Kind: apierr.Unauthorized, Code: "IncompleteSignatureException", Message: "Missing or malformed X-Amz-Date header."}
	}
	if d := v.now().Sub(signTime); d > 15*time.Minute || d < -15*time.Minute {
		return id, &apierr.Error{Kind: apierr.Unauthorized, Code: "InvalidSignatureException", Message: fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)", amzDate, v.now().Add(-15*time.Minute).UTC().Format("20060102T150405Z"), v.now().UTC().Format("20060102T150405Z"))}
	}
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	if payloadHash == "" {
		payloadHash, err = v.hashBody(r)
		if err != nil {
			return id, err
		}
	}
	// Rebuild the request with exactly the headers the client signed.
	clone, err := http.NewRequestWithContext(context.Background(), r.Method, r.URL.String(), nil)
	if err != nil {
		return id, &apierr.Error{Kind: apierr.Unauthorized, Code: "InvalidSignatureException", Message: "The request URL cannot be signed: " + err.Error()}
	}
	clone.URL.Path, clone.URL.RawPath = r.URL.Path, r.URL.RawPath
	clone.Host = r.Host
	for _, h := range p.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			clone.ContentLength = r.ContentLength
		default:
			clone.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: p.accessKey, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	err = v.signer.SignHTTP(context.Background(), creds, clone, payloadHash, p.service, p.region, signTime, func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = p.service == "s3"
	})
	if err != nil {
		return id, &apierr.Error{Kind: apierr.Unauthorized, Code: "InvalidSignatureException", Message: err.Error()}
	}
	want, _ := parseAuthorization(clone.Header.Get("Authorization"))
	if !hmac.Equal([]byte(want.signature), []byte(p.signature)) {
		return id, &apierr.Error{Kind: apierr.Unauthorized, Code: "InvalidSignatureException", Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return id, nil
}

// hashBody buffers a body up to maxBody to compute its SHA-256.
func (v *Verifier) hashBody(r *http.Request) (string, error) {
	if r.Body == nil || r.Body == http.NoBody {
		sum := sha256.Sum256(nil)
		return hex.EncodeToString(sum[:]), nil
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, v.maxBody+1))
	if err != nil {
		return "", &apierr.Error{Kind: apierr.Validation, Message: "reading request body: " + err.Error()}
	}
	if int64(len(data)) > v.maxBody {
		return "", &apierr.Error{Kind: apierr.PayloadTooLarge, Message: fmt.Sprintf("HTTP content length exceeded %d bytes.", v.maxBody)}
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
