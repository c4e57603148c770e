package s3

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/inferbox/inferbox/internal/objstore"
)

const xmlns = "http://s3.amazonaws.com/doc/2006-03-01/"

// timeFormat is S3's timestamp in XML bodies.
const timeFormat = "2006-01-02T15:04:05.000Z"

type owner struct {
	ID          string
	DisplayName string
}

var theOwner = owner{ID: "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a", DisplayName: "inferbox"}

func (h *Handler) listBuckets(w http.ResponseWriter, r *request) error {
	buckets, err := h.store.ListBuckets(r.Context())
	if err != nil {
		return err
	}
	type bucket struct {
		Name         string
		CreationDate string
	}
	out := struct {
		XMLName xml.Name `xml:"ListAllMyBucketsResult"`
		Xmlns   string   `xml:"xmlns,attr"`
		Owner   owner
		Buckets []bucket `xml:"Buckets>Bucket"`
	}{Xmlns: xmlns, Owner: theOwner}
	for _, b := range buckets {
		out.Buckets = append(out.Buckets, bucket{b.Name, b.Created.UTC().Format(timeFormat)})
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

func (h *Handler) createBucket(w http.ResponseWriter, r *request) error {
	if err := h.store.CreateBucket(r.Context(), r.bucket); err != nil {
		return err
	}
	w.Header().Set("Location", "/"+r.bucket)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *Handler) headBucket(w http.ResponseWriter, r *request) error {
	if err := h.store.HeadBucket(r.Context(), r.bucket); err != nil {
		return err
	}
	w.Header().Set("x-amz-bucket-region", h.opts.Region)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *Handler) deleteBucket(w http.ResponseWriter, r *request) error {
	if err := h.store.DeleteBucket(r.Context(), r.bucket); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) bucketLocation(w http.ResponseWriter, r *request) error {
	if err := h.store.HeadBucket(r.Context(), r.bucket); err != nil {
		return err
	}
	loc := h.opts.Region
	if loc == "us-east-1" {
		loc = "" // as S3 answers for us-east-1
	}
	writeXML(w, http.StatusOK, struct {
		XMLName xml.Name `xml:"LocationConstraint"`
		Xmlns   string   `xml:"xmlns,attr"`
		Value   string   `xml:",chardata"`
	}{Xmlns: xmlns, Value: loc})
	return nil
}

type contents struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
	Owner        *owner `xml:",omitempty"`
}

type commonPrefix struct {
	Prefix string
}

// listing runs a ListObjects for either version.
func (h *Handler) listing(r *request, after, token string) (objstore.ListPage, int, error) {
	q := r.URL.Query()
	max := 1000
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return objstore.ListPage{}, 0, errorf(codeInvalidArgument, "Provided max-keys not an integer or within integer range")
		}
		max = min(n, 1000)
	}
	if max == 0 {
		return objstore.ListPage{}, 0, h.store.HeadBucket(r.Context(), r.bucket)
	}
	if et := q.Get("encoding-type"); et != "" && et != "url" {
		return objstore.ListPage{}, 0, errorf(codeInvalidArgument, "Invalid Encoding Method specified in Request")
	}
	page, err := h.store.ListObjects(r.Context(), r.bucket, q.Get("prefix"), objstore.ListOptions{
		Delimiter: q.Get("delimiter"), StartAfter: after, Token: token, MaxKeys: max,
	})
	return page, max, err
}

// encoder returns the function that encodes keys in a listing: with
// encoding-type=url keys are URL-encoded (the AWS CLI asks for this and
// decodes them).
func encoder(r *request) func(string) string {
	if r.URL.Query().Get("encoding-type") != "url" {
		return func(s string) string { return s }
	}
	return func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"), "%2F", "/")
	}
}

func listContents(page objstore.ListPage, enc func(string) string, withOwner bool) ([]contents, []commonPrefix) {
	var cs []contents
	for _, o := range page.Objects {
		c := contents{Key: enc(o.Key), LastModified: o.LastModified.UTC().Format(timeFormat), ETag: `"` + o.ETag + `"`, Size: o.Size, StorageClass: "STANDARD"}
		if withOwner {
			c.Owner = &theOwner
		}
		cs = append(cs, c)
	}
	var cps []commonPrefix
	for _, p := range page.CommonPrefixes {
		cps = append(cps, commonPrefix{enc(p)})
	}
	return cs, cps
}

func (h *Handler) listObjectsV2(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	page, max, err := h.listing(r, q.Get("start-after"), q.Get("continuation-token"))
	if err != nil {
		return err
	}
	enc := encoder(r)
	cs, cps := listContents(page, enc, q.Get("fetch-owner") == "true")
	out := struct {
		XMLName               xml.Name `xml:"ListBucketResult"`
		Xmlns                 string   `xml:"xmlns,attr"`
		Name                  string
		Prefix                string
		Delimiter             string `xml:",omitempty"`
		MaxKeys               int
		KeyCount              int
		IsTruncated           bool
		EncodingType          string `xml:",omitempty"`
		ContinuationToken     string `xml:",omitempty"`
		NextContinuationToken string `xml:",omitempty"`
		StartAfter            string `xml:",omitempty"`
		Contents              []contents
		CommonPrefixes        []commonPrefix
	}{
		Xmlns: xmlns, Name: r.bucket, Prefix: enc(q.Get("prefix")), Delimiter: enc(q.Get("delimiter")), MaxKeys: max,
		KeyCount: len(cs) + len(cps), IsTruncated: page.NextToken != "", EncodingType: q.Get("encoding-type"),
		ContinuationToken: q.Get("continuation-token"), NextContinuationToken: page.NextToken, StartAfter: enc(q.Get("start-after")),
		Contents: cs, CommonPrefixes: cps,
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

func (h *Handler) listObjectsV1(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	page, max, err := h.listing(r, q.Get("marker"), "")
	if err != nil {
		return err
	}
	enc := encoder(r)
	cs, cps := listContents(page, enc, true)
	next := ""
	if page.NextToken != "" {
		// The last key or common prefix on the page.
		last := ""
		if len(page.Objects) > 0 {
			last = page.Objects[len(page.Objects)-1].Key
		}
		if n := len(page.CommonPrefixes); n > 0 && page.CommonPrefixes[n-1] > last {
			last = page.CommonPrefixes[n-1]
		}
		next = enc(last)
	}
	out := struct {
		XMLName        xml.Name `xml:"ListBucketResult"`
		Xmlns          string   `xml:"xmlns,attr"`
		Name           string
		Prefix         string
		Marker         string
		NextMarker     string `xml:",omitempty"`
		MaxKeys        int
		Delimiter      string `xml:",omitempty"`
		IsTruncated    bool
		EncodingType   string `xml:",omitempty"`
		Contents       []contents
		CommonPrefixes []commonPrefix
	}{
		Xmlns: xmlns, Name: r.bucket, Prefix: enc(q.Get("prefix")), Marker: enc(q.Get("marker")), NextMarker: next,
		MaxKeys: max, Delimiter: enc(q.Get("delimiter")), IsTruncated: page.NextToken != "", EncodingType: q.Get("encoding-type"),
		Contents: cs, CommonPrefixes: cps,
	}
	writeXML(w, http.StatusOK, out)
	return nil
}
