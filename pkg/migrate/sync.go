package migrate

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"regctl/pkg/storage"
)

// Result is what Sync did, or in a dry run would do.
type Result struct {
	Source string `json:"source"`
	Target string `json:"target"`
	DryRun bool   `json:"dry_run"`
	Delete bool   `json:"delete"`
	// SourceObjects and SourceBytes count the source's files (excluded
	// ones left out).
	SourceObjects int64 `json:"source_objects"`
	SourceBytes   int64 `json:"source_bytes"`
	// Copied counts the objects written (a dry run: to write).
	Copied      int64 `json:"copied"`
	CopiedBytes int64 `json:"copied_bytes"`
	// Unchanged counts the objects already in the target as they are in
	// the source.
	Unchanged int64 `json:"unchanged"`
	// Deleted counts the target objects removed (a dry run: to remove):
	// orphans, with --delete.
	Deleted      int64 `json:"deleted"`
	DeletedBytes int64 `json:"deleted_bytes"`
	// Orphans counts the target objects absent from the source, markers
	// included, whether deleted or not.
	Orphans int64 `json:"orphans"`
	// Markers counts the 0-byte "folder/" objects in the target.
	Markers int64 `json:"markers"`
	// Failed counts the objects that could not be copied.
	Failed int64 `json:"failed"`
	// Vanished counts source files deleted before they could be read
	// (garbage collection or a tag delete while syncing).
	Vanished int64 `json:"vanished"`
	// ResumedParts counts parts of large blobs a killed run had uploaded
	// already.
	ResumedParts int64 `json:"resumed_parts"`
	// Symlinks counts the symbolic links met in the source: never
	// followed, so nothing behind them (maybe outside the root) is
	// copied, and what the bucket holds there is left alone.
	// SymlinkPaths names the first ones.
	Symlinks     int64         `json:"symlinks"`
	SymlinkPaths []string      `json:"symlink_paths,omitempty"`
	Duration     time.Duration `json:"duration_ns"`
	Errors       []string      `json:"errors,omitempty"`
}

// job is one object to check or copy.
type job struct {
	rel    string
	tgt    *object // nil: not in the target
	check  bool    // same size: compare content first
	reason string
}

// syncer is one Sync run.
type syncer struct {
	*engine
	res     Result
	jobs    chan job
	uploads map[string][]storage.Upload // multipart writes in progress, by path

	copied, copiedBytes, unchanged, failed, vanished, resumed atomic.Int64
	srcObjects, srcBytes                                      atomic.Int64

	omu     sync.Mutex
	orphans []orphan
	pmu     sync.Mutex // serialises Plan
}

type orphan struct {
	path, rel string
	size      int64
	marker    bool
}

// Sync copies what is new or changed from the source into the target,
// and with Delete removes the target's orphans once every copy has
// succeeded. A killed run resumes where it stopped: objects already
// there are not copied again, nor are the parts of a large blob already
// uploaded. Source files that vanish while it runs are skipped.
func Sync(ctx context.Context, opts Options) (*Result, error) {
	e, err := newEngine(opts)
	if err != nil {
		return nil, err
	}
	s := &syncer{engine: e}
	s.res = Result{Source: e.root, Target: storage.Describe(e.t.d), DryRun: opts.DryRun, Delete: opts.Delete}
	if opts.Delete {
		// Before anything: a swapped or wrong source must not get as far
		// as listing what it would delete.
		if err := s.checkNotEmpty(ctx); err != nil {
			return nil, err
		}
	}
	if !opts.DryRun {
		if s.uploads, err = e.t.uploads(ctx); err != nil {
			e.log.Warn("cannot list multipart uploads in progress: large blobs of a killed run start over", "err", err)
		}
	}
	e.phase.Store("sync")
	stop := e.reportProgress()
	err = s.run(ctx)
	if err == nil && opts.Delete {
		err = s.deleteOrphans(ctx)
	}
	stop()
	s.finish()
	return &s.res, err
}

// checkNotEmpty refuses --delete for a source with nothing in blobs/
// and repositories/: deleting orphans would empty the bucket.
func (s *syncer) checkNotEmpty(ctx context.Context) error {
	for _, d := range []string{"blobs", "repositories"} {
		ents, err := s.src.List(ctx, driverPath(d))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if len(ents) > 0 {
			return nil
		}
	}
	return fmt.Errorf("refusing --delete: source %s: %w (nothing in blobs/ or repositories/); are source and target the right way round?", s.root, ErrEmptySource)
}

