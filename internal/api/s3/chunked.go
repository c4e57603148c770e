package s3

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
)

// chunkedReader decodes an aws-chunked body, the framing SigV4 streaming
// uploads use (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER],
// STREAMING-UNSIGNED-PAYLOAD-TRAILER):
//
//	<hex size>[;chunk-signature=<64 hex>]\r\n<size bytes>\r\n
//	...
//	0[;chunk-signature=...]\r\n
//	[<trailer name>:<value>\r\n]...   (e.g. x-amz-checksum-crc32:AAAAAA==)
//	\r\n
//
// Chunk signatures are parsed but not verified: the request's seed
// signature was verified, and the payload is checked by its trailing or
// header checksum when the client sent one.
type chunkedReader struct {
	br      *bufio.Reader
	left    int64 // bytes left in the current chunk
	total   int64
	want    int64 // x-amz-decoded-content-length, or -1
	done    bool
	err     error
	trailer map[string]string
}

func newChunkedReader(r io.Reader, decodedLength int64) *chunkedReader {
	return &chunkedReader{br: bufio.NewReaderSize(r, 64<<10), want: decodedLength, trailer: map[string]string{}}
}

const maxChunkLine = 4096

func (c *chunkedReader) line() (string, error) {
	var buf []byte
	for {
		frag, err := c.br.ReadSlice('\n')
		buf = append(buf, frag...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull || len(buf) > maxChunkLine {
			if err == io.EOF || err == bufio.ErrBufferFull {
				return "", errorf(codeIncompleteBody, "The aws-chunked body ended in the middle of a chunk header.")
			}
			return "", err
		}
	}
	if len(buf) > maxChunkLine {
		return "", errorf(codeIncompleteBody, "An aws-chunked chunk header is too long.")
	}
	return string(bytes.TrimRight(buf, "\r\n")), nil
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		hdr, err := c.line()
		if err != nil {
			c.err = err
			return 0, err
		}
		if hdr == "" && c.total > 0 {
			continue // the CRLF that ends a chunk's data
		}
		sizeText, _, _ := strings.Cut(hdr, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(sizeText), 16, 64)
		if err != nil || n < 0 {
			c.err = errorf(codeIncompleteBody, "Malformed aws-chunked chunk size %q.", trunc(hdr))
			return 0, c.err
		}
		if n == 0 {
			if err := c.readTrailer(); err != nil {
				c.err = err
				return 0, err
			}
			c.done = true
			if c.want >= 0 && c.total != c.want {
				c.err = errorf(codeIncompleteBody, "The decoded body is %d bytes; x-amz-decoded-content-length says %d.", c.total, c.want)
				return 0, c.err
			}
			return 0, io.EOF
		}
		c.left = n
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	c.total += int64(n)
	if c.left == 0 {
		// Chunk data ends with CRLF.
		var crlf [2]byte
		if _, err := io.ReadFull(c.br, crlf[:]); err != nil || crlf != [2]byte{'\r', '\n'} {
			c.err = errorf(codeIncompleteBody, "An aws-chunked chunk is not followed by CRLF.")
			return n, nil
		}
	}
	if err == io.EOF {
		c.err = errorf(codeIncompleteBody, "The aws-chunked body ended in the middle of a chunk.")
		return n, nil
	}
	return n, err
}

func (c *chunkedReader) readTrailer() error {
	for i := 0; ; i++ {
		l, err := c.line()
		if err == nil && l == "" {
			return nil
		}
		if err != nil {
			// Some clients end the body right after the last trailer line.
			if len(c.trailer) > 0 || i == 0 {
				if _, eof := c.br.Peek(1); eof == io.EOF {
					return nil
				}
			}
			return err
		}
		if i > 64 {
			return errorf(codeIncompleteBody, "Too many aws-chunked trailer lines.")
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return errorf(codeIncompleteBody, "Malformed aws-chunked trailer line.")
		}
		c.trailer[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
