package s3

import (
	"encoding/xml"
	"io"
	"net/http"
	"strconv"

	"github.com/inferbox/inferbox/internal/objstore"
)

func (h *Handler) createUpload(w http.ResponseWriter, r *request) error {
	opts, err := putOptions(r)
	if err != nil {
		return err
	}
	u, err := h.store.CreateUpload(r.Context(), r.bucket, r.key, opts)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Bucket   string
		Key      string
		UploadID string `xml:"UploadId"`
	}{Xmlns: xmlns, Bucket: r.bucket, Key: r.key, UploadID: u.ID})
	return nil
}

func (h *Handler) uploadPart(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > objstore.MaxParts {
		return errorf(codeInvalidArgument, "Part number must be an integer between 1 and 10000, inclusive")
	}
	opts, err := putOptions(r)
	if err != nil {
		return err
	}
	body, size, err := h.body(r)
	if err != nil {
		return err
	}
	p, err := h.store.UploadPart(r.Context(), r.bucket, r.key, q.Get("uploadId"), n, body, size, opts.ContentMD5)
	if err != nil {
		return err
	}
	echoChecksums(w, r)
	w.Header().Set("ETag", `"`+p.ETag+`"`)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *Handler) completeUpload(w http.ResponseWriter, r *request) error {
	var in struct {
		Parts []struct {
			PartNumber int
			ETag       string
		} `xml:"Part"`
	}
	if err := xml.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&in); err != nil {
		return errorf(codeMalformedXML, "The XML you provided was not well-formed or did not validate against our published schema")
	}
	parts := make([]objstore.CompletePart, len(in.Parts))
	for i, p := range in.Parts {
		parts[i] = objstore.CompletePart{Number: p.PartNumber, ETag: p.ETag}
	}
	info, err := h.store.CompleteUpload(r.Context(), r.bucket, r.key, r.URL.Query().Get("uploadId"), parts)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Xmlns    string   `xml:"xmlns,attr"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{Xmlns: xmlns, Location: "/" + r.bucket + "/" + r.key, Bucket: r.bucket, Key: r.key, ETag: `"` + info.ETag + `"`})
	return nil
}

func (h *Handler) abortUpload(w http.ResponseWriter, r *request) error {
	if err := h.store.AbortUpload(r.Context(), r.bucket, r.key, r.URL.Query().Get("uploadId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) listParts(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	u, parts, err := h.store.ListParts(r.Context(), r.bucket, r.key, q.Get("uploadId"))
	if err != nil {
		return err
	}
	max := 1000
	if v := q.Get("max-parts"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			max = min(n, 1000)
		}
	}
	marker, _ := strconv.Atoi(q.Get("part-number-marker"))
	type part struct {
		PartNumber   int
		LastModified string
		ETag         string
		Size         int64
	}
	out := struct {
		XMLName              xml.Name `xml:"ListPartsResult"`
		Xmlns                string   `xml:"xmlns,attr"`
		Bucket               string
		Key                  string
		UploadID             string `xml:"UploadId"`
		Initiator            owner
		Owner                owner
		StorageClass         string
		PartNumberMarker     int
		NextPartNumberMarker int
		MaxParts             int
		IsTruncated          bool
		Parts                []part `xml:"Part"`
	}{Xmlns: xmlns, Bucket: u.Bucket, Key: u.Key, UploadID: u.ID, Initiator: theOwner, Owner: theOwner, StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: max}
	for _, p := range parts {
		if p.Number <= marker {
			continue
		}
		if len(out.Parts) == max {
			out.IsTruncated = true
			break
		}
		out.Parts = append(out.Parts, part{p.Number, p.LastModified.Format(timeFormat), `"` + p.ETag + `"`, p.Size})
		out.NextPartNumberMarker = p.Number
	}
	writeXML(w, http.StatusOK, out)
	return nil
}
