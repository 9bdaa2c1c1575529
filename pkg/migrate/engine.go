// Package migrate copies a registry's storage into another and checks
// the copy: `regctl migrate-storage`, from the filesystem into an S3
// bucket. Both sides are storage drivers: what the copy needs beyond the
// Driver interface (flat listings with MD5s, verified and multipart
// writes, batch deletes, a larger connection pool) it finds as the
// target's capabilities, and does with plain driver calls where the
// target has none, so any driver copies into any other.
//
// Sync is an incremental one-way sync of the Distribution root (see
// scope.go for what is left out), Verify compares both sides, and
// Cutover runs the admin guide's whole "migrate to object storage"
// procedure: sync, read-only, final sync with delete, verify, switch the
// settings to S3, read-write, rolling back to the filesystem on any
// failure.
//
// The tree is cut into shards (blobs/<alg>/<xx>, repositories/<a>/<b>)
// that are listed on both sides in parallel and compared in memory one
// shard at a time; a flat listing (S3's) gives size and MD5, so no
// object is HEADed. Copies run on a pool of Concurrency requests.
//
// Change detection never trusts size alone where content can change at
// the same size (a tag's current/link is always 71 bytes): a link (any
// file but a blob) of the same size is compared by content, its MD5
// against the one the listing tells (S3's single-part ETag), or by
// reading the object where the listing tells none (SSE-KMS). A blob's
// key is the digest of its content, so a blob of the right size at its
// key is the right blob; Verify re-hashes every blob to catch
// corruption.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"regctl/pkg/storage"
)

// Defaults.
const (
	DefaultConcurrency = 64
	listers            = 8 // shards listed at once
	smallFile          = 1 << 20
	maxErrors          = 20 // error messages kept in a result
)

// ErrNoTree is wrapped when the source has no Distribution tree.
var ErrNoTree = errors.New("no docker/registry/v2 tree")

// ErrEmptySource is wrapped when --delete is refused for an empty source.
var ErrEmptySource = errors.New("the source holds no registry data")

// Options configure Sync and Verify.
type Options struct {
	// Source is the storage to copy from; when nil, the filesystem
	// storage at SourceRoot.
	Source     storage.Driver
	SourceRoot string
	// Target is the storage to copy into (a bucket); its settings
	// (rootdirectory, chunksize, encryption, maxrequestspersecond) apply.
	Target storage.Driver
	// Concurrency bounds the requests copying or checking objects at
	// once (DefaultConcurrency when 0). Listings add a few.
	Concurrency int
	// DryRun changes nothing: Sync only reports what it would do.
	DryRun bool
	// Delete removes target objects that are not in the source, after
	// every copy succeeded.
	Delete bool
	// Log receives warnings and the run's milestones.
	Log *slog.Logger
	// Progress, when set, is called every ProgressEvery (default 250 ms)
	// while a run lasts, and once more at its end.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Plan, when set, is told each object a dry run would copy or
	// delete, one call at a time.
	Plan func(PlanItem)
}

// PlanItem is one object a dry run would copy or delete.
type PlanItem struct {
	Action string `json:"action"` // copy or delete
	Path   string `json:"path"`   // below the storage root: docker/registry/v2/...
	Size   int64  `json:"size"`
	// Reason is why: new, size or content (a copy), orphan or marker (a
	// delete).
	Reason string `json:"reason"`
}

// Progress is a running count, for progress bars.
type Progress struct {
	Phase string `json:"phase"` // sync, delete, verify
	// Objects counts the source objects handled (copied, unchanged,
	// failed or checked), of ObjectsTotal found so far.
	Objects, ObjectsTotal int64
	// Bytes counts the bytes copied (Sync) or read back (Verify) of
	// BytesTotal known so far.
	Bytes, BytesTotal int64
	// Listed is true once both sides are listed: the totals are final.
	Listed  bool
	Elapsed time.Duration
	Done    bool
}

// pair is one path seen on either side: src nil when only the target
// has it, tgt nil when only the source has.
type pair struct {
	rel string
	src *storage.FileInfo
	tgt *object
}

