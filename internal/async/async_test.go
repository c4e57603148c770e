package async

import (
	"strings"
	"testing"

	"github.com/inferbox/inferbox/internal/hosting"
)

func TestLocations(t *testing.T) {
	for _, tc := range []struct {
		out, fail, id, wantOut, wantFail string
	}{
		{"s3://b/p", "s3://b/f/", "id1", "s3://b/p/id1.out", "s3://b/f/id1-error.out"},
		{"s3://b/p/", "", "x", "s3://b/p/x.out", "s3://b/p/x-error.out"},
	} {
		o, f := Locations(&hosting.AsyncOutput{S3OutputPath: tc.out, S3FailurePath: tc.fail}, tc.id)
		if o != tc.wantOut || f != tc.wantFail {
			t.Errorf("Locations(%q,%q,%q) = %q, %q", tc.out, tc.fail, tc.id, o, f)
		}
	}
}

func TestCappedKeepsPrefixAndNotesOverflow(t *testing.T) {
	c := &capped{limit: 5}
	_, _ = c.Write([]byte("abc"))
	_, _ = c.Write([]byte("de"))
	if c.over || c.buf.String() != "abcde" {
		t.Fatalf("at the limit: over %v buf %q", c.over, c.buf.String())
	}
	_, _ = c.Write([]byte("f"))
	if !c.over || c.buf.String() != "abcde" {
		t.Fatalf("past the limit: over %v buf %q", c.over, c.buf.String())
	}
}

func TestNewIDIsUUIDShaped(t *testing.T) {
	a, b := newID(), newID()
	if a == b || len(a) != 36 || strings.Count(a, "-") != 4 {
		t.Fatalf("ids %q %q", a, b)
	}
}
