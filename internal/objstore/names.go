package objstore

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// MaxKeyBytes is S3's limit on a key's UTF-8 length.
const MaxKeyBytes = 1024

// maxSegmentBytes is the longest file name most file systems accept.
const maxSegmentBytes = 255

// ValidateBucket checks name against S3's general-purpose bucket naming
// rules: 3–63 characters of lower-case letters, digits, dots and hyphens,
// starting and ending with a letter or digit, no "..", not shaped like an
// IPv4 address, none of the reserved prefixes and suffixes.
func ValidateBucket(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidBucket, name, why) }
	if len(name) < 3 || len(name) > 63 {
		return bad("must be 3 to 63 characters long")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad("only lower-case letters, digits, dots and hyphens are allowed")
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) {
		return bad("must begin and end with a letter or digit")
	}
	if strings.Contains(name, "..") {
		return bad("must not contain two adjacent dots")
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
		return bad("must not be formatted as an IP address")
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return bad("must not start with " + p)
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return bad("must not end with " + s)
		}
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// ValidateKey checks that key can be stored by the embedded store: valid
// UTF-8 of 1 to 1024 bytes, no NUL, not absolute (no leading "/"), no "."
// or ".." segment, no segment longer than a file name may be.
func ValidateKey(key string) error {
	_, err := keyPath(key)
	return err
}

// keyPath maps a key to a relative file path under its bucket directory.
// Each "/"-separated segment becomes a path element; an empty segment
// (as in "dir/" or "a//b") is stored as "%", and a segment that starts
// with "%" gets one more "%" in front. Every other name starting with "%"
// is never produced, so such files are ignored by listings.
func keyPath(key string) (string, error) {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, trunc(key), why) }
	switch {
	case key == "":
		return "", bad("empty")
	case len(key) > MaxKeyBytes:
		return "", fmt.Errorf("%w: %d bytes (the limit is %d)", ErrKeyTooLong, len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return "", bad("not valid UTF-8")
	case strings.ContainsRune(key, 0):
		return "", bad("contains NUL")
	case strings.HasPrefix(key, "/"):
		return "", bad("absolute keys (a leading /) are not allowed")
	}
	segs := strings.Split(key, "/")
	for i, s := range segs {
		switch {
		case s == "." || s == "..":
			return "", bad(`"." and ".." segments are not allowed`)
		case s == "":
			segs[i] = "%"
		case s[0] == '%':
			segs[i] = "%" + s
		}
		if len(segs[i]) > maxSegmentBytes {
			return "", fmt.Errorf("%w: a segment of %d bytes (the limit is %d)", ErrKeyTooLong, len(segs[i]), maxSegmentBytes)
		}
	}
	return filepath.Join(segs...), nil
}

// segmentKey decodes one file name back to a key segment; ok is false for
// reserved names, which are not objects.
func segmentKey(name string) (string, bool) {
	switch {
	case name == "%":
		return "", true
	case strings.HasPrefix(name, "%%"):
		return name[1:], true
	case strings.HasPrefix(name, "%"):
		return "", false
	}
	return name, true
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