// engine is what Sync and Verify share: both sides and the pools.
type engine struct {
	opts   Options
	log    *slog.Logger
	src    storage.Driver
	opener storage.Opener // the source's, nil when it has none
	root   string         // the source, for messages
	t      *target
	slots  chan struct{} // one per request copying or checking

	phase   atomic.Value // string
	start   time.Time
	listed  atomic.Bool
	objects atomic.Int64 // handled
	total   atomic.Int64 // found in the source
	bytes   atomic.Int64 // moved
	btotal  atomic.Int64 // to move

	mu   sync.Mutex
	errs []string
	nerr int
	// Symbolic links met in the source: never followed, never copied.
	links     []string // the first maxErrors
	linkCount atomic.Int64
}

func newEngine(opts Options) (*engine, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 250 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Target == nil {
		return nil, errors.New("migrate: no target bucket")
	}
	src, err := openSource(opts)
	if err != nil {
		return nil, err
	}
	root := storage.Describe(src)
	// Through the driver, as everything read from the source: the
	// filesystem's never follows a symbolic link, so nothing outside the
	// root is copied.
	if st, err := src.Stat(context.Background(), storage.Root); errors.Is(err, storage.ErrSymlink) {
		return nil, fmt.Errorf("source %s: %w", root, err)
	} else if err != nil || !st.IsDir {
		return nil, fmt.Errorf("source %s: %w under it: is it a registry's storage root?", root, ErrNoTree)
	}
	e := &engine{
		opts: opts, log: opts.Log, src: src, root: root,
		t:     newTarget(opts.Target, opts.Concurrency),
		slots: make(chan struct{}, opts.Concurrency),
		start: time.Now(),
	}
	e.opener, _ = storage.As[storage.Opener](src)
	e.phase.Store("")
	return e, nil
}

// openSource is Options.Source, or the filesystem storage at SourceRoot.
func openSource(opts Options) (storage.Driver, error) {
	if opts.Source != nil {
		return opts.Source, nil
	}
	root, err := filepath.Abs(opts.SourceRoot)
	if err != nil {
		return nil, err
	}
	fs, err := storage.NewFilesystem(root)
	if err != nil {
		return nil, err
	}
	return fs, nil
}

// fail records an error message (the first maxErrors are kept).
func (e *engine) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nerr++
	if len(e.errs) < maxErrors {
		e.errs = append(e.errs, msg)
	}
	e.log.Warn(msg)
}

// symlink records a symbolic link met in the source.
func (e *engine) symlink(rel string) {
	e.linkCount.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.links) < maxErrors {
		e.links = append(e.links, driverPath(rel)[1:])
	}
	e.log.Warn("a symbolic link in the source: never followed, not copied; what the bucket holds below it is left alone", "path", driverPath(rel))
}

func (e *engine) symlinks() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.links)
}

func (e *engine) errors() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.errs...)
}

func (e *engine) snapshot(done bool) Progress {
	return Progress{
		Phase:   e.phase.Load().(string),
		Objects: e.objects.Load(), ObjectsTotal: e.total.Load(),
		Bytes: e.bytes.Load(), BytesTotal: e.btotal.Load(),
		Listed: e.listed.Load(), Elapsed: time.Since(e.start), Done: done,
	}
}

// reportProgress calls Options.Progress every ProgressEvery until stop
// is called, which reports once more.
func (e *engine) reportProgress() (stop func()) {
	if e.opts.Progress == nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(e.opts.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				e.opts.Progress(e.snapshot(false))
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		e.opts.Progress(e.snapshot(true))
	}
}

