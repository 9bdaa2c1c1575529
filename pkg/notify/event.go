// Package notify sends registry events to webhook endpoints the way CNCF
// Distribution does (same envelope, fields and media type), but keeps each
// endpoint's pending events in a queue on disk, so they survive a restart
// or a crash of the daemon and leave the queue only once the endpoint
// answered 2xx.
//
// The parts: Event (the wire format), Queue (one endpoint's folder of
// segment files), and Manager (filters, the bounded hand-off from the
// request path to the disk, and the delivery loop with retries).
package notify

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// EventsMediaType is the Content-Type of every notification request, as in
// CNCF Distribution v3.
const EventsMediaType = "application/vnd.docker.distribution.events.v2+json"

// Actions, as Distribution names them.
const (
	ActionPush   = "push"
	ActionPull   = "pull"
	ActionMount  = "mount"
	ActionDelete = "delete"
)

// Event is one registry event, in Distribution's field names.
type Event struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Action    string    `json:"action"`
	Target    Target    `json:"target"`
	Request   Request   `json:"request"`
	Actor     Actor     `json:"actor"`
	Source    Source    `json:"source"`
}

// Target is what the event is about: a manifest (with the descriptors it
// references), a blob, or a tag (deletes by tag carry only the tag).
type Target struct {
	MediaType      string               `json:"mediaType,omitempty"`
	Digest         string               `json:"digest,omitempty"`
	Size           int64                `json:"size,omitempty"`
	Length         int64                `json:"length,omitempty"`
	Repository     string               `json:"repository,omitempty"`
	FromRepository string               `json:"fromRepository,omitempty"`
	URL            string               `json:"url,omitempty"`
	Tag            string               `json:"tag,omitempty"`
	References     []ocispec.Descriptor `json:"references,omitempty"`
}

// Request describes the HTTP request that caused the event.
type Request struct {
	ID        string `json:"id,omitempty"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method,omitempty"`
	UserAgent string `json:"useragent,omitempty"`
}

// Actor is who made the request: the token subject or htpasswd user.
type Actor struct {
	Name string `json:"name,omitempty"`
}

// Source is the registry node that emitted the event.
type Source struct {
	Addr       string `json:"addr,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
}

// Envelope is the body of a notification request.
type Envelope struct {
	Events []Event `json:"events"`
}

// NewID is a random 128-bit id in UUID text form, for events and requests.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
