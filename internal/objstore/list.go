package objstore

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

const defaultMaxKeys = 1000

// lister walks a directory tree whose file paths encode keys, in key
// order, and cuts one page of a listing out of it.
type lister struct {
	decode func(name string) (string, bool) // file name → key segment
	info   func(path, key string, d fs.DirEntry) (Info, bool)

	prefix, after, delim string
	max                  int

	page      ListPage
	lastCP    string
	last      string // last key or common prefix put on the page
	truncated bool
}

var errPageFull = errors.New("page full")

func newLister(prefix string, opts ListOptions) *lister {
	l := &lister{prefix: prefix, delim: opts.Delimiter, max: opts.MaxKeys, after: opts.StartAfter}
	if l.max <= 0 || l.max > defaultMaxKeys {
		l.max = defaultMaxKeys
	}
	if t, err := base64.RawURLEncoding.DecodeString(opts.Token); err == nil && string(t) > l.after {
		l.after = string(t)
	}
	return l
}

// add puts an object or common prefix on the page.
func (l *lister) add(key string, obj *Info) error {
	if len(l.page.Objects)+len(l.page.CommonPrefixes) == l.max {
		l.truncated = true
		return errPageFull
	}
	if obj != nil {
		l.page.Objects = append(l.page.Objects, *obj)
	} else {
		l.page.CommonPrefixes = append(l.page.CommonPrefixes, key)
		l.lastCP = key
	}
	l.last = key
	return nil
}

// commonPrefix returns the common prefix key rolls up into, if any.
func (l *lister) commonPrefix(key string) (string, bool) {
	if l.delim == "" || !strings.HasPrefix(key, l.prefix) {
		return "", false
	}
	i := strings.Index(key[len(l.prefix):], l.delim)
	if i < 0 {
		return "", false
	}
	return key[:len(l.prefix)+i+len(l.delim)], true
}

type entry struct {
	key  string // the full key; directories end with "/"
	path string
	d    fs.DirEntry
}

// walk lists dir, whose entries' keys start with dirKey.
func (l *lister) walk(dir, dirKey string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return err
	}
	entries := make([]entry, 0, len(des))
	for _, d := range des {
		seg, ok := l.decode(d.Name())
		if !ok {
			continue
		}
		k := dirKey + seg
		if d.IsDir() {
			k += "/"
		} else if !d.Type().IsRegular() {
			continue
		}
		entries = append(entries, entry{key: k, path: filepath.Join(dir, d.Name()), d: d})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	for _, e := range entries {
		if !strings.HasPrefix(e.key, l.prefix) && !(e.d.IsDir() && strings.HasPrefix(l.prefix, e.key)) {
			continue
		}
		if e.d.IsDir() {
			// Every key below sorts at or after e.key and starts with it.
			if l.after > e.key && !strings.HasPrefix(l.after, e.key) {
				continue
			}
			if cp, ok := l.commonPrefix(e.key); ok && len(cp) <= len(e.key) {
				if cp <= l.after || cp == l.lastCP || !hasObject(e.path, l.decode) {
					continue
				}
				if err := l.add(cp, nil); err != nil {
					return err
				}
				continue
			}
			if err := l.walk(e.path, e.key); err != nil {
				return err
			}
			continue
		}
		if e.key <= l.after {
			continue
		}
		if cp, ok := l.commonPrefix(e.key); ok {
			if cp <= l.after || cp == l.lastCP {
				continue
			}
			if err := l.add(cp, nil); err != nil {
				return err
			}
			continue
		}
		info, ok := l.info(e.path, e.key, e.d)
		if !ok {
			continue
		}
		if err := l.add(e.key, &info); err != nil {
			return err
		}
	}
	return nil
}

// result finishes the page.
func (l *lister) result(err error) (ListPage, error) {
	if err != nil && !errors.Is(err, errPageFull) {
		return ListPage{}, err
	}
	if l.truncated {
		l.page.NextToken = base64.RawURLEncoding.EncodeToString([]byte(l.last))
	}
	return l.page, nil
}

// hasObject reports whether any object lies under dir (directories can be
// left empty for a moment by concurrent deletes).
func hasObject(dir string, decode func(string) (string, bool)) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, d := range des {
		if _, ok := decode(d.Name()); !ok {
			continue
		}
		if d.Type().IsRegular() || d.IsDir() && hasObject(filepath.Join(dir, d.Name()), decode) {
			return true
		}
	}
	return false
}