func (s *syncer) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.jobs = make(chan job, 4*s.opts.Concurrency)
	workers := pool(s.engine, s.jobs, func(j job) { s.do(ctx, j) })
	err := s.traverse(ctx, s.plan)
	if err != nil {
		cancel(err)
	}
	close(s.jobs)
	workers.Wait()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := s.failed.Load(); n > 0 {
		msg := fmt.Sprintf("%d objects could not be copied", n)
		if s.opts.Delete {
			msg += "; nothing was deleted"
		}
		return errors.New(msg)
	}
	return nil
}

// plan decides what one path needs.
func (s *syncer) plan(ctx context.Context, p pair) error {
	if p.src == nil {
		s.omu.Lock()
		s.orphans = append(s.orphans, orphan{path: p.tgt.path, rel: p.rel, size: p.tgt.size, marker: marker(p.tgt.path, p.tgt.size)})
		s.omu.Unlock()
		return nil
	}
	if p.src.Symlink {
		s.symlink(p.rel)
		return nil
	}
	s.srcObjects.Add(1)
	s.srcBytes.Add(p.src.Size)
	s.total.Add(1)
	j := job{rel: p.rel, tgt: p.tgt}
	switch _, _, blob := isBlobData(p.rel); {
	case p.tgt == nil:
		j.reason = "new"
	case p.tgt.size != p.src.Size:
		j.reason = "size"
	case blob:
		// The key is the digest of the content: the right size at the
		// right key is the right blob (Verify re-hashes it).
		s.unchanged.Add(1)
		s.objects.Add(1)
		return nil
	default:
		j.check = true
	}
	if !j.check {
		s.btotal.Add(p.src.Size)
	}
	return send(ctx, s.jobs, j)
}

// do checks or copies one object.
func (s *syncer) do(ctx context.Context, j job) {
	defer s.objects.Add(1)
	if ctx.Err() != nil {
		return
	}
	if j.check {
		same, err := s.same(ctx, j)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			s.vanished.Add(1)
			return
		case err != nil:
			if ctx.Err() == nil {
				s.failed.Add(1)
				s.fail("compare %s: %v", driverPath(j.rel), err)
			}
			return
		case same:
			s.unchanged.Add(1)
			return
		}
		j.reason = "content"
		if fi, err := s.src.Stat(ctx, driverPath(j.rel)); err == nil {
			s.btotal.Add(fi.Size)
		}
	}
	if s.opts.DryRun {
		size := int64(0)
		if fi, err := s.src.Stat(ctx, driverPath(j.rel)); err == nil {
			size = fi.Size
		}
		s.copied.Add(1)
		s.copiedBytes.Add(size)
		s.bytes.Add(size)
		s.plan1(PlanItem{Action: "copy", Path: driverPath(j.rel)[1:], Size: size, Reason: j.reason})
		return
	}
	for attempt := 0; ; attempt++ {
		n, err := s.copy(ctx, j.rel)
		switch {
		case err == nil:
			s.copied.Add(1)
			s.copiedBytes.Add(n)
			return
		case errors.Is(err, storage.ErrNotFound):
			s.vanished.Add(1)
			return
		case ctx.Err() != nil:
			return
		case attempt < 2 && retryable(err):
			// The SDK has retried the request already; this retries the
			// whole object after a pause, for a server having a bad
			// minute. Parts uploaded stay and are reused.
			d := time.Duration(500<<attempt)*time.Millisecond + time.Duration(rand.Int64N(int64(250*time.Millisecond)))
			s.log.Info("retrying a copy", "path", driverPath(j.rel), "in", d.Round(time.Millisecond), "err", err)
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		default:
			s.failed.Add(1)
			s.fail("copy %s: %v", driverPath(j.rel), err)
			return
		}
	}
}

// retryable tells failures worth another try: not the server refusing
// the request as such (a 4xx but timeouts and throttling), and not the
// source failing.
func retryable(err error) bool {
	var pe *fs.PathError
	var se sourceError
	if errors.As(err, &pe) || errors.As(err, &se) {
		return false
	}
	return storage.Retryable(err)
}

