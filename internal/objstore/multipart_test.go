package objstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// partBodies returns n distinct part bodies of MinPartSize, then a short last one.
func partBodies(n int) [][]byte {
	var out [][]byte
	for i := 1; i < n; i++ {
		out = append(out, bytes.Repeat([]byte{byte('0' + i)}, MinPartSize))
	}
	return append(out, []byte("last part, short"))
}

// multipartETag is S3's ETag of an object assembled from bodies.
func multipartETag(bodies ...[]byte) string {
	h := md5.New()
	for _, b := range bodies {
		s := md5.Sum(b)
		h.Write(s[:])
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(bodies))
}

func uploadPart(t *testing.T, e *Embedded, key, id string, n int, body []byte, size int64) CompletePart {
	t.Helper()
	p, err := e.UploadPart(context.Background(), "bkt", key, id, n, bytes.NewReader(body), size, nil)
	if err != nil {
		t.Fatalf("part %d: %v", n, err)
	}
	if want := md5.Sum(body); p.ETag != hex.EncodeToString(want[:]) || p.Size != int64(len(body)) {
		t.Fatalf("part %d: etag %s size %d", n, p.ETag, p.Size)
	}
	return CompletePart{Number: n, ETag: p.ETag}
}

// TestMultipartCompletePaths uploads parts in the ways clients do and
// checks that Complete gives the same bytes and ETag whichever path it
// takes, that the object appears only on Complete, and that the in-place
// path really renames the upload's data file (no copy).
func TestMultipartCompletePaths(t *testing.T) {
	ctx := context.Background()
	b := partBodies(3)
	other := bytes.Repeat([]byte("x"), MinPartSize)
	cases := []struct {
		name    string
		upload  func(t *testing.T, e *Embedded, id string) []CompletePart
		want    [][]byte
		inPlace bool
	}{
		{"uniform parts in parallel", func(t *testing.T, e *Embedded, id string) []CompletePart {
			// Part 2 fixes the part size; the rest race, last first.
			list := make([]CompletePart, len(b))
			list[1] = uploadPart(t, e, "obj", id, 2, b[1], int64(len(b[1])))
			var wg sync.WaitGroup
			for _, i := range []int{2, 0} {
				wg.Go(func() { list[i] = uploadPart(t, e, "obj", id, i+1, b[i], int64(len(b[i]))) })
			}
			wg.Wait()
			return list
		}, b, true},
		{"short last part before any full one", func(t *testing.T, e *Embedded, id string) []CompletePart {
			// The part size is not known yet, so the last part gets its own file.
			last := uploadPart(t, e, "obj", id, 3, b[2], int64(len(b[2])))
			return []CompletePart{uploadPart(t, e, "obj", id, 1, b[0], int64(len(b[0]))), uploadPart(t, e, "obj", id, 2, b[1], int64(len(b[1]))), last}
		}, b, false},
		{"part uploaded again with other bytes", func(t *testing.T, e *Embedded, id string) []CompletePart {
			var list []CompletePart
			for i := range b {
				list = append(list, uploadPart(t, e, "obj", id, i+1, b[i], int64(len(b[i]))))
			}
			list[1] = uploadPart(t, e, "obj", id, 2, other, int64(len(other)))
			return list
		}, [][]byte{b[0], other, b[2]}, false},
		{"in-place write fails, then retried", func(t *testing.T, e *Embedded, id string) []CompletePart {
			bad := md5.Sum([]byte("something else"))
			if _, err := e.UploadPart(ctx, "bkt", "obj", id, 1, bytes.NewReader(b[0]), int64(len(b[0])), bad[:]); !errors.Is(err, ErrBadDigest) {
				t.Fatalf("bad digest: %v", err)
			}
			var list []CompletePart
			for i := range b {
				list = append(list, uploadPart(t, e, "obj", id, i+1, b[i], int64(len(b[i]))))
			}
			return list
		}, b, false},
		{"body longer than its declared length", func(t *testing.T, e *Embedded, id string) []CompletePart {
			list := []CompletePart{{}, uploadPart(t, e, "obj", id, 2, b[1], int64(len(b[1]))), {}}
			long := append(append([]byte{}, b[0]...), "spill"...)
			if _, err := e.UploadPart(ctx, "bkt", "obj", id, 1, bytes.NewReader(long), int64(len(b[0])), nil); err == nil {
				t.Fatal("a body longer than its length was accepted")
			}
			list[0] = uploadPart(t, e, "obj", id, 1, b[0], int64(len(b[0])))
			list[2] = uploadPart(t, e, "obj", id, 3, b[2], int64(len(b[2])))
			return list
		}, b, false},
		{"list skips a part", func(t *testing.T, e *Embedded, id string) []CompletePart {
			var list []CompletePart
			for i := range b {
				list = append(list, uploadPart(t, e, "obj", id, i+1, b[i], int64(len(b[i]))))
			}
			return []CompletePart{list[0], list[2]}
		}, [][]byte{b[0], b[2]}, false},
		{"lengths not known", func(t *testing.T, e *Embedded, id string) []CompletePart {
			var list []CompletePart
			for i := range b {
				list = append(list, uploadPart(t, e, "obj", id, i+1, b[i], -1))
			}
			return list
		}, b, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEmbedded(t)
			u, err := e.CreateUpload(ctx, "bkt", "obj", PutOptions{ContentType: "application/x-test"})
			if err != nil {
				t.Fatal(err)
			}
			list := tc.upload(t, e, u.ID)
			if _, err := e.HeadObject(ctx, "bkt", "obj"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("object visible before Complete: %v", err)
			}
			data, dataErr := os.Stat(filepath.Join(e.uploadsDir(), u.ID, dataName))
			info, err := e.CompleteUpload(ctx, "bkt", "obj", u.ID, list)
			if err != nil {
				t.Fatal(err)
			}
			want := multipartETag(tc.want...)
			got, gotInfo := read(t, e, "obj", nil)
			if got != string(bytes.Join(tc.want, nil)) {
				t.Fatalf("object is %d bytes, not the parts' %d", len(got), len(bytes.Join(tc.want, nil)))
			}
			if info.ETag != want || gotInfo.ETag != want || gotInfo.ContentType != "application/x-test" {
				t.Fatalf("etag %s (stored %s), want %s; %+v", info.ETag, gotInfo.ETag, want, gotInfo)
			}
			obj, err := os.Stat(filepath.Join(e.Root(), "bkt", "obj"))
			if err != nil {
				t.Fatal(err)
			}
			if renamed := dataErr == nil && os.SameFile(data, obj); renamed != tc.inPlace {
				t.Fatalf("data file renamed into place: %v, want %v", renamed, tc.inPlace)
			}
			if _, err := os.Stat(filepath.Join(e.uploadsDir(), u.ID)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("upload directory left behind: %v", err)
			}
		})
	}
}

