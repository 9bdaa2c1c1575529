package registryd

import (
	"errors"
	"net/http"

	"regctl/pkg/ocierr"
	"regctl/pkg/storage"
)

// Error codes, as pkg/ocierr defines them.
const (
	CodeBlobUnknown         = ocierr.CodeBlobUnknown
	CodeBlobUploadInvalid   = ocierr.CodeBlobUploadInvalid
	CodeBlobUploadUnknown   = ocierr.CodeBlobUploadUnknown
	CodeDigestInvalid       = ocierr.CodeDigestInvalid
	CodeManifestBlobUnknown = ocierr.CodeManifestBlobUnknown
	CodeManifestInvalid     = ocierr.CodeManifestInvalid
	CodeManifestUnknown     = ocierr.CodeManifestUnknown
	CodeNameInvalid         = ocierr.CodeNameInvalid
	CodeNameUnknown         = ocierr.CodeNameUnknown
	CodeSizeInvalid         = ocierr.CodeSizeInvalid
	CodeUnauthorized        = ocierr.CodeUnauthorized
	CodeDenied              = ocierr.CodeDenied
	CodeUnsupported         = ocierr.CodeUnsupported
	CodeTooManyRequests     = ocierr.CodeTooManyRequests
	CodeRangeInvalid        = ocierr.CodeRangeInvalid
	CodeTagInvalid          = ocierr.CodeTagInvalid
	CodePaginationInvalid   = ocierr.CodePaginationInvalid
	CodeUnknown             = ocierr.CodeUnknown
	CodeUnavailable         = ocierr.CodeUnavailable
)

// writeError answers with the OCI JSON error envelope. Errors that are not
// API errors (*ocierr.Error) are logged and become 500 UNKNOWN; storage's
// "not found" becomes 404 with the code the caller chose via notFound.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *ocierr.Error
	if !errors.As(err, &ae) {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = ocierr.New(http.StatusInternalServerError, CodeUnknown, "internal error; see the registry log")
	}
	ocierr.Write(w, r, ae)
}

// notFound maps storage.ErrNotFound to an API error and passes others on.
func notFound(err error, status int, code, message string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return ocierr.New(status, code, message)
	}
	return err
}
