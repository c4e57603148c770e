package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// In-place multipart uploads. Clients cut an object into parts of one size
// S (the last part smaller), so part n belongs at offset (n-1)·S of the
// object. An upload therefore keeps one sparse file, <upload>/data, and
// writes such parts straight into it at that offset; when Complete lists
// parts 1..N all written in place, the data file is truncated to its
// length, given its metadata, synced and renamed into place: the object's
// bytes are written once, never copied. Anything else (a part of another
// size, a length not known up front, a part uploaded again, a list that
// skips a number) takes the general path: the part is its own file, and
// Complete copies every listed part into a new file.
//
// Files of an upload directory besides upload.json and part records:
//
//	data       the sparse assembly file
//	slot       S, decimal; created once (link(2)), by the first part of
//	           at least MinPartSize whose length is known
//	NNNNN.w    claims part NNNNN's region; never removed, so a region is
//	           written at most once and a retry of that part (whose bytes
//	           may differ, or whose first attempt failed half way) always
//	           goes to a file of its own
//
// A part record (NNNNN) written in place is an empty file whose metadata
// names its region (objMeta.Slot); it is renamed over any earlier record of
// that part, so the last upload of a part to finish wins, either way.
//
// Locking: writers of regions hold a shared flock(2) on the data file
// while they write and record; Complete takes it exclusively before it
// truncates and renames, so it waits for writers in flight, and a writer
// that gets its lock after the rename sees the data file is no longer at
// its path and stops. The object appears only when Complete renames it.

// slotRef locates an in-place part in its upload's data file.
type slotRef struct {
	Offset int64 `json:"offset"`
	Size   int64 `json:"size"`
}

// maxInPlaceEnd bounds the data file, well under ext4's 16 TiB file limit.
const maxInPlaceEnd = 1 << 40

const (
	dataName = "data"
	slotName = "slot"
)

// slotSize returns the upload's part size S, fixing it to size when it is
// not yet known and size can be a part's size; 0 when there is none.
func slotSize(dir string, size int64) int64 {
	p := filepath.Join(dir, slotName)
	if b, err := os.ReadFile(p); err == nil {
		s, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return s
	}
	if size < MinPartSize {
		return 0
	}
	// Write then link: readers never see a half-written slot file, and of
	// concurrent first parts exactly one link succeeds.
	tmp := p + ".tmp" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(size, 10)), 0o644); err != nil {
		return 0
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, p); err != nil && !errors.Is(err, fs.ErrExist) {
		return 0
	}
	return slotSize(dir, -1)
}

// claimRegion reports whether part n of the upload in dir may be written
// in place at its slot; the caller then owns that region for good.
func claimRegion(dir string, n int, size int64) (slotRef, bool) {
	if size <= 0 {
		return slotRef{}, false
	}
	s := slotSize(dir, size)
	off := int64(n-1) * s
	if s == 0 || size > s || off+size > maxInPlaceEnd {
		return slotRef{}, false
	}
	f, err := os.OpenFile(filepath.Join(dir, partName(n)+".w"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return slotRef{}, false
	}
	f.Close()
	return slotRef{Offset: off, Size: size}, true
}

// errMoved means the data file was taken by Complete (or the upload
// aborted) while a writer waited for it.
var errMoved = errors.New("upload data file moved")

// openData opens dir's data file (creating it) and takes a flock of kind
// how on it, checking it is still the file at its path.
func openData(ctx context.Context, dir string, how int, create bool) (*os.File, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE
	}
	p := filepath.Join(dir, dataName)
	f, err := os.OpenFile(p, flag, 0o644)
	if err != nil {
		return nil, err
	}
	if err := flock(ctx, f, how); err != nil {
		f.Close()
		return nil, err
	}
	a, errA := f.Stat()
	b, errB := os.Stat(p)
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		f.Close()
		return nil, errMoved
	}
	return f, nil
}

// flock takes a flock(2) on f, polling so that ctx can end the wait.
func flock(ctx context.Context, f *os.File, how int) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// writeInPlace writes part n's bytes from r into its region of the data
// file and records it; the region must have been claimed.
func (e *Embedded) writeInPlace(ctx context.Context, dir string, n int, slot slotRef, r io.Reader, contentMD5 []byte) (etag string, fi fs.FileInfo, err error) {
	df, err := openData(ctx, dir, unix.LOCK_SH, true)
	if err != nil {
		return "", nil, err
	}
	defer df.Close() // releases the lock, after the record is in place
	w := &regionWriter{w: io.NewOffsetWriter(df, slot.Offset), left: slot.Size}
	etag, err = md5Copy(ctx, w, r, contentMD5)
	if err != nil {
		return "", nil, classify(err)
	}
	if w.left != 0 {
		return "", nil, fmt.Errorf("part %d is %d bytes short of its declared length %d", n, w.left, slot.Size)
	}
	fi, err = commit(ctx, e.tmpDir(), filepath.Join(dir, partName(n)), objMeta{ETag: etag, Slot: &slot}, false, func(*os.File) (string, error) { return etag, nil })
	return etag, fi, err
}

// regionWriter writes at most left bytes, so a body longer than it
// declared cannot spill into the next part's region.
type regionWriter struct {
	w    io.Writer
	left int64
}

func (c *regionWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		return 0, fmt.Errorf("part is longer than its declared length")
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	return n, err
}

// inPlaceWhole reports whether recs are parts 1..N, all written in place
// at their slots, so the data file is the object.
func inPlaceWhole(dir string, recs []partRec) bool {
	s := slotSize(dir, -1)
	if s == 0 {
		return false
	}
	for i, r := range recs {
		if r.slot == nil || r.Number != i+1 || r.slot.Offset != int64(i)*s || (i < len(recs)-1 && r.Size != s) {
			return false
		}
	}
	return true
}

// completeInPlace turns the upload's data file into the object at dst.
func (e *Embedded) completeInPlace(ctx context.Context, dir, dst string, size int64, meta objMeta) (fs.FileInfo, error) {
	df, err := openData(ctx, dir, unix.LOCK_EX, false)
	if err != nil {
		if errors.Is(err, errMoved) || errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNoSuchUpload // completed or aborted meanwhile
		}
		return nil, err
	}
	defer df.Close()
	if err := df.Truncate(size); err != nil {
		return nil, classify(err)
	}
	if err := setMeta(df, meta); err != nil {
		return nil, classify(err)
	}
	if err := df.Sync(); err != nil {
		return nil, classify(err)
	}
	fi, err := df.Stat()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := place(filepath.Join(dir, dataName), dst); err != nil {
		return nil, err
	}
	return fi, nil
}

// appendRange copies size bytes at off of the upload's data file onto the
// end of f (copy_file_range where the kernel can).
func appendRange(ctx context.Context, f *os.File, dir string, s slotRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in, err := os.Open(filepath.Join(dir, dataName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ErrNoSuchUpload
		}
		return err
	}
	defer in.Close()
	if _, err := in.Seek(s.Offset, io.SeekStart); err != nil {
		return err
	}
	n, err := f.ReadFrom(&io.LimitedReader{R: in, N: s.Size})
	if err == nil && n != s.Size {
		err = fmt.Errorf("upload data file is short at %d", s.Offset)
	}
	return err
}
