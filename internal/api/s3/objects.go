package s3

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/inferbox/inferbox/internal/objstore"
)

// putOptions reads Content-Type, x-amz-meta-* and Content-MD5.
func putOptions(r *request) (objstore.PutOptions, error) {
	opts := objstore.PutOptions{ContentType: r.Header.Get("Content-Type"), Size: -1}
	for k, v := range r.Header {
		if name, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-meta-"); ok && len(v) > 0 {
			if opts.Metadata == nil {
				opts.Metadata = map[string]string{}
			}
			opts.Metadata[name] = v[0]
		}
	}
	if v := r.Header.Get("Content-MD5"); v != "" {
		sum, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(sum) != 16 {
			return opts, errorf(codeInvalidDigest, "The Content-MD5 you specified is not valid.")
		}
		opts.ContentMD5 = sum
	}
	return opts, nil
}

func (h *Handler) putObject(w http.ResponseWriter, r *request) error {
	opts, err := putOptions(r)
	if err != nil {
		return err
	}
	body, size, err := h.body(r)
	if err != nil {
		return err
	}
	opts.Size = size
	info, err := h.store.PutObject(r.Context(), r.bucket, r.key, body, opts)
	if err != nil {
		return err
	}
	echoChecksums(w, r)
	w.Header().Set("ETag", `"`+info.ETag+`"`)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// echoChecksums returns the x-amz-checksum-* headers the client sent (they
// were verified against the body).
func echoChecksums(w http.ResponseWriter, r *request) {
	for k, v := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-checksum-") && newChecksum(strings.TrimPrefix(lk, "x-amz-checksum-")) != nil {
			w.Header()[k] = v
		}
	}
}

// parseRange reads a single "bytes=" range; a malformed header is ignored,
// as HTTP says.
func parseRange(v string) *objstore.Range {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return nil
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return nil
		}
		return &objstore.Range{Start: -n, End: -1}
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return nil
	}
	if b == "" {
		return &objstore.Range{Start: start, End: -1}
	}
	end, err := strconv.ParseInt(b, 10, 64)
	if err != nil || end < start {
		return nil
	}
	return &objstore.Range{Start: start, End: end}
}

func setObjectHeaders(w http.ResponseWriter, info objstore.Info) {
	hd := w.Header()
	hd.Set("ETag", `"`+info.ETag+`"`)
	hd.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	hd.Set("Content-Type", info.ContentType)
	hd.Set("Accept-Ranges", "bytes")
	for k, v := range info.Metadata {
		hd["X-Amz-Meta-"+k] = []string{v}
	}
	if strings.Contains(info.ETag, "-") {
		if n := info.ETag[strings.LastIndexByte(info.ETag, '-')+1:]; n != "" {
			hd.Set("x-amz-mp-parts-count", n)
		}
	}
}

var responseOverrides = map[string]string{
	"response-content-type": "Content-Type", "response-content-language": "Content-Language",
	"response-expires": "Expires", "response-cache-control": "Cache-Control",
	"response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
}

