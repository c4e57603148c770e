package objstore

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateBucket(t *testing.T) {
	for _, ok := range []string{"abc", "my-bucket", "my.bucket.1", "endpoints", strings.Repeat("a", 63)} {
		if err := ValidateBucket(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ab", strings.Repeat("a", 64), "Upper", "a_b", "-abc", "abc-", "a..b", "192.168.1.1",
		"xn--abc", "abc-s3alias", ".tmp", ".uploads", "../x", "a/b", "abc\x00"} {
		if err := ValidateBucket(bad); !errors.Is(err, ErrInvalidBucket) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestKeyPath(t *testing.T) {
	for key, want := range map[string]string{
		"a":         "a",
		"a/b/c.txt": "a/b/c.txt",
		"dir/":      "dir/%",
		"a//b":      "a/%/b",
		"%x":        "%%x",
		"a/%/b":     "a/%%/b",
		"..a/b..":   "..a/b..",
	} {
		got, err := keyPath(key)
		if err != nil || got != filepath.FromSlash(want) {
			t.Errorf("keyPath(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	for _, bad := range []string{"", "/abs", "a/../b", "..", "../x", "a/.", "./a", "a\x00b", "\xff", strings.Repeat("k", 1025), strings.Repeat("s", 256)} {
		if _, err := keyPath(bad); err == nil {
			t.Errorf("keyPath(%q) accepted", bad)
		}
	}
}

// FuzzKeyPath checks that every accepted key maps to a relative path that
// stays below its bucket directory and decodes back to the key.
func FuzzKeyPath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "dir/", "../x", "a/../../etc/passwd", "%", "%%/%", "a//b", "/abs", "x\x00y", "\\..\\x", "..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p, err := keyPath(key)
		if err != nil {
			return
		}
		if filepath.IsAbs(p) || !filepath.IsLocal(p) {
			t.Fatalf("key %q maps outside its bucket: %q", key, p)
		}
		if len(key) > MaxKeyBytes || strings.ContainsRune(key, 0) {
			t.Fatalf("key %q should have been refused", key)
		}
		root := "/root/bucket"
		if full := filepath.Join(root, p); !strings.HasPrefix(full, root+"/") {
			t.Fatalf("key %q escapes: %q", key, full)
		}
		var segs []string
		for _, name := range strings.Split(filepath.ToSlash(p), "/") {
			seg, ok := segmentKey(name)
			if !ok {
				t.Fatalf("key %q produced reserved name %q", key, name)
			}
			segs = append(segs, seg)
		}
		if back := strings.Join(segs, "/"); back != key {
			t.Fatalf("key %q decodes back as %q", key, back)
		}
	})
}

func FuzzValidateBucket(f *testing.F) {
	for _, s := range []string{"abc", "..", ".tmp", "a..b", "1.2.3.4", "Abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateBucket(name) != nil {
			return
		}
		if !filepath.IsLocal(name) || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") || name == ".." {
			t.Fatalf("bucket %q accepted but unsafe as a directory name", name)
		}
	})
}

func TestRangeResolve(t *testing.T) {
	for _, c := range []struct {
		r          Range
		size       int64
		start, n   int64
		unsatisfia bool
	}{
		{Range{0, 9}, 100, 0, 10, false},
		{Range{90, -1}, 100, 90, 10, false},
		{Range{90, 500}, 100, 90, 10, false},
		{Range{-10, -1}, 100, 90, 10, false},
		{Range{-500, -1}, 100, 0, 100, false},
		{Range{100, -1}, 100, 0, 0, true},
		{Range{0, -1}, 0, 0, 0, true},
	} {
		s, n, err := c.r.Resolve(c.size)
		if (err != nil) != c.unsatisfia || (err == nil && (s != c.start || n != c.n)) {
			t.Errorf("%+v of %d = %d,%d,%v", c.r, c.size, s, n, err)
		}
	}
}
