package artifact

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// untar unpacks the gzip-compressed tar stream r into the existing
// directory dst. It refuses entries that would land outside dst (absolute
// names, "..", symlinks pointing outside, entries under a symlink), device
// and FIFO entries, and archives whose files exceed maxBytes in total.
// Writes go through os.Root, so even a mistake here cannot write outside
// dst. It returns the number of files and their total size.
func untar(ctx context.Context, r io.Reader, dst string, maxBytes int64) (files int, total int64, err error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return 0, 0, fmt.Errorf("not a gzip stream: %w", err)
	}
	defer zr.Close()
	root, err := os.OpenRoot(dst)
	if err != nil {
		return 0, 0, err
	}
	defer root.Close()

	tr := tar.NewReader(zr)
	symlinks := map[string]bool{}
	for entries := 0; ; entries++ {
		if err := ctx.Err(); err != nil {
			return files, total, err
		}
		if entries > maxEntries {
			return files, total, fmt.Errorf("more than %d entries", maxEntries)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return files, total, fmt.Errorf("read tar: %w", err)
		}
		name, err := entryName(hdr.Name, symlinks)
		if err != nil {
			return files, total, err
		}
		if name == "." {
			continue // the archive's own root directory
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return files, total, err
			}
		case tar.TypeReg, tar.TypeGNUSparse, '\x00':
			n, err := writeFile(root, name, hdr, tr, maxBytes-total)
			total += n
			if err != nil {
				return files, total, err
			}
			files++
			delete(symlinks, name)
		case tar.TypeSymlink:
			target := filepath.FromSlash(hdr.Linkname)
			if filepath.IsAbs(target) || !filepath.IsLocal(filepath.Join(filepath.Dir(name), target)) {
				return files, total, fmt.Errorf("symlink %q -> %q points outside the model directory", hdr.Name, hdr.Linkname)
			}
			if err := prepare(root, name); err != nil {
				return files, total, err
			}
			if err := root.Symlink(target, name); err != nil {
				return files, total, err
			}
			symlinks[name] = true
		case tar.TypeLink:
			target, err := entryName(hdr.Linkname, symlinks)
			if err != nil {
				return files, total, fmt.Errorf("hard link %q: %w", hdr.Name, err)
			}
			if err := prepare(root, name); err != nil {
				return files, total, err
			}
			if err := root.Link(target, name); err != nil {
				return files, total, err
			}
			files++
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			return files, total, fmt.Errorf("entry %q is a device or FIFO, which a model archive must not contain", hdr.Name)
		default:
			return files, total, fmt.Errorf("entry %q has unsupported type %q", hdr.Name, hdr.Typeflag)
		}
	}
	// Read to the end of the gzip stream so its checksum is verified.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return files, total, fmt.Errorf("read gzip: %w", err)
	}
	return files, total, nil
}

// entryName cleans an archive name and checks that it stays inside the root
// and does not pass through a symlink the archive created.
func entryName(raw string, symlinks map[string]bool) (string, error) {
	name := filepath.Clean(filepath.FromSlash(raw))
	if name == "." {
		return name, nil
	}
	if filepath.IsAbs(raw) || strings.HasPrefix(raw, "/") || !filepath.IsLocal(name) {
		return "", fmt.Errorf("entry %q escapes the model directory", raw)
	}
	for dir := filepath.Dir(name); dir != "."; dir = filepath.Dir(dir) {
		if symlinks[dir] {
			return "", fmt.Errorf("entry %q is inside symlink %q", raw, dir)
		}
	}
	return name, nil
}

// prepare creates name's parent directory and removes an earlier entry of
// the same name (a later entry replaces an earlier one, as with tar(1)).
func prepare(root *os.Root, name string) error {
	if dir := filepath.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func writeFile(root *os.Root, name string, hdr *tar.Header, r io.Reader, budget int64) (int64, error) {
	if hdr.Size > budget {
		return 0, fmt.Errorf("entry %q (%d bytes) exceeds the size limit for unpacked models", hdr.Name, hdr.Size)
	}
	if err := prepare(root, name); err != nil {
		return 0, err
	}
	perm := fs.FileMode(hdr.Mode).Perm()&0o755 | 0o600
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, io.LimitReader(r, budget+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > budget {
		err = fmt.Errorf("entry %q exceeds the size limit for unpacked models", hdr.Name)
	}
	if err != nil {
		return n, fmt.Errorf("write %q: %w", hdr.Name, err)
	}
	return n, nil
}