// preconditions applies If-Match, If-None-Match, If-Modified-Since and
// If-Unmodified-Since; it returns the status to answer with, or 0.
func preconditions(r *request, info objstore.Info) int {
	etag := `"` + info.ETag + `"`
	match := func(list string) bool {
		for _, t := range strings.Split(list, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || t == etag || t == info.ETag {
				return true
			}
		}
		return false
	}
	mod := info.LastModified.Truncate(time.Second)
	if v := r.Header.Get("If-Match"); v != "" && !match(v) {
		return http.StatusPreconditionFailed
	}
	if v := r.Header.Get("If-Unmodified-Since"); v != "" && r.Header.Get("If-Match") == "" {
		if t, err := http.ParseTime(v); err == nil && mod.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	if v := r.Header.Get("If-None-Match"); v != "" && match(v) {
		return http.StatusNotModified
	}
	if v := r.Header.Get("If-Modified-Since"); v != "" && r.Header.Get("If-None-Match") == "" {
		if t, err := http.ParseTime(v); err == nil && !mod.After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

func (h *Handler) getObject(w http.ResponseWriter, r *request, withBody bool) error {
	rng := parseRange(r.Header.Get("Range"))
	partsCount := 0
	if pn := r.URL.Query().Get("partNumber"); pn != "" {
		// GetObject/HeadObject of one part of a multipart object (what the
		// SDK's transfer manager downloads by default).
		n, err := strconv.Atoi(pn)
		if err != nil || n < 1 || n > objstore.MaxParts {
			return errorf("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		}
		head, err := h.store.HeadObject(r.Context(), r.bucket, r.key)
		if err != nil {
			return err
		}
		if head.Parts == nil {
			if n != 1 {
				return errorf("InvalidPartNumber", "The requested partnumber is not satisfiable")
			}
			rng = &objstore.Range{Start: 0, End: -1}
		} else {
			pr, ok := head.Parts.PartRange(n, head.Size)
			if !ok {
				return errorf("InvalidPartNumber", "The requested partnumber is not satisfiable")
			}
			rng, partsCount = &pr, head.Parts.Count
		}
	}
	if partsCount > 0 {
		w.Header().Set("x-amz-mp-parts-count", strconv.Itoa(partsCount))
	}
	rc, info, err := h.store.GetObject(r.Context(), r.bucket, r.key, rng)
	if errors.Is(err, objstore.ErrInvalidRange) {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(info.Size, 10))
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	if st := preconditions(r, info); st != 0 {
		if st == http.StatusPreconditionFailed {
			return errorf("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
		}
		setObjectHeaders(w, info)
		w.WriteHeader(st)
		return nil
	}
	setObjectHeaders(w, info)
	for q, hd := range responseOverrides {
		if v := r.URL.Query().Get(q); v != "" {
			w.Header().Set(hd, v)
		}
	}
	status, length := http.StatusOK, info.Size
	if rng != nil {
		start, n, _ := rng.Resolve(info.Size)
		status, length = http.StatusPartialContent, n
		w.Header().Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+n-1, 10)+"/"+strconv.FormatInt(info.Size, 10))
	}
	w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	if !withBody {
		return nil
	}
	if _, err := io.Copy(w, rc); err != nil {
		// Headers are sent; the client sees a short body.
		h.log.Debug("get object: client went away", "bucket", r.bucket, "err", err)
	}
	return nil
}

func (h *Handler) deleteObject(w http.ResponseWriter, r *request) error {
	if err := h.store.DeleteObject(r.Context(), r.bucket, r.key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) deleteObjects(w http.ResponseWriter, r *request) error {
	var in struct {
		Quiet   bool
		Objects []struct {
			Key string
		} `xml:"Object"`
	}
	if err := xml.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&in); err != nil {
		return errorf(codeMalformedXML, "The XML you provided was not well-formed or did not validate against our published schema")
	}
	if len(in.Objects) > 1000 {
		return errorf(codeMalformedXML, "The XML you provided was not well-formed or did not validate against our published schema")
	}
	if err := h.store.HeadBucket(r.Context(), r.bucket); err != nil {
		return err
	}
	type deleted struct{ Key string }
	type failed struct{ Key, Code, Message string }
	out := struct {
		XMLName xml.Name `xml:"DeleteResult"`
		Xmlns   string   `xml:"xmlns,attr"`
		Deleted []deleted
		Errors  []failed `xml:"Error"`
	}{Xmlns: xmlns}
	for _, o := range in.Objects {
		if err := h.store.DeleteObject(r.Context(), r.bucket, o.Key); err != nil {
			e := toS3(err)
			out.Errors = append(out.Errors, failed{o.Key, e.code, e.msg})
			continue
		}
		if !in.Quiet {
			out.Deleted = append(out.Deleted, deleted{o.Key})
		}
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

func (h *Handler) copyObject(w http.ResponseWriter, r *request) error {
	src := r.Header.Get("X-Amz-Copy-Source")
	if i := strings.Index(src, "?"); i >= 0 {
		src = src[:i]
	}
	src, err := url.PathUnescape(src)
	if err != nil {
		return errorf(codeInvalidArgument, "Invalid copy source encoding")
	}
	sb, sk, ok := strings.Cut(strings.TrimPrefix(src, "/"), "/")
	if !ok || sb == "" || sk == "" {
		return errorf(codeInvalidArgument, "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	var replace *objstore.PutOptions
	switch d := r.Header.Get("X-Amz-Metadata-Directive"); d {
	case "", "COPY":
		if sb == r.bucket && sk == r.key {
			return errorf(codeInvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
		}
	case "REPLACE":
		opts, err := putOptions(r)
		if err != nil {
			return err
		}
		replace = &opts
	default:
		return errorf(codeInvalidArgument, "Unknown metadata directive.")
	}
	info, err := h.store.CopyObject(r.Context(), sb, sk, r.bucket, r.key, replace)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"CopyObjectResult"`
		Xmlns        string   `xml:"xmlns,attr"`
		LastModified string
		ETag         string
	}{Xmlns: xmlns, LastModified: info.LastModified.UTC().Format(timeFormat), ETag: `"` + info.ETag + `"`})
	return nil
}