// TestMultipartRestartBetweenParts stops using the store half way through
// an upload (as a crash would) and opens it again: no object has appeared,
// and the upload can still be finished.
func TestMultipartRestartBetweenParts(t *testing.T) {
	ctx := context.Background()
	e := newEmbedded(t)
	b := partBodies(3)
	u, err := e.CreateUpload(ctx, "bkt", "obj", PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	list := []CompletePart{uploadPart(t, e, "obj", u.ID, 1, b[0], int64(len(b[0])))}

	e2, err := OpenEmbedded(e.Root(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.HeadObject(ctx, "bkt", "obj"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("object visible after a restart between parts: %v", err)
	}
	if page, err := e2.ListObjects(ctx, "bkt", "", ListOptions{}); err != nil || len(page.Objects) != 0 {
		t.Fatalf("listing after restart: %+v %v", page, err)
	}
	for i := 1; i < len(b); i++ {
		list = append(list, uploadPart(t, e2, "obj", u.ID, i+1, b[i], int64(len(b[i]))))
	}
	info, err := e2.CompleteUpload(ctx, "bkt", "obj", u.ID, list)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := read(t, e2, "obj", nil); got != string(bytes.Join(b, nil)) || info.ETag != multipartETag(b...) {
		t.Fatalf("object after restart: %d bytes, etag %s", len(got), info.ETag)
	}
}

// TestMultipartAbortedDuringParts checks a part cannot land after an abort.
func TestMultipartAbortedDuringParts(t *testing.T) {
	ctx := context.Background()
	e := newEmbedded(t)
	b := partBodies(2)
	u, _ := e.CreateUpload(ctx, "bkt", "obj", PutOptions{})
	uploadPart(t, e, "obj", u.ID, 1, b[0], int64(len(b[0])))
	if err := e.AbortUpload(ctx, "bkt", "obj", u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.UploadPart(ctx, "bkt", "obj", u.ID, 2, bytes.NewReader(b[1]), int64(len(b[1])), nil); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("part after abort: %v", err)
	}
	if _, err := e.HeadObject(ctx, "bkt", "obj"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("object after abort: %v", err)
	}
}
