// Package maintenance coordinates maintenance jobs (garbage collection, a
// storage cutover) with the regctl daemons serving the same storage, so
// that no daemon accepts writes while a job runs.
//
// The shared state lives in the storage itself, which every node already
// shares (one S3 bucket for a cluster), under a prefix of its own that
// CNCF Distribution never reads (it reads only blobs/ and repositories/):
//
//	/docker/registry/v2/_regctl/maintenance/lease.json   the job's lease
//	/docker/registry/v2/_regctl/maintenance/takeover/    short-lived locks on it
//	/docker/registry/v2/_regctl/nodes/<node-id>.json     one heartbeat per daemon
//
// A job Acquires the lease and renews it while it works; every daemon
// reads the lease each heartbeat interval (Agent), refuses writes while a
// live lease exists and acknowledges it in its heartbeat once its writes
// in flight have finished; the job's WaitForReadOnly waits for every live
// daemon's acknowledgement. A job that crashes stops renewing: its lease
// expires and the daemons accept writes again.
//
// Clocks: expiry is judged by each reader's clock. A holder renews every
// ttl/3, so its lease always has at least 2/3 of ttl left by its own
// clock; clocks that disagree by less than that are safe.
package maintenance

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"regexp"

	"regctl/pkg/storage"
)

// Paths of the shared state.
const (
	// Prefix is regctl's own folder in a Distribution storage root.
	Prefix = storage.Root + "/_regctl"
	// LeasePath is the maintenance lease.
	LeasePath = Prefix + "/maintenance/lease.json"
	// NodesDir holds the daemons' heartbeats.
	NodesDir = Prefix + "/nodes"

	takeoverDir = Prefix + "/maintenance/takeover"
)

// validID is what lease and node ids may be: they become file names.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// NodePath is the heartbeat of node id.
func NodePath(id string) string { return path.Join(NodesDir, id+".json") }

// newID is a random token: lease ids, node ids.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Holder describes this process for a lease: "host/pid/command".
func Holder(command string) string {
	return fmt.Sprintf("%s/%d/%s", hostname(), os.Getpid(), command)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown-host"
	}
	return h
}

// NewNodeID is a fresh id for a daemon: its host name, for people
// reading a listing, and a random part, so that restarts and several
// daemons on one host never share a heartbeat.
func NewNodeID() string {
	h := []byte(hostname())
	for i, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			h[i] = '-'
		}
	}
	host := string(h)
	if len(host) > 64 {
		host = host[:64]
	}
	if host == "" || !validID.MatchString(host) {
		host = "node"
	}
	return host + "-" + newID()
}
