package transform

import "testing"

func TestRelKey(t *testing.T) {
	for _, tc := range []struct{ base, uri, want string }{
		{"s3://b/in/", "s3://b/in/sub/x.csv", "sub/x.csv"},
		{"s3://b/", "s3://b/x.csv", "x.csv"},
		{"file:///d/in/", "/d/in/x.csv", "x.csv"}, // a file listing names plain paths
		{"file:///d/in/", "file:///d/in/x.csv", "x.csv"},
		{"/d/in/", "/d/in/a/x.csv", "a/x.csv"},
	} {
		if got := relKey(tc.base, tc.uri); got != tc.want {
			t.Errorf("relKey(%q, %q) = %q, want %q", tc.base, tc.uri, got, tc.want)
		}
	}
}