// same reports whether a target object of the source's size holds the
// source's content.
func (s *syncer) same(ctx context.Context, j job) (bool, error) {
	f, fi, err := s.open(ctx, j.rel)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if fi.Size != j.tgt.size {
		return false, nil
	}
	if fi.Size <= smallFile {
		b := make([]byte, fi.Size)
		if _, err := io.ReadFull(f.section(ctx, 0, fi.Size), b); err != nil {
			return false, err
		}
		return s.t.sameContent(ctx, j.rel, *j.tgt, b)
	}
	if j.tgt.md5 == "" {
		return false, nil // large, and no cheap way to tell: copy again
	}
	sum, err := md5Of(f.section(ctx, 0, fi.Size))
	if err != nil {
		return false, err
	}
	return hex.EncodeToString(sum) == j.tgt.md5, nil
}

// copy writes one source file to the target and returns its size: one
// put up to the part size, a multipart write above it (where the target
// has them).
func (s *syncer) copy(ctx context.Context, rel string) (int64, error) {
	f, fi, err := s.open(ctx, rel)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size := fi.Size
	// Bytes count as they go; a failed attempt takes its count back.
	var moved int64
	defer func() {
		if err != nil {
			s.bytes.Add(-moved)
		}
	}()
	switch {
	case size <= smallFile:
		b := make([]byte, size)
		if _, err = io.ReadFull(f.section(ctx, 0, size), b); err != nil {
			return 0, err
		}
		sum := md5.Sum(b)
		if err = s.t.put(ctx, rel, bytes.NewReader(b), size, sum[:]); err != nil {
			return 0, err
		}
	case s.t.multi == nil || size <= s.t.multi.PartSize(size):
		var sum []byte
		if sum, err = md5Of(f.section(ctx, 0, size)); err != nil {
			return 0, err
		}
		if err = s.t.put(ctx, rel, f.section(ctx, 0, size), size, sum); err != nil {
			return 0, err
		}
	default:
		if err = s.multipart(ctx, rel, f, size, &moved); err != nil {
			return 0, err
		}
		return size, nil
	}
	moved = size
	s.bytes.Add(size)
	return size, nil
}

// multipart uploads a large file in parts of the part size, resuming an
// upload a killed run left for the same key when its parts match the
// source. Parts go up in parallel on request slots that are free; the
// job's own slot always works, so the pool's bound holds.
func (s *syncer) multipart(ctx context.Context, rel string, f *srcFile, size int64, moved *int64) error {
	p := driverPath(rel)
	mw := s.t.multi
	ps := mw.PartSize(size)
	n := int((size + ps - 1) / ps)
	u, have := s.resume(ctx, p)
	if u.ID == "" {
		var err error
		if u, err = mw.CreateUpload(ctx, p); err != nil {
			return err
		}
		u.Started = time.Now()
		s.omu.Lock()
		if s.uploads == nil {
			s.uploads = map[string][]storage.Upload{}
		}
		s.uploads[p] = []storage.Upload{u}
		s.omu.Unlock()
	}
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	parts := make([]storage.Part, n)
	var wg sync.WaitGroup
	var mv atomic.Int64
	one := func(i int) {
		off := int64(i) * ps
		sz := min(ps, size-off)
		sum, err := md5Of(f.section(pctx, off, sz))
		if err == nil {
			if pt, ok := have[int32(i+1)]; ok && pt.Size == sz && pt.MD5 != "" && pt.MD5 == hex.EncodeToString(sum) {
				parts[i] = pt
				s.resumed.Add(1)
			} else {
				parts[i], err = mw.UploadPart(pctx, u, int32(i+1), f.section(pctx, off, sz), sz, sum)
			}
		}
		if err != nil {
			cancel(err)
			return
		}
		mv.Add(sz)
		s.bytes.Add(sz)
	}
	for i := range n {
		if pctx.Err() != nil {
			break
		}
		select {
		case s.slots <- struct{}{}:
			wg.Go(func() {
				defer func() { <-s.slots }()
				one(i)
			})
		default:
			one(i)
		}
	}
	wg.Wait()
	*moved = mv.Load()
	if err := context.Cause(pctx); err != nil {
		// The upload stays for the next run to resume.
		return err
	}
	if err := mw.CompleteUpload(ctx, u, parts); err != nil {
		return err
	}
	s.omu.Lock()
	delete(s.uploads, p)
	s.omu.Unlock()
	return nil
}

