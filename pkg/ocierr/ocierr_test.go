package ocierr

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name, method string
		err          *Error
		wantBody     string
	}{
		{"no detail", http.MethodGet, New(404, CodeManifestUnknown, "manifest unknown"),
			`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}` + "\n"},
		{"detail", http.MethodPut, New(400, CodeDigestInvalid, "digest invalid").WithDetail(map[string]string{"digest": "sha256:<a>"}),
			`{"errors":[{"code":"DIGEST_INVALID","message":"digest invalid","detail":{"digest":"sha256:\u003ca\u003e"}}]}` + "\n"},
		{"HEAD has no body", http.MethodHead, New(404, CodeBlobUnknown, "blob unknown"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h := w.Header()
			h.Set("Content-Length", "99")
			h.Set("Docker-Content-Digest", "sha256:abc")
			h.Set("WWW-Authenticate", `Bearer realm="r"`)
			Write(w, httptest.NewRequest(tt.method, "/v2/a/manifests/x", nil), tt.err)
			if w.Code != tt.err.Status {
				t.Errorf("status %d, want %d", w.Code, tt.err.Status)
			}
			if got := h.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if h.Get("Content-Length") != "" || h.Get("Docker-Content-Digest") != "" {
				t.Errorf("content headers kept: %v", h)
			}
			if h.Get("WWW-Authenticate") == "" {
				t.Errorf("caller's header dropped: %v", h)
			}
			if got := w.Body.String(); got != tt.wantBody {
				t.Errorf("body %s, want %s", got, tt.wantBody)
			}
		})
	}
}

func TestError(t *testing.T) {
	base := New(400, CodeNameInvalid, "invalid repository name")
	d := base.WithDetail("x")
	if base.Detail != nil || d.Detail != "x" || d.Code != base.Code {
		t.Errorf("WithDetail changed the original or lost fields: %+v %+v", base, d)
	}
	var e *Error
	if err := fmt.Errorf("wrapped: %w", d); !errors.As(err, &e) || e.Error() != "NAME_INVALID: invalid repository name" {
		t.Errorf("errors.As / Error(): %v", err)
	}
}
