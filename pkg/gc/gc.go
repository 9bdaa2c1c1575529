// Package gc is regctl's garbage collector: a mark and sweep over a
// storage.Driver that deletes what CNCF Distribution v3.1.2's `registry
// garbage-collect [-m]` deletes on the same data, with three deliberate
// differences: with RemoveUntagged it keeps the OCI referrers
// (signatures, SBOMs) of every manifest it keeps; every manifest that
// stays in a repository keeps there the layer links it needs (see
// Report.LayerLinksKept); and it deletes the dead layer links of
// repositories emptied through the API (Report.OrphanRepositories).
//
// It reads the whole registry first, in parallel, then replays
// Distribution's sequential marking in memory (so its order-dependent
// results are reproduced exactly), then deletes in an order that keeps
// every tagged image and its referrers pullable if it stops at any point:
// untagged manifests (with their tag index entries and referrer links),
// then layer links, then blobs.
//
// Where Distribution would abort (a corrupt link, a manifest it cannot
// parse), Run records a Problem, keeps what might still be needed, and
// goes on. The caller must make sure nothing writes to the storage
// meanwhile (see package maintenance), unless it runs the online
// protocol over Run's phases (see Snapshot).
package gc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"

	// Digest algorithms are only valid when their hash is linked in.
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// Phase names a step of Run, for progress reports.
type Phase string

// The phases, in the order Run goes through them.
const (
	PhaseScan            Phase = "scan"             // listing repositories and blobs
	PhaseRead            Phase = "read"             // reading links and manifests
	PhaseMark            Phase = "mark"             // marking, per repository
	PhaseDeleteManifests Phase = "delete-manifests" // untagged manifests, tag index entries, referrer links
	PhaseDeleteLinks     Phase = "delete-layer-links"
	PhaseDeleteBlobs     Phase = "delete-blobs"
)

// Kinds of Deletion.
const (
	KindManifest     = "manifest"      // a revision folder
	KindTagIndex     = "tag-index"     // a tag's index entry for a deleted manifest
	KindReferrerLink = "referrer-link" // regctl's referrers index entry of a deleted manifest
	KindLayerLink    = "layer-link"    // a repository's link to a blob
	KindBlob         = "blob"          // a blob folder
)

// Options tune Run. The zero value is Distribution's plain
// `garbage-collect`: blobs only.
type Options struct {
	// RemoveUntagged is Distribution's -m: also delete manifests no tag
	// points at, except those a kept manifest references and (unlike
	// Distribution) the referrers of kept manifests.
	RemoveUntagged bool
	// DryRun changes nothing; the Report and OnDelete tell what would go.
	DryRun bool
	// Workers bounds concurrent storage requests; 0 means 8 on the
	// filesystem and 32 on S3.
	Workers int
	// Log receives a line per phase and (at debug) per deletion; nil
	// discards. Problems are not logged: they are in Report.Problems.
	Log *slog.Logger
	// Progress, when set, is called as each phase advances, from one
	// goroutine at a time. total may grow during PhaseScan.
	Progress func(phase Phase, done, total int)
	// OnDelete, when set, is called for each deletion once it is done (in
	// a dry run, once it is decided), from one goroutine at a time.
	OnDelete func(Deletion)
	// Hooks are for tests only; the zero value runs none.
	Hooks Hooks
}

// Deletion is one object removed (or, in a dry run, to be removed).
type Deletion struct {
	Kind       string // KindManifest, KindTagIndex, KindReferrerLink, KindLayerLink or KindBlob
	Repository string // "" for blobs
	Digest     digest.Digest
	Tag        string // KindTagIndex only
	Path       string // the folder (or, for a layer link, the file) removed
	Size       int64  // bytes freed: a blob's data size, else 0
}

// Problem is something in the storage Distribution would stop on, or
// that Run chose to handle differently from it. Run goes on after each.
type Problem struct {
	Kind       string // see the Problem* constants
	Path       string
	Repository string
	Digest     digest.Digest
	Detail     string // what was found and what Run did about it
}