// resume picks the newest upload in progress at p and lists its parts,
// by number; older ones are aborted.
func (s *syncer) resume(ctx context.Context, p string) (storage.Upload, map[int32]storage.Part) {
	s.omu.Lock()
	ups := s.uploads[p]
	delete(s.uploads, p)
	s.omu.Unlock()
	if len(ups) == 0 {
		return storage.Upload{}, nil
	}
	mw := s.t.multi
	newest := 0
	for i, u := range ups {
		if u.Started.After(ups[newest].Started) {
			newest = i
		}
	}
	for i, u := range ups {
		if i != newest {
			if err := mw.AbortUpload(ctx, u); err != nil {
				s.log.Warn("cannot abort an old multipart upload", "path", p, "err", err)
			}
		}
	}
	u := ups[newest]
	list, err := mw.ListParts(ctx, u)
	if err != nil {
		s.log.Warn("cannot list the parts of an upload in progress; starting over", "path", p, "err", err)
		if err := mw.AbortUpload(ctx, u); err != nil {
			s.log.Warn("cannot abort an old multipart upload", "path", p, "err", err)
		}
		return storage.Upload{}, nil
	}
	parts := make(map[int32]storage.Part, len(list))
	for _, pt := range list {
		parts[pt.Number] = pt
	}
	s.omu.Lock()
	s.uploads[p] = []storage.Upload{u} // a retry of this job resumes it again
	s.omu.Unlock()
	s.log.Info("resuming an upload", "path", p, "parts", len(parts))
	return u, parts
}

// deleteOrphans removes the target objects the source does not have,
// a thousand per request (where the target deletes in batches), a few
// requests at once.
func (s *syncer) deleteOrphans(ctx context.Context) error {
	if s.srcObjects.Load() == 0 {
		return fmt.Errorf("refusing --delete: source %s: %w", s.root, ErrEmptySource)
	}
	orphans := s.orphans
	if len(orphans) > 0 {
		s.phase.Store("delete")
	}
	if s.opts.DryRun {
		for _, o := range orphans {
			s.res.Deleted++
			s.res.DeletedBytes += o.size
			reason := "orphan"
			if o.marker {
				reason = "marker"
			}
			s.plan1(PlanItem{Action: "delete", Path: driverPath(o.rel)[1:], Size: o.size, Reason: reason})
		}
		return nil
	}
	batches := make(chan []orphan)
	var deleted, deletedBytes atomic.Int64
	var wg sync.WaitGroup
	var emu sync.Mutex
	var errs []error
	for range min(4, s.opts.Concurrency) {
		wg.Go(func() {
			for b := range batches {
				paths := make([]string, len(b))
				var size int64
				for i, o := range b {
					paths[i] = o.path
					size += o.size
				}
				if err := s.t.deleteMany(ctx, paths); err != nil {
					emu.Lock()
					errs = append(errs, err)
					emu.Unlock()
					continue
				}
				deleted.Add(int64(len(b)))
				deletedBytes.Add(size)
			}
		})
	}
	for i := 0; i < len(orphans); i += 1000 {
		select {
		case batches <- orphans[i:min(i+1000, len(orphans))]:
		case <-ctx.Done():
		}
	}
	close(batches)
	wg.Wait()
	s.res.Deleted, s.res.DeletedBytes = deleted.Load(), deletedBytes.Load()
	if len(errs) > 0 {
		return fmt.Errorf("deleting orphans: %w", errors.Join(errs...))
	}
	return ctx.Err()
}

// plan1 tells Options.Plan one item; calls never overlap.
func (s *syncer) plan1(it PlanItem) {
	if s.opts.Plan == nil {
		return
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	s.opts.Plan(it)
}

func (s *syncer) finish() {
	r := &s.res
	r.SourceObjects, r.SourceBytes = s.srcObjects.Load(), s.srcBytes.Load()
	r.Copied, r.CopiedBytes = s.copied.Load(), s.copiedBytes.Load()
	r.Unchanged, r.Failed, r.Vanished = s.unchanged.Load(), s.failed.Load(), s.vanished.Load()
	r.ResumedParts = s.resumed.Load()
	r.Orphans = int64(len(s.orphans))
	for _, o := range s.orphans {
		if o.marker {
			r.Markers++
		}
	}
	r.Duration = time.Since(s.start)
	r.Errors = s.errors()
	r.Symlinks, r.SymlinkPaths = s.linkCount.Load(), s.symlinks()
}
