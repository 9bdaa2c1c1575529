package metrics

import (
	"fmt"
	"strings"
	"testing"

	"regctl/internal/testtools"
	"regctl/pkg/storage"
)

// capabilities: every optional interface of pkg/storage, found with
// storage.As.
var capabilities = map[string]func(storage.Driver) bool{
	"Opener":           has[storage.Opener],
	"Redirector":       has[storage.Redirector],
	"ExclusiveCreator": has[storage.ExclusiveCreator],
	"Checker":          has[storage.Checker],
	"BatchDeleter":     has[storage.BatchDeleter],
	"FileLister":       has[storage.FileLister],
	"UnitDeleter":      has[storage.UnitDeleter],
	"LocalFolders":     has[storage.LocalFolders],
	"FlatKeyspace":     has[storage.FlatKeyspace],
	"ObjectLister":     has[storage.ObjectLister],
	"VerifiedPutter":   has[storage.VerifiedPutter],
	"MultipartWriter":  has[storage.MultipartWriter],
	"ConnectionPool":   has[storage.ConnectionPool],
	"Describer":        has[storage.Describer],
}

func has[T any](d storage.Driver) bool {
	_, ok := storage.As[T](d)
	return ok
}

// capabilityDiff names the capabilities that wrapped and d do not
// share, and any the wrapper claims through a plain type assertion.
func capabilityDiff(d, wrapped storage.Driver) string {
	var diff []string
	for name, has := range capabilities {
		if a, b := has(d), has(wrapped); a != b {
			diff = append(diff, fmt.Sprintf("%s: driver %v, timed %v", name, a, b))
		}
	}
	switch wrapped.(type) {
	case storage.Opener, storage.Redirector, storage.ExclusiveCreator, storage.Checker,
		storage.BatchDeleter, storage.FileLister, storage.UnitDeleter, storage.LocalFolders, storage.FlatKeyspace,
		storage.ObjectLister, storage.VerifiedPutter, storage.MultipartWriter, storage.ConnectionPool, storage.Describer:
		diff = append(diff, fmt.Sprintf("%T answers a type assertion for a capability", wrapped))
	}
	return strings.Join(diff, "\n")
}

// openS3 opens the s3 driver on a bucket of a fresh versitygw.
func openS3(t *testing.T) storage.Driver {
	t.Helper()
	g := testtools.NewVersityGW(t)
	d, err := storage.Open(t.Context(), "s3", map[string]any{
		"accesskey": g.AccessKey, "secretkey": g.SecretKey, "region": g.Region,
		"regionendpoint": g.Endpoint, "bucket": g.Bucket(t), "pathstyle": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestTimedKeepsCapabilities: the timed driver, once or twice wrapped,
// has exactly the capabilities of the driver it wraps, for each driver.
func TestTimedKeepsCapabilities(t *testing.T) {
	t.Parallel()
	fs, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s3 := openS3(t)
	m := New()
	for _, d := range []storage.Driver{fs, s3} {
		t.Run(d.Name(), func(t *testing.T) {
			n := 0
			for _, has := range capabilities {
				if has(d) {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("%s has no capability: the test would prove nothing", d.Name())
			}
			for _, w := range []storage.Driver{m.Driver(d), m.Driver(m.Driver(d))} {
				if diff := capabilityDiff(d, w); diff != "" {
					t.Error(diff)
				}
			}
		})
	}
}

// TestTimedCapabilitiesAreTimed: what the wrapper offers for a
// capability is its own, timed, code.
func TestTimedCapabilitiesAreTimed(t *testing.T) {
	fs, err := storage.NewFilesystem(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := New().Driver(fs)
	if o, _ := storage.As[storage.Opener](d); fmt.Sprintf("%T", o) != "metrics.timedOpener" {
		t.Errorf("Opener of the timed driver is %T", o)
	}
	if u, _ := storage.As[storage.UnitDeleter](d); fmt.Sprintf("%T", u) != "metrics.timedUnitDeleter" {
		t.Errorf("UnitDeleter of the timed driver is %T", u)
	}
	if v, _ := storage.As[storage.VerifiedPutter](d); fmt.Sprintf("%T", v) != "metrics.timedVerifiedPutter" {
		t.Errorf("VerifiedPutter of the timed driver is %T", v)
	}
}

// TestTimedConnectionPoolStaysTimed: the copy with a larger pool that
// the timed driver hands out is timed too, and keeps the capabilities.
func TestTimedConnectionPoolStaysTimed(t *testing.T) {
	t.Parallel()
	s3 := openS3(t)
	cp, ok := storage.As[storage.ConnectionPool](New().Driver(s3))
	if !ok {
		t.Fatal("the timed s3 driver offers no ConnectionPool")
	}
	d := cp.WithConnections(64)
	if _, ok := d.(*timed); !ok {
		t.Errorf("WithConnections of the timed driver is %T, not timed", d)
	}
	if diff := capabilityDiff(s3, d); diff != "" {
		t.Error(diff)
	}
}
