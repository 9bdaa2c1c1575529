// Package ocierr is the OCI distribution spec's error response: the error
// codes, one error entry (status, code, message, detail), and Write, which
// sends the JSON envelope. The registry's handlers (pkg/registryd) and its
// authentication refusals (pkg/auth) both answer through it, so every
// error a client sees has the same shape.
package ocierr

import (
	"encoding/json"
	"net/http"
)

// Error codes of the OCI distribution spec, plus the few Distribution adds
// that clients know.
const (
	CodeBlobUnknown         = "BLOB_UNKNOWN"
	CodeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	CodeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	CodeDigestInvalid       = "DIGEST_INVALID"
	CodeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	CodeManifestInvalid     = "MANIFEST_INVALID"
	CodeManifestUnknown     = "MANIFEST_UNKNOWN"
	CodeNameInvalid         = "NAME_INVALID"
	CodeNameUnknown         = "NAME_UNKNOWN"
	CodeSizeInvalid         = "SIZE_INVALID"
	CodeUnauthorized        = "UNAUTHORIZED"
	CodeDenied              = "DENIED"
	CodeUnsupported         = "UNSUPPORTED"
	CodeTooManyRequests     = "TOOMANYREQUESTS"
	CodeRangeInvalid        = "RANGE_INVALID"
	CodeTagInvalid          = "TAG_INVALID"
	CodePaginationInvalid   = "PAGINATION_NUMBER_INVALID"
	CodeUnknown             = "UNKNOWN"
	CodeUnavailable         = "UNAVAILABLE"
)

// Error is one entry of the OCI error envelope, with the HTTP status to
// answer it with.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Detail is shown to clients; left out of the body when nil.
	Detail any `json:"detail,omitempty"`
}

// New builds an error for a handler to return.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// WithDetail returns a copy of e carrying detail d.
func (e *Error) WithDetail(d any) *Error {
	c := *e
	c.Detail = d
	return &c
}

// Write answers with e's status and the envelope {"errors":[e]}:
// Content-Type application/json, no Content-Length or Docker-Content-Digest
// a handler may have set for the content it meant to send, and headers only
// for HEAD. Other headers (WWW-Authenticate, Allow) are the caller's to set
// before.
func Write(w http.ResponseWriter, r *http.Request, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(struct {
		Errors []*Error `json:"errors"`
	}{[]*Error{e}})
}
