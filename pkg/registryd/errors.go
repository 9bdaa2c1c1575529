package registryd

import (
	"encoding/json"
	"errors"
	"net/http"

	"regctl/pkg/storage"
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

// apiError is one entry of the OCI error envelope.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// newError builds an API error for a handler to return.
func newError(status int, code, message string) *apiError {
	return &apiError{Status: status, Code: code, Message: message}
}

// withDetail attaches detail (shown to clients) to an error.
func (e *apiError) withDetail(d any) *apiError {
	c := *e
	c.Detail = d
	return &c
}

// writeError answers with the OCI JSON error envelope. Errors that are not
// API errors become 500 UNKNOWN, and storage's "not found" becomes 404
// with the code the caller chose via notFound.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = newError(http.StatusInternalServerError, CodeUnknown, "internal error; see the registry log")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	w.WriteHeader(ae.Status)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(struct {
		Errors []*apiError `json:"errors"`
	}{[]*apiError{ae}})
}

// notFound maps storage.ErrNotFound to an API error and passes others on.
func notFound(err error, status int, code, message string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return newError(status, code, message)
	}
	return err
}
