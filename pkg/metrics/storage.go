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
// registry_storage_action_seconds.
//
// The wrapper has no fixed set of optional interfaces, so it never
// claims one d lacks nor hides one d has: callers find capabilities with
// storage.As, which asks the wrapper (Capability) and then the driver it
// wraps (Unwrap). Capability hands out a timed version of each
// capability the wrapper knows and d has; any other capability of d,
// markers included, As finds on d itself, untimed. A type assertion on
// the wrapper finds no capability at all.
func (m *Metrics) Driver(d storage.Driver) storage.Driver {
	return &timed{d: d, m: m.storageOps, driver: d.Name()}
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

// timeErr runs f, timed as action.
func (t *timed) timeErr(action string, f func() error) error {
	start := time.Now()
	err := f()
	t.observe(action, start, err)
	return err
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

// Unwrap is the driver timed, where storage.As looks for the
// capabilities the wrapper does not time.
func (t *timed) Unwrap() storage.Driver { return t.d }

// Capability sets *target to a timed version of the capability it
// points at, when the wrapped driver has it. Each capability is offered
// on its own, so every combination the driver has is kept.
func (t *timed) Capability(target any) bool {
	switch p := target.(type) {
	case *storage.Opener:
		return offer(t, p, func(c storage.Opener) storage.Opener { return timedOpener{t, c} })
	case *storage.Redirector:
		return offer(t, p, func(c storage.Redirector) storage.Redirector { return timedRedirector{t, c} })
	case *storage.ExclusiveCreator:
		return offer(t, p, func(c storage.ExclusiveCreator) storage.ExclusiveCreator { return timedExclusive{t, c} })
	case *storage.Checker:
		return offer(t, p, func(c storage.Checker) storage.Checker { return timedChecker{t, c} })
	case *storage.BatchDeleter:
		return offer(t, p, func(c storage.BatchDeleter) storage.BatchDeleter { return timedBatchDeleter{t, c} })
	case *storage.FileLister:
		return offer(t, p, func(c storage.FileLister) storage.FileLister { return timedFileLister{t, c} })
	case *storage.UnitDeleter:
		return offer(t, p, func(c storage.UnitDeleter) storage.UnitDeleter { return timedUnitDeleter{t, c} })
	case *storage.ObjectLister:
		return offer(t, p, func(c storage.ObjectLister) storage.ObjectLister { return timedObjectLister{t, c} })
	case *storage.VerifiedPutter:
		return offer(t, p, func(c storage.VerifiedPutter) storage.VerifiedPutter { return timedVerifiedPutter{t, c} })
	case *storage.MultipartWriter:
		return offer(t, p, func(c storage.MultipartWriter) storage.MultipartWriter { return timedMultipart{t, c} })
	case *storage.ConnectionPool:
		return offer(t, p, func(c storage.ConnectionPool) storage.ConnectionPool { return timedPool{t, c} })
	}
	return false
}

// offer sets *p to the timed capability when t's driver has it.
func offer[T any](t *timed, p *T, wrap func(T) T) bool {
	c, ok := storage.As[T](t.d)
	if ok {
		*p = wrap(c)
	}
	return ok
}

type timedOpener struct {
	t *timed
	c storage.Opener
}

func (o timedOpener) Open(ctx context.Context, p string) (storage.SeekableFile, storage.FileInfo, error) {
	start := time.Now()
	f, fi, err := o.c.Open(ctx, p)
	o.t.observe("Open", start, err)
	return f, fi, err
}

type timedRedirector struct {
	t *timed
	c storage.Redirector
}

func (r timedRedirector) RedirectURL(req *http.Request, p string) (string, error) {
	start := time.Now()
	u, err := r.c.RedirectURL(req, p)
	r.t.observe("RedirectURL", start, err)
	return u, err
}

type timedExclusive struct {
	t *timed
	c storage.ExclusiveCreator
}

func (e timedExclusive) CreateExclusive(ctx context.Context, p string, content []byte) error {
	return e.t.timeErr("CreateExclusive", func() error { return e.c.CreateExclusive(ctx, p, content) })
}

type timedChecker struct {
	t *timed
	c storage.Checker
}

func (c timedChecker) Check(ctx context.Context) error {
	return c.t.timeErr("Check", func() error { return c.c.Check(ctx) })
}

type timedBatchDeleter struct {
	t *timed
	c storage.BatchDeleter
}

func (b timedBatchDeleter) DeleteMany(ctx context.Context, paths []string) error {
	return b.t.timeErr("DeleteMany", func() error { return b.c.DeleteMany(ctx, paths) })
}

// timedFileLister times a whole listing, as Walk is timed.
type timedFileLister struct {
	t *timed
	c storage.FileLister
}

func (l timedFileLister) ListFiles(ctx context.Context, p string, fn func(storage.FileInfo, string) error) error {
	return l.t.timeErr("ListFiles", func() error { return l.c.ListFiles(ctx, p, fn) })
}

type timedUnitDeleter struct {
	t *timed
	c storage.UnitDeleter
}

func (u timedUnitDeleter) DeleteUnits(ctx context.Context, units []storage.Unit) error {
	return u.t.timeErr("DeleteUnits", func() error { return u.c.DeleteUnits(ctx, units) })
}

// timedObjectLister times a whole listing, as Walk is timed.
type timedObjectLister struct {
	t *timed
	c storage.ObjectLister
}

func (l timedObjectLister) ListObjects(ctx context.Context, p string, level bool, fn func(storage.Object) error) error {
	return l.t.timeErr("ListObjects", func() error { return l.c.ListObjects(ctx, p, level, fn) })
}

type timedVerifiedPutter struct {
	t *timed
	c storage.VerifiedPutter
}

func (v timedVerifiedPutter) PutVerified(ctx context.Context, p string, body io.ReadSeeker, size int64, sum []byte) error {
	return v.t.timeErr("PutVerified", func() error { return v.c.PutVerified(ctx, p, body, size, sum) })
}

type timedMultipart struct {
	t *timed
	c storage.MultipartWriter
}

func (m timedMultipart) PartSize(size int64) int64 { return m.c.PartSize(size) }

func (m timedMultipart) ListUploads(ctx context.Context, p string) ([]storage.Upload, error) {
	var us []storage.Upload
	err := m.t.timeErr("ListUploads", func() (err error) { us, err = m.c.ListUploads(ctx, p); return err })
	return us, err
}

func (m timedMultipart) ListParts(ctx context.Context, u storage.Upload) ([]storage.Part, error) {
	var ps []storage.Part
	err := m.t.timeErr("ListParts", func() (err error) { ps, err = m.c.ListParts(ctx, u); return err })
	return ps, err
}

func (m timedMultipart) CreateUpload(ctx context.Context, p string) (storage.Upload, error) {
	var u storage.Upload
	err := m.t.timeErr("CreateUpload", func() (err error) { u, err = m.c.CreateUpload(ctx, p); return err })
	return u, err
}

func (m timedMultipart) UploadPart(ctx context.Context, u storage.Upload, n int32, body io.ReadSeeker, size int64, sum []byte) (storage.Part, error) {
	var pt storage.Part
	err := m.t.timeErr("UploadPart", func() (err error) { pt, err = m.c.UploadPart(ctx, u, n, body, size, sum); return err })
	return pt, err
}

func (m timedMultipart) CompleteUpload(ctx context.Context, u storage.Upload, parts []storage.Part) error {
	return m.t.timeErr("CompleteUpload", func() error { return m.c.CompleteUpload(ctx, u, parts) })
}

func (m timedMultipart) AbortUpload(ctx context.Context, u storage.Upload) error {
	return m.t.timeErr("AbortUpload", func() error { return m.c.AbortUpload(ctx, u) })
}

// timedPool keeps the copy with a larger pool timed too.
type timedPool struct {
	t *timed
	c storage.ConnectionPool
}

func (p timedPool) WithConnections(n int) storage.Driver {
	return &timed{d: p.c.WithConnections(n), m: p.t.m, driver: p.t.driver}
}

var (
	_ storage.Unwrapper         = (*timed)(nil)
	_ storage.CapabilityWrapper = (*timed)(nil)
)
