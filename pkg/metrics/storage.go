package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"regctl/pkg/storage"
)

// Driver returns d with its operations timed into
// registry_storage_action_seconds. The callers of a driver look for
// optional interfaces (Opener, Redirector, ExclusiveCreator, a health
// Check), so the wrapper has exactly those d has: the two shapes regctl's
// drivers come in. Any other driver is returned as it is, untimed,
// rather than with a different set of abilities.
func (m *Metrics) Driver(d storage.Driver) storage.Driver {
	_, open := d.(storage.Opener)
	_, redirect := d.(storage.Redirector)
	_, excl := d.(storage.ExclusiveCreator)
	_, check := d.(healthChecker)
	t := &timed{d: d, m: m.storageOps, driver: d.Name()}
	switch {
	case open && excl && !redirect && !check:
		return &timedFilesystem{t}
	case redirect && excl && check && !open:
		return &timedS3{t}
	}
	return d
}

type healthChecker interface {
	Check(ctx context.Context) error
}

// timed wraps every storage.Driver method.
type timed struct {
	d      storage.Driver
	m      *prometheus.HistogramVec
	driver string
}

func (t *timed) observe(action string, start time.Time, err error) {
	outcome := "ok"
	switch {
	case errors.Is(err, storage.ErrNotFound):
		outcome = "not_found"
	case err != nil:
		outcome = "error"
	}
	t.m.WithLabelValues(t.driver, action, outcome).Observe(time.Since(start).Seconds())
}

func (t *timed) Name() string { return t.d.Name() }

func (t *timed) GetContent(ctx context.Context, p string) ([]byte, error) {
	start := time.Now()
	b, err := t.d.GetContent(ctx, p)
	t.observe("GetContent", start, err)
	return b, err
}

func (t *timed) PutContent(ctx context.Context, p string, content []byte) error {
	start := time.Now()
	err := t.d.PutContent(ctx, p, content)
	t.observe("PutContent", start, err)
	return err
}

// Reader times opening the stream, not reading it (a blob download lasts
// as long as the client takes).
func (t *timed) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	start := time.Now()
	r, err := t.d.Reader(ctx, p, offset)
	t.observe("Reader", start, err)
	return r, err
}

// Writer times opening the writer; the commit of an S3 upload is timed
// with the request.
func (t *timed) Writer(ctx context.Context, p string, append bool) (storage.FileWriter, error) {
	start := time.Now()
	w, err := t.d.Writer(ctx, p, append)
	t.observe("Writer", start, err)
	return w, err
}

func (t *timed) Stat(ctx context.Context, p string) (storage.FileInfo, error) {
	start := time.Now()
	fi, err := t.d.Stat(ctx, p)
	t.observe("Stat", start, err)
	return fi, err
}

func (t *timed) List(ctx context.Context, p string) ([]string, error) {
	start := time.Now()
	l, err := t.d.List(ctx, p)
	t.observe("List", start, err)
	return l, err
}

func (t *timed) Move(ctx context.Context, src, dst string) error {
	start := time.Now()
	err := t.d.Move(ctx, src, dst)
	t.observe("Move", start, err)
	return err
}

func (t *timed) Delete(ctx context.Context, p string) error {
	start := time.Now()
	err := t.d.Delete(ctx, p)
	t.observe("Delete", start, err)
	return err
}

func (t *timed) Walk(ctx context.Context, p string, fn func(storage.FileInfo) error) error {
	start := time.Now()
	err := t.d.Walk(ctx, p, fn)
	t.observe("Walk", start, err)
	return err
}

func (t *timed) CreateExclusive(ctx context.Context, p string, content []byte) error {
	start := time.Now()
	err := t.d.(storage.ExclusiveCreator).CreateExclusive(ctx, p, content)
	t.observe("CreateExclusive", start, err)
	return err
}

// timedFilesystem is a timed driver that opens files for seeking.
type timedFilesystem struct{ *timed }

func (t *timedFilesystem) Open(ctx context.Context, p string) (storage.SeekableFile, storage.FileInfo, error) {
	start := time.Now()
	f, fi, err := t.d.(storage.Opener).Open(ctx, p)
	t.observe("Open", start, err)
	return f, fi, err
}

// timedS3 is a timed driver that redirects and checks its bucket.
type timedS3 struct{ *timed }

func (t *timedS3) RedirectURL(r *http.Request, p string) (string, error) {
	start := time.Now()
	u, err := t.d.(storage.Redirector).RedirectURL(r, p)
	t.observe("RedirectURL", start, err)
	return u, err
}

func (t *timedS3) Check(ctx context.Context) error {
	start := time.Now()
	err := t.d.(healthChecker).Check(ctx)
	t.observe("Check", start, err)
	return err
}

var (
	_ storage.Opener           = (*timedFilesystem)(nil)
	_ storage.ExclusiveCreator = (*timedFilesystem)(nil)
	_ storage.Redirector       = (*timedS3)(nil)
	_ storage.ExclusiveCreator = (*timedS3)(nil)
	_ healthChecker            = (*timedS3)(nil)
)
