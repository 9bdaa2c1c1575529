package registryd

import (
	"context"
	"net/http"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"regctl/pkg/notify"
)

// Notifier receives the registry's events: push, pull, mount and delete
// of manifests and blobs. Notify is called on the request path after the
// answer was decided, and must not block; queues and delivery are its
// business.
type Notifier interface {
	Notify(notify.Event)
}

// blobMediaType is what Distribution reports as a blob's media type.
const blobMediaType = "application/octet-stream"

// requestInfo is what a request carries through the handlers: its id
// (access log, events) and, once authorized, its actor.
type requestInfo struct {
	id    string
	actor string
	route string // RouteNames' value once routed
}

type requestInfoKey struct{}

func withRequestInfo(r *http.Request, info *requestInfo) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
}

func infoOf(r *http.Request) *requestInfo {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// emit sends an event about this request's target to the notifier.
func (s *Server) emit(r *http.Request, action string, t notify.Target) {
	if s.opts.Notifier == nil {
		return
	}
	info := infoOf(r)
	s.opts.Notifier.Notify(notify.Event{
		Action: action,
		Target: t,
		Request: notify.Request{
			ID: info.id, Addr: r.RemoteAddr, Host: r.Host, Method: r.Method, UserAgent: r.UserAgent(),
		},
		Actor: notify.Actor{Name: info.actor},
	})
}

func (s *Server) notifying() bool { return s.opts.Notifier != nil }

// manifestTarget describes a manifest with its references (config,
// layers, index entries, subject: manifestDoc.references).
func (s *Server) manifestTarget(r *http.Request, name string, d digest.Digest, mt string, size int, tag string, refs []ocispec.Descriptor) notify.Target {
	if s.opts.NoReferences {
		refs = nil
	}
	return notify.Target{
		MediaType: mt, Digest: d.String(), Size: int64(size), Length: int64(size),
		Repository: name, URL: s.location(r, "/v2/"+name+"/manifests/"+d.String()), Tag: tag,
		References: refs,
	}
}

// blobTarget describes a blob in a repository.
func (s *Server) blobTarget(r *http.Request, name string, d digest.Digest, size int64) notify.Target {
	return notify.Target{
		MediaType: blobMediaType, Digest: d.String(), Size: size, Length: size,
		Repository: name, URL: s.location(r, "/v2/"+name+"/blobs/"+d.String()),
	}
}