func (p Problem) String() string {
	s := p.Kind + ": " + p.Path
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Kinds of Problem.
const (
	// A link file that is empty or does not hold a valid digest.
	ProblemCorruptLink = "corrupt-link"
	// A link whose content is not the digest its path names.
	ProblemMismatchedLink = "mismatched-link"
	// A link to a blob that is not in blobs/: Distribution ignores the
	// link (and never deletes it); so does Run.
	ProblemMissingBlob = "missing-blob"
	// A manifest that must be marked but cannot be parsed.
	ProblemBadManifest = "bad-manifest"
	// A repository folder whose name is not a valid repository name.
	ProblemBadRepository = "bad-repository"
	// A file in blobs/ outside the blobs/<alg>/<xx>/<hex>/data layout.
	ProblemStrayBlobFile = "stray-blob-file"
	// Something Distribution would delete although a kept manifest needs
	// it (an artefact of its marking order); Run keeps it.
	ProblemKeptForSafety = "kept-for-safety"
	// A deliberate difference from Distribution on an unusual layout.
	ProblemDeviation = "deviation"
	// A symbolic link in a filesystem root, met on a path the scan
	// reads: never followed (it could lead outside the root), so what
	// is behind it is neither read nor deleted, and the link stays.
	ProblemSymlink = "symlink"
)

// Report sums up a run.
type Report struct {
	Repositories int
	// ManifestsMarked counts distinct manifests whose references were
	// marked; BlobsMarked is Distribution's "blobs marked": every digest
	// in the mark set, manifests included.
	ManifestsMarked, BlobsMarked int

	ManifestsDeleted, BlobsDeleted, LayerLinksDeleted int
	TagIndexEntriesDeleted, ReferrerLinksDeleted      int
	BytesFreed                                        int64

	// ReferrersKept counts untagged referrers kept because their subject
	// is kept: the manifests Distribution's -m would delete and Run keeps.
	ReferrersKept int
	// LayerLinksKept counts layer links Distribution's -m deletes and
	// Run keeps: those of an untagged revision that stays in its
	// repository because another repository tags it (or names it in an
	// index), which Distribution judges before it marks that digest.
	// Without them the revision would answer "exists" there but not
	// pull.
	LayerLinksKept int
	// Orphan repositories: folders with layer links but no _manifests
	// (every manifest deleted through the API). Distribution does not
	// list them; Run deletes their links to blobs that are deleted or
	// missing, and leaves the others.
	OrphanRepositories int
	// ManifestsFromCache counts the manifests whose references came from
	// the manifest cache of an earlier run rather than a read (S3).
	ManifestsFromCache int
	// Symlinks counts the ProblemSymlink problems.
	Symlinks int

	Problems []Problem
	DryRun   bool
	Duration time.Duration
}

// Run uses the driver's optional capabilities (found with storage.As):
// a storage.LocalFolders driver is read by its layout (layout.go) and
// swept with storage.UnitDeleter; on others a storage.FileLister gives
// most link files' contents from their MD5 instead of reading them (a
// link holds a digest it can guess: the one its path names; for a tag,
// one of the repository's manifests), and a storage.BatchDeleter deletes
// many files a request. Without them it falls back to Walk, GetContent
// and one Delete per file.

// Run collects garbage on drv. On an error or a cancelled ctx it stops
// and returns what it did so far with the error; deleting only ever in
// the safe order, a later Run finishes the job.
func Run(ctx context.Context, drv storage.Driver, opts Options) (*Report, error) {
	start := time.Now()
	s := newSnapshot(drv, opts)
	err := s.run(ctx)
	rep := s.Report()
	rep.Duration = time.Since(start)
	return rep, err
}

// run is Run's composition of the phases.
func (s *Snapshot) run(ctx context.Context) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	if err := s.SweepFiltered(ctx, s.Plan(s.Mark(Roots{})), nil); err != nil {
		return err
	}
	s.SaveManifestCache(ctx)
	c := s.c
	c.log.Info("gc: done", "manifests_deleted", c.rep.ManifestsDeleted, "blobs_deleted", c.rep.BlobsDeleted,
		"layer_links_deleted", c.rep.LayerLinksDeleted, "bytes_freed", c.rep.BytesFreed, "problems", len(c.problems))
	return nil
}

// phaseErr names the phase a run stopped in.
func phaseErr(p Phase, err error) error {
	return fmt.Errorf("gc %s: %w", p, err)
}
