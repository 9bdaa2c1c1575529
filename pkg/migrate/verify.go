package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"regctl/pkg/storage"
)

// Verify modes.
const (
	VerifyFull  = "full"  // key sets, sizes, links by content, blobs re-hashed
	VerifyQuick = "quick" // key sets and sizes
)

// maxProblems bounds the problems a VerifyResult lists (all are counted).
const maxProblems = 200

// Problem is one difference Verify found.
type Problem struct {
	// Kind is missing, extra, size, content, digest, marker, symlink
	// or error.
	Kind   string `json:"kind"`
	Path   string `json:"path"` // below the storage root: docker/registry/v2/...
	Detail string `json:"detail,omitempty"`
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Source        string `json:"source"`
	Target        string `json:"target"`
	Mode          string `json:"mode"`
	SourceObjects int64  `json:"source_objects"`
	SourceBytes   int64  `json:"source_bytes"`
	TargetObjects int64  `json:"target_objects"`
	// Checked counts the objects read back from the target (full mode).
	Checked      int64 `json:"checked"`
	CheckedBytes int64 `json:"checked_bytes"`
	// Missing: in the source, not the target. Extra: the other way.
	Missing int64 `json:"missing"`
	Extra   int64 `json:"extra"`
	// Size, Content and Digest count objects whose size differs, links
	// whose content differs and blobs whose content does not hash to
	// their digest.
	Size    int64 `json:"size_mismatch"`
	Content int64 `json:"content_mismatch"`
	Digest  int64 `json:"digest_mismatch"`
	// Markers counts 0-byte "folder/" objects, which registries have
	// shown as tags with an empty name.
	Markers int64 `json:"markers"`
	// Errors counts objects that could not be read.
	Errors int64 `json:"errors"`
	// Symlinks counts the symbolic links in the source, which Sync
	// never follows nor copies.
	Symlinks int64         `json:"symlinks"`
	Problems []Problem     `json:"problems,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// OK reports whether the target mirrors the source.
func (r *VerifyResult) OK() bool {
	return r.Missing+r.Extra+r.Size+r.Content+r.Digest+r.Markers+r.Errors+r.Symlinks == 0
}

type verifier struct {
	*engine
	mode string
	jobs chan string

	srcObjects, srcBytes, tgtObjects, checked, checkedBytes atomic.Int64
	missing, extra, size, content, digest, markers, errs    atomic.Int64
	links                                                   atomic.Int64

	pmu      sync.Mutex
	problems []Problem
}

// Verify compares the target with the source (mode VerifyFull or
// VerifyQuick) and reports every difference; excluded paths are left
// out on both sides. It changes nothing.
func Verify(ctx context.Context, opts Options, mode string) (*VerifyResult, error) {
	switch mode {
	case VerifyFull, VerifyQuick:
	default:
		return nil, fmt.Errorf("verify mode %q: want %s or %s", mode, VerifyFull, VerifyQuick)
	}
	e, err := newEngine(opts)
	if err != nil {
		return nil, err
	}
	v := &verifier{engine: e, mode: mode, jobs: make(chan string, 4*e.opts.Concurrency)}
	e.phase.Store("verify")
	stop := e.reportProgress()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := pool(e, v.jobs, func(rel string) { v.check(ctx, rel) })
	err = e.traverse(ctx, v.compare)
	if err != nil {
		cancel(err)
	}
	close(v.jobs)
	workers.Wait()
	stop()
	if err == nil {
		err = ctx.Err()
	}
	r := &VerifyResult{
		Source: e.root, Target: storage.Describe(e.t.d), Mode: mode,
		SourceObjects: v.srcObjects.Load(), SourceBytes: v.srcBytes.Load(), TargetObjects: v.tgtObjects.Load(),
		Checked: v.checked.Load(), CheckedBytes: v.checkedBytes.Load(),
		Missing: v.missing.Load(), Extra: v.extra.Load(), Size: v.size.Load(),
		Content: v.content.Load(), Digest: v.digest.Load(), Markers: v.markers.Load(), Errors: v.errs.Load(), Symlinks: v.links.Load(),
		Problems: v.problems, Duration: time.Since(e.start),
	}
	return r, err
}

func (v *verifier) problem(n *atomic.Int64, kind, rel, format string, args ...any) {
	n.Add(1)
	v.pmu.Lock()
	defer v.pmu.Unlock()
	if len(v.problems) < maxProblems {
		v.problems = append(v.problems, Problem{Kind: kind, Path: driverPath(rel)[1:], Detail: fmt.Sprintf(format, args...)})
	}
}

// compare judges one path by the listings; full mode queues a check of
// the content.
func (v *verifier) compare(ctx context.Context, p pair) error {
	if p.tgt != nil {
		v.tgtObjects.Add(1)
	}
	switch {
	case p.src == nil && marker(p.tgt.path, p.tgt.size):
		v.problem(&v.markers, "marker", p.rel, "0-byte folder marker (registries have shown these as tags with an empty name); --delete removes it")
		return nil
	case p.src == nil:
		v.problem(&v.extra, "extra", p.rel, "%d bytes, not in the source; --delete removes it", p.tgt.size)
		return nil
	}
	if p.src.Symlink {
		v.problem(&v.links, "symlink", p.rel, "a symbolic link in the source: never followed, so not copied; replace it with what it points at, or remove it")
		return nil
	}
	v.srcObjects.Add(1)
	v.srcBytes.Add(p.src.Size)
	v.total.Add(1)
	switch {
	case p.tgt == nil:
		v.problem(&v.missing, "missing", p.rel, "%d bytes in the source", p.src.Size)
	case p.tgt.size != p.src.Size:
		v.problem(&v.size, "size", p.rel, "%d bytes in the target, %d in the source", p.tgt.size, p.src.Size)
	case v.mode == VerifyFull:
		v.btotal.Add(p.src.Size)
		return send(ctx, v.jobs, p.rel)
	}
	v.objects.Add(1)
	return nil
}

// check reads one object back: a blob is hashed against the digest its
// key names, anything else compared with the source byte for byte.
func (v *verifier) check(ctx context.Context, rel string) {
	defer v.objects.Add(1)
	if ctx.Err() != nil {
		return
	}
	if alg, want, ok := isBlobData(rel); ok {
		h := newHash(alg)
		if h == nil {
			v.problem(&v.digest, "digest", rel, "unknown digest algorithm %q", alg)
			return
		}
		body, err := v.t.get(ctx, rel)
		if err != nil {
			v.readError(ctx, rel, err)
			return
		}
		n, err := io.Copy(h, body)
		body.Close()
		v.bytes.Add(n)
		if err != nil {
			v.readError(ctx, rel, err)
			return
		}
		v.checked.Add(1)
		v.checkedBytes.Add(n)
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			v.problem(&v.digest, "digest", rel, "content hashes to %s:%s", alg, got)
		}
		return
	}
	want, err := v.src.GetContent(ctx, driverPath(rel))
	if errors.Is(err, storage.ErrNotFound) {
		return // deleted from the source meanwhile
	}
	if err != nil {
		v.problem(&v.errs, "error", rel, "reading the source: %v", err)
		return
	}
	got, err := v.t.getSmall(ctx, rel, int64(len(want)))
	if err != nil {
		v.readError(ctx, rel, err)
		return
	}
	v.bytes.Add(int64(len(got)))
	v.checked.Add(1)
	v.checkedBytes.Add(int64(len(got)))
	if !bytes.Equal(got, want) {
		v.problem(&v.content, "content", rel, "target holds %q, source %q", clip(got), clip(want))
	}
}

func (v *verifier) readError(ctx context.Context, rel string, err error) {
	if ctx.Err() != nil {
		return
	}
	v.problem(&v.errs, "error", rel, "reading the target: %v", err)
}

func newHash(alg string) hash.Hash {
	switch alg {
	case "sha256":
		return sha256.New()
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	}
	return nil
}

// clip shortens content for a message.
func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
