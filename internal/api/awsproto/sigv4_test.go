package awsproto

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/inferbox/inferbox/internal/apierr"
)

// signed builds a request the way the AWS SDK sends it, signed with secret.
func signed(t *testing.T, secret, service string, body []byte, at time.Time) *http.Request {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/endpoints/my-ep/invocations", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("X-Amz-Target", "SageMaker.Anything")
	req.Header.Set("User-Agent", "aws-sdk-go-v2/1.0")
	sum := sha256.Sum256(body)
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), service, "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	// What arrives at a server: the body is a fresh reader.
	req.Body = http.NoBody
	if len(body) > 0 {
		req.Body = readCloser{bytes.NewReader(body)}
	}
	return req
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func code(err error) string {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestVerify(t *testing.T) {
	v := NewVerifier(Credentials{"AKIDTEST": "secret"}, 1<<20)
	now := time.Now()
	body := []byte("1,2,3\n")

	if _, err := v.Verify(signed(t, "secret", "sagemaker", body, now)); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	if id, err := v.Verify(signed(t, "secret", "sagemaker", nil, now)); err != nil || id.AccessKeyID != "AKIDTEST" || id.Service != "sagemaker" {
		t.Fatalf("empty body: %v %+v", err, id)
	}
	if _, err := v.Verify(signed(t, "wrong", "sagemaker", body, now)); code(err) != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %v", err)
	}
	tampered := signed(t, "secret", "sagemaker", body, now)
	tampered.Body = readCloser{bytes.NewReader([]byte("9,9,9\n"))}
	if _, err := v.Verify(tampered); code(err) != "InvalidSignatureException" {
		t.Fatalf("tampered body: %v", err)
	}
	header := signed(t, "secret", "sagemaker", body, now)
	header.Header.Set("Content-Type", "application/json")
	if _, err := v.Verify(header); code(err) != "InvalidSignatureException" {
		t.Fatalf("tampered signed header: %v", err)
	}
	if _, err := v.Verify(signed(t, "secret", "sagemaker", body, now.Add(-20*time.Minute))); code(err) != "InvalidSignatureException" {
		t.Fatalf("expired: %v", err)
	}
	other := NewVerifier(Credentials{"SOMEONE": "x"}, 1<<20)
	if _, err := other.Verify(signed(t, "secret", "sagemaker", body, now)); code(err) != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %v", err)
	}
	bare := httptest.NewRequest(http.MethodPost, "/", nil)
	if _, err := v.Verify(bare); code(err) != "MissingAuthenticationTokenException" {
		t.Fatalf("unsigned: %v", err)
	}
}

func TestVerifyBodyStillReadable(t *testing.T) {
	v := NewVerifier(Credentials{"AKIDTEST": "secret"}, 1<<20)
	body := []byte("a,b\n")
	req := signed(t, "secret", "sagemaker", body, time.Now())
	if _, err := v.Verify(req); err != nil {
		t.Fatal(err)
	}
	got := new(bytes.Buffer)
	got.ReadFrom(req.Body)
	if got.String() != string(body) {
		t.Fatalf("body after verify = %q", got.String())
	}
}

func TestVerifyDisabledAcceptsAnything(t *testing.T) {
	v := NewVerifier(nil, 1<<20)
	if _, err := v.Verify(signed(t, "whatever", "sagemaker", []byte("x"), time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(httptest.NewRequest(http.MethodPost, "/", nil)); err != nil {
		t.Fatal(err)
	}
}
