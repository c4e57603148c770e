package s3

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// authenticate verifies r's SigV4 signature. Payloads are checked as they
// stream (see body): a signed hex SHA-256 is compared at the end of the
// body, which fails the write before it becomes visible.
func (h *Handler) authenticate(r *http.Request) error {
	if r.Header.Get("Authorization") != "" && r.Header.Get("X-Amz-Content-Sha256") == "" {
		return errorf(codeInvalidRequest, "Missing required header for this request: x-amz-content-sha256")
	}
	_, err := h.verify.Verify(r)
	return err
}

// body returns the request's payload, decoded and checked: aws-chunked
// framing removed, the signed SHA-256 and any x-amz-checksum-* verified at
// EOF (a mismatch is returned instead of io.EOF), and the size bounded.
// size is the payload's length when the client declared it, else -1.
func (h *Handler) body(r *request) (rd io.Reader, size int64, err error) {
	sha := r.Header.Get("X-Amz-Content-Sha256")
	chunked := strings.HasPrefix(sha, "STREAMING-") || strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked")
	size = r.ContentLength
	rd = r.Body
	var checks []check
	if chunked {
		size = -1
		if v := r.Header.Get("X-Amz-Decoded-Content-Length"); v != "" {
			if size, err = strconv.ParseInt(v, 10, 64); err != nil || size < 0 {
				return nil, 0, errorf(codeInvalidArgument, "x-amz-decoded-content-length is not a length: %q", v)
			}
		}
		cr := newChunkedReader(r.Body, size)
		rd = cr
		for _, name := range strings.Split(r.Header.Get("X-Amz-Trailer"), ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			hs := newChecksum(strings.TrimPrefix(name, "x-amz-checksum-"))
			if hs == nil {
				return nil, 0, errorf(codeInvalidRequest, "The trailer %s is not supported.", name)
			}
			checks = append(checks, check{name: name, h: hs, want: func() string { return cr.trailer[name] }})
		}
	} else if len(sha) == 64 {
		want := strings.ToLower(sha)
		checks = append(checks, check{name: "x-amz-content-sha256", h: sha256.New(), hexOut: true, want: func() string { return want }})
	}
	for k, v := range r.Header {
		lk := strings.ToLower(k)
		if alg, ok := strings.CutPrefix(lk, "x-amz-checksum-"); ok && alg != "algorithm" && alg != "type" && alg != "mode" {
			hs := newChecksum(alg)
			if hs == nil {
				continue
			}
			want := v[0]
			checks = append(checks, check{name: lk, h: hs, want: func() string { return want }})
		}
	}
	if size > h.opts.MaxObjectBytes {
		return nil, 0, errorf(codeEntityTooLarge, "Your proposed upload exceeds the maximum allowed size.")
	}
	rd = &limitedReader{r: rd, left: h.opts.MaxObjectBytes}
	if len(checks) > 0 {
		rd = &checkingReader{r: rd, checks: checks}
	}
	return rd, size, nil
}

// check is one digest compared at EOF.
type check struct {
	name   string
	h      hash.Hash
	hexOut bool
	want   func() string
}

func newChecksum(alg string) hash.Hash {
	switch alg {
	case "crc32":
		return crc32.NewIEEE()
	case "crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "crc64nvme":
		return crc64.New(crc64.MakeTable(0x9a6c9329ac4bc9b5))
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	}
	return nil
}

type checkingReader struct {
	r      io.Reader
	checks []check
}

func (c *checkingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for _, ck := range c.checks {
		ck.h.Write(p[:n])
	}
	if err == io.EOF {
		for _, ck := range c.checks {
			sum := ck.h.Sum(nil)
			got := base64.StdEncoding.EncodeToString(sum)
			if ck.hexOut {
				got = hex.EncodeToString(sum)
			}
			if want := ck.want(); got != want {
				if ck.name == "x-amz-content-sha256" {
					return n, errorf(codeSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
				}
				return n, errorf(codeBadDigest, "The %s you specified did not match the calculated checksum.", strings.ToUpper(strings.TrimPrefix(ck.name, "x-amz-checksum-")))
			}
		}
	}
	return n, err
}

type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, errorf(codeEntityTooLarge, "Your proposed upload exceeds the maximum allowed size.")
	}
	return n, err
}
