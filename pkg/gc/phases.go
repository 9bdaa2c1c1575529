package gc

import (
	"context"
	"iter"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// Snapshot is the registry as Load read it: its repositories, links,
// blobs and manifests, in memory. Run is Load, Mark, Plan, SweepFiltered
// and SaveManifestCache in a row; they are exported for the online
// collector (docs/gc-online.md), which marks again with the roots its
// promise markers name and sweeps with a last-moment filter.
//
// Every phase decides on what Load read, never on the storage as it is
// later. So what each guarantees (a tagged image stays complete) holds
// only if nothing writes to the storage from Load to the end of the
// sweep: the caller must make sure of that (see package maintenance),
// unless it runs the online protocol, whose markers (as Roots) and
// claims (as the keep filter) cover such writes. The methods of a
// Snapshot are not safe for concurrent use.
type Snapshot struct {
	c      *collector
	start  time.Time
	marked bool // Mark has advanced PhaseMark's progress
}

// Load reads the registry on drv, in parallel: the listings of every
// repository and of blobs/, every link marking needs and every manifest
// (from the manifest cache where its MD5 and size match, on S3). It
// deletes nothing and writes nothing. opts hold for the whole run: the
// later phases use its RemoveUntagged, DryRun, Workers, Log, Progress,
// OnDelete and Hooks. Problems found go to the Snapshot's Report.
//
// The Snapshot is not atomic: each folder is as it was when it was
// listed, each link and manifest when it was read. Nothing may write
// meanwhile, unless the caller runs the online protocol (see Snapshot).
func Load(ctx context.Context, drv storage.Driver, opts Options) (*Snapshot, error) {
	s := newSnapshot(drv, opts)
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func newSnapshot(drv storage.Driver, opts Options) *Snapshot {
	return &Snapshot{c: newCollector(drv, opts), start: time.Now()}
}

func (s *Snapshot) load(ctx context.Context) error {
	c := s.c
	c.log.Info("gc: scanning", "driver", c.drv.Name(), "workers", c.workers, "remove_untagged", c.opts.RemoveUntagged, "dry_run", c.opts.DryRun)
	if err := c.load(ctx); err != nil {
		return err
	}
	if h := c.opts.Hooks.AfterLoad; h != nil {
		h()
	}
	return nil
}

// RepoDigest names a digest in one repository.
type RepoDigest struct {
	Repository string
	Digest     digest.Digest
}

// Roots are what a marking keeps on top of what the registry's tags
// (and, without RemoveUntagged, its revisions) keep: for the online
// collector, what its promise markers name. Each kind keeps what it
// takes to serve it. A name the Snapshot does not have keeps nothing,
// but a LayerLinks root keeps its blob even where the Snapshot has no
// such link (or repository).
type Roots struct {
	// Blobs are kept, and for a manifest blob what it references
	// (config, layers, index children), recursively, as blobs. A kept
	// blob that is an untagged revision somewhere keeps that revision
	// with what it needs there (Distribution deletes a queued manifest
	// only when its digest is unmarked); other layer links to it are
	// judged as without the root: name them in LayerLinks.
	Blobs []digest.Digest
	// LayerLinks are layer links kept in their repository, each with
	// its blob (as a Blobs root).
	LayerLinks []RepoDigest
	// Revisions are manifests kept in their repository as if tagged:
	// with everything they reference there (blobs, the repository's
	// layer links to them, index children) and, with RemoveUntagged,
	// their referrers.
	Revisions []RepoDigest
}

func (r Roots) empty() bool {
	return len(r.Blobs) == 0 && len(r.LayerLinks) == 0 && len(r.Revisions) == 0
}

// Marks is the outcome of one Mark.
type Marks struct {
	s   *Snapshot
	res *markResult
}

// Marked tells whether the marking keeps blob d.
func (m *Marks) Marked(d digest.Digest) bool { return m.res.marked[d] }

// Mark decides, in memory, what the registry keeps: it replays
// Distribution's marking on the Snapshot (so its order-dependent
// results are reproduced), keeps the referrers of kept manifests with
// RemoveUntagged, keeps what every kept manifest needs (keepForSafety),
// and keeps roots with what they need, applied after the replay so that
// its decisions on everything else stay. Roots only ever keep more:
// what Mark(Roots{}) keeps, Mark(roots) keeps too. It reads no storage
// and may be called again (with other roots); the Report's marking
// figures are those of the marking whose plan SweepFiltered sweeps.
func (s *Snapshot) Mark(roots Roots) *Marks {
	c := s.c
	res := c.mark(c.resolveRoots(roots))
	if !s.marked {
		s.marked = true
		c.prog.add(len(c.repos), 0)
	}
	c.log.Info("gc: marked", "blobs_marked", len(res.marked), "manifests_marked", len(res.walked), "referrers_kept", res.referrersKept)
	if h := c.opts.Hooks.AfterMark; h != nil {
		h()
	}
	return &Marks{s: s, res: res}
}

// Stage is a step of the sweep: a stage starts once the one before is
// done, which is what keeps every tagged image (and kept referrer)
// pullable when a sweep stops anywhere.
type Stage int

// The stages, in sweep order.
const (
	// StageManifestLinks: tag index entries and referrer links of the
	// manifests deleted next (once a revision is gone no later run
	// finds them).
	StageManifestLinks Stage = iota
	// StageManifests: revisions (KindManifest).
	StageManifests
	// StageLayerLinks: layer links, before blobs (a link whose blob is
	// gone is ignored by marking, so it would stay forever).
	StageLayerLinks
	// StageBlobs: blobs.
	StageBlobs
)

var stageNames = [...]string{"manifest-links", "manifests", "layer-links", "blobs"}

func (s Stage) String() string {
	if s < 0 || int(s) >= len(stageNames) {
		return "stage?"
	}
	return stageNames[s]
}

// Plan is what a sweep deletes, in the order it deletes it.
type Plan struct {
	s   *Snapshot
	res *markResult
	p   *sweepPlan
}

// Plan lists what m lets go, without deleting anything: untagged
// revisions with their tag index entries and referrer links, layer links,
// then blobs, in Distribution's order within each kind. The plan of
// Mark(Roots{}) is exactly what Run deletes. m must come from s.
func (s *Snapshot) Plan(m *Marks) *Plan {
	if m.s != s {
		panic("gc: Plan of a marking from another Snapshot")
	}
	return &Plan{s: s, res: m.res, p: s.c.plan(m.res)}
}

func (p *Plan) stage(st Stage) []deletion {
	switch st {
	case StageManifestLinks:
		return p.p.manifestLinks
	case StageManifests:
		return p.p.revisions
	case StageLayerLinks:
		return p.p.layerLinks
	case StageBlobs:
		return p.p.blobs
	}
	return nil
}

// Deletions are the stage's deletions, in the order the sweep hands
// them to the storage.
func (p *Plan) Deletions(st Stage) iter.Seq[Deletion] {
	ds := p.stage(st)
	return func(yield func(Deletion) bool) {
		for i := range ds {
			if !yield(ds[i].Deletion) {
				return
			}
		}
	}
}

// Len is the number of deletions in the plan.
func (p *Plan) Len() int {
	return len(p.p.manifestLinks) + len(p.p.revisions) + len(p.p.layerLinks) + len(p.p.blobs)
}

// SweepFiltered deletes the plan, stage by stage (see Stage), in
// batches of up to 1000 files on S3, several at once. keep, when not
// nil, is asked about each deletion right before its batch goes to the
// storage (after Hooks.BeforeBatch); what it keeps (returns true for) is
// not deleted, nor reported or passed to OnDelete. keep judges one
// object: keeping a revision keeps neither its tag index entries nor
// its referrer links (they carry its Repository and Digest, so a keep by
// the pair covers them), nor what it references. keep may be called
// from several goroutines at once. With DryRun nothing is deleted and
// the Report and OnDelete tell what would go.
//
// On an error or a cancelled ctx it stops; what it deleted is counted
// in the Report. Deleting only in the safe order, a later run finishes
// the job. It deletes what the plan says whatever was written since
// Load: nothing may write meanwhile, unless the caller runs the online
// protocol and its keep answers for those writes. p must come from s.
func (s *Snapshot) SweepFiltered(ctx context.Context, p *Plan, keep func(Deletion) bool) error {
	if p.s != s {
		panic("gc: SweepFiltered of a plan from another Snapshot")
	}
	c := s.c
	c.rep.BlobsMarked = len(p.res.marked)
	c.rep.ManifestsMarked = len(p.res.walked)
	c.rep.ReferrersKept = p.res.referrersKept
	c.rep.LayerLinksKept = p.res.linksKept
	c.log.Info("gc: sweeping", "manifests", len(p.p.revisions), "layer_links", len(p.p.layerLinks), "blobs", len(p.p.blobs))
	// A manifest's tag index entries and referrer links go before its
	// revision: once the revision is gone no later run finds them.
	if err := c.sweep(ctx, PhaseDeleteManifests, keep, stageWork{StageManifestLinks, p.p.manifestLinks}, stageWork{StageManifests, p.p.revisions}); err != nil {
		return phaseErr(PhaseDeleteManifests, err)
	}
	// Layer links before blobs: Distribution (and so Run) ignores a link
	// whose blob is gone, so links left behind by an interrupted blob
	// sweep would stay forever; in this order an interrupted run leaves
	// nothing a later one does not finish.
	if err := c.sweep(ctx, PhaseDeleteLinks, keep, stageWork{StageLayerLinks, p.p.layerLinks}); err != nil {
		return phaseErr(PhaseDeleteLinks, err)
	}
	if err := c.sweep(ctx, PhaseDeleteBlobs, keep, stageWork{StageBlobs, p.p.blobs}); err != nil {
		return phaseErr(PhaseDeleteBlobs, err)
	}
	return nil
}

// SaveManifestCache writes the manifest cache (S3) for the manifests
// Load found, but those whose blobs a sweep of s deleted; only when it
// changed. A failure is logged: the next run reads more, that is all.
func (s *Snapshot) SaveManifestCache(ctx context.Context) {
	s.c.saveManifestCache(ctx, s.c.deletedBlobs)
}

// Report is the run so far: what Load found, the figures of the
// marking last swept, what the sweeps deleted, and every problem, sorted. Duration counts
// from Load.
func (s *Snapshot) Report() *Report {
	c := s.c
	c.rep.Problems = c.sortedProblems()
	c.rep.Symlinks = countKind(c.rep.Problems, ProblemSymlink)
	c.rep.Duration = time.Since(s.start)
	return c.rep
}

// Hooks are test hook points between the phases of a run, for tests
// that force an interleaving (a write, a cancellation) at a named
// point. Each is optional and nil in production. They run on the run's
// goroutines and hold the run while they run.
type Hooks struct {
	// AfterLoad: Load has read everything, before it returns.
	AfterLoad func()
	// AfterMark: a Mark is done, before it returns.
	AfterMark func()
	// BeforeStage: a sweep stage is about to start (every stage, even
	// an empty one); the sweep checks ctx right after.
	BeforeStage func(Stage)
	// BeforeBatch: a batch of the stage's deletions is about to be
	// filtered by keep and deleted; the sweep checks ctx right after.
	// Batches of a stage run concurrently; a dry run's stage is one
	// batch.
	BeforeBatch func(Stage, []Deletion)
}