// traverse calls fn for every path of the tree on either side (except
// excluded ones), from several goroutines at once. A listing error
// stops it; fn's error too.
func (e *engine) traverse(ctx context.Context, fn func(context.Context, pair) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	shards := make(chan string, 512)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(shards)
		if err := e.discover(ctx, "", shards, fn); err != nil {
			cancel(err)
		}
	})
	for range listers {
		wg.Go(func() {
			for rel := range shards {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := e.shard(ctx, rel, fn); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	e.listed.Store(true)
	e.log.Info("both sides listed", "objects", e.total.Load(), "took", time.Since(e.start).Round(time.Millisecond))
	return nil
}

// discover compares one folder above shardDepth: its files directly,
// its folders by recursion or as shards.
func (e *engine) discover(ctx context.Context, rel string, shards chan<- string, fn func(context.Context, pair) error) error {
	srcFiles, srcDirs, err := e.sourceLevel(ctx, rel)
	if err != nil {
		return err
	}
	tgtFiles, tgtDirs, err := e.t.listLevel(ctx, rel)
	if err != nil {
		return err
	}
	for name, fi := range srcFiles {
		if fi.Symlink {
			// What the bucket holds there stays as it is: neither
			// compared nor, as an orphan, deleted.
			tgtDirs = slices.DeleteFunc(tgtDirs, func(d string) bool { return d == name })
		}
		r := join(rel, name)
		if excluded(r) {
			continue
		}
		p := pair{rel: r, src: &fi}
		if o, ok := tgtFiles[name]; ok {
			p.tgt = &o
			delete(tgtFiles, name)
		}
		if err := fn(ctx, p); err != nil {
			return err
		}
	}
	for name, o := range tgtFiles {
		r := join(rel, name) // rel + "/" for a marker of this folder itself
		if excluded(r) {
			continue
		}
		if err := fn(ctx, pair{rel: r, tgt: &o}); err != nil {
			return err
		}
	}
	dirs := map[string]bool{}
	for _, d := range srcDirs {
		dirs[d] = true
	}
	for _, d := range tgtDirs {
		dirs[d] = true
	}
	names := make([]string, 0, len(dirs))
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		r := join(rel, d)
		if excluded(r) {
			continue
		}
		if depth(r) >= shardDepth {
			select {
			case shards <- r:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			continue
		}
		if err := e.discover(ctx, r, shards, fn); err != nil {
			return err
		}
	}
	return nil
}

// sourceLevel reads one source folder: its files (symbolic links
// among them, with Symlink set) and its folders. A missing folder is
// empty.
func (e *engine) sourceLevel(ctx context.Context, rel string) (map[string]storage.FileInfo, []string, error) {
	files, dirs, err := level(ctx, e.src, rel)
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	return files, dirs, nil
}

// shard compares one subtree: the target's keys below it are listed into
// memory, then the source is walked against them.
func (e *engine) shard(ctx context.Context, rel string, fn func(context.Context, pair) error) error {
	tgt := map[string]object{}
	if err := e.t.listTree(ctx, rel, func(r string, o object) { tgt[r] = o }); err != nil {
		return err
	}
	if st, err := e.src.Stat(ctx, driverPath(rel)); err == nil && st.IsDir {
		err := e.src.Walk(ctx, driverPath(rel), func(fi storage.FileInfo) error {
			r := relOf(fi.Path)
			if excluded(r) {
				if fi.IsDir {
					return storage.ErrSkipDir
				}
				return nil
			}
			if fi.IsDir {
				return nil
			}
			if fi.Symlink {
				// What the bucket holds below it stays as it is.
				maps.DeleteFunc(tgt, func(k string, _ object) bool { return strings.HasPrefix(k, r+"/") })
			}
			p := pair{rel: r, src: &fi}
			if o, ok := tgt[r]; ok {
				p.tgt = &o
				delete(tgt, r)
			}
			return fn(ctx, p)
		})
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	for r, o := range tgt {
		if excluded(r) {
			continue
		}
		if err := fn(ctx, pair{rel: r, tgt: &o}); err != nil {
			return err
		}
	}
	return nil
}

// pool runs work on jobs with Concurrency goroutines, each job holding
// a request slot; it returns when jobs is closed and drained.
func pool[J any](e *engine, jobs <-chan J, work func(J)) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range e.opts.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				e.slots <- struct{}{}
				work(j)
				<-e.slots
			}
		})
	}
	return &wg
}

// send queues a job unless ctx ends first.
func send[J any](ctx context.Context, jobs chan<- J, j J) error {
	select {
	case jobs <- j:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
