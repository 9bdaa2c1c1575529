package gc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// deletion is a Deletion with the files that make it up, as listed.
type deletion struct {
	Deletion
	files []string
}

type sweepPlan struct {
	manifestLinks []deletion // tag index entries and referrer links of deleted manifests
	revisions     []deletion
	layerLinks    []deletion
	blobs         []deletion
}

// plan lists what to delete, in Distribution's order within each kind.
func (c *collector) plan(res *markResult) *sweepPlan {
	// Sized up front: at 200 repositories these are 70,000 deletions,
	// and growing the slices was a tenth of a dry run's time after the
	// scan.
	nLinks := 0
	for _, ds := range res.layerDel {
		nLinks += len(ds)
	}
	p := &sweepPlan{
		revisions:  make([]deletion, 0, len(res.deleteOrder)),
		layerLinks: make([]deletion, 0, nLinks),
		blobs:      make([]deletion, 0, max(0, len(c.blobs)-len(res.marked))),
	}
	indexOf := map[*repo]map[digest.Digest][]tagEntry{}
	for _, q := range res.deleteOrder {
		r := c.repos[q.repo]
		// Distribution removes the manifest from the index of every tag
		// the repository had when it was enumerated, where present.
		if indexOf[r] == nil {
			indexOf[r] = indexEntries(r)
		}
		for _, e := range indexOf[r][q.d] {
			p.manifestLinks = append(p.manifestLinks, deletion{
				Deletion: Deletion{Kind: KindTagIndex, Repository: r.name, Digest: q.d, Tag: e.tag, Path: e.unit},
				files:    r.indexFiles[e.unit],
			})
		}
		// regctl's referrers index: the entries naming it as referrer.
		for _, unit := range r.refsOf[q.d] {
			p.manifestLinks = append(p.manifestLinks, deletion{
				Deletion: Deletion{Kind: KindReferrerLink, Repository: r.name, Digest: q.d, Path: unit},
				files:    r.refFiles[unit],
			})
		}
		unit := storage.ManifestRevisionDir(r.name, q.d)
		p.revisions = append(p.revisions, deletion{
			Deletion: Deletion{Kind: KindManifest, Repository: r.name, Digest: q.d, Path: unit},
			files:    r.revFiles[unit],
		})
	}
	for ri, r := range c.repos {
		for _, d := range res.layerDel[ri] {
			link := storage.LayerLinkPath(r.name, d)
			p.layerLinks = append(p.layerLinks, deletion{
				Deletion: Deletion{Kind: KindLayerLink, Repository: r.name, Digest: d, Path: link},
				files:    []string{link},
			})
		}
	}
	unmarked := make([]digest.Digest, 0, cap(p.blobs))
	for d := range c.blobs {
		if !res.marked[d] {
			unmarked = append(unmarked, d)
		}
	}
	slices.Sort(unmarked)
	for _, d := range unmarked {
		dir := storage.BlobDir(d)
		p.blobs = append(p.blobs, deletion{
			Deletion: Deletion{Kind: KindBlob, Digest: d, Path: dir, Size: c.blobs[d].size},
			files:    c.blobFiles[dir],
		})
	}
	return p
}

type tagEntry struct{ tag, unit string }

// indexEntries sorts a repository's tag index entries by digest, each
// digest's by tag.
func indexEntries(r *repo) map[digest.Digest][]tagEntry {
	out := map[digest.Digest][]tagEntry{}
	prefix := storage.TagsDir(r.name) + "/"
	for unit := range r.indexFiles {
		// <tags>/<tag>/index/<alg>/<hex>
		rel := strings.TrimPrefix(unit, prefix)
		parts := strings.Split(rel, "/")
		if len(parts) != 4 || parts[1] != "index" || !r.tags[parts[0]] {
			continue
		}
		if d, ok := makeDigest(parts[2], parts[3]); ok {
			out[d] = append(out[d], tagEntry{parts[0], unit})
		}
	}
	for _, es := range out {
		slices.SortFunc(es, func(a, b tagEntry) int { return strings.Compare(a.tag, b.tag) })
	}
	return out
}

// batchFiles is how many files go in one DeleteMany call: S3's
// DeleteObjects limit.
const batchFiles = 1000

// stageWork is a stage's deletions.
type stageWork struct {
	stage Stage
	ds    []deletion
}

// sweep deletes each stage's deletions, a stage only once the one before
// is done, but those keep keeps (see SweepFiltered).
func (c *collector) sweep(ctx context.Context, phase Phase, keep func(Deletion) bool, stages ...stageWork) error {
	total := 0
	for _, s := range stages {
		total += len(s.ds)
	}
	c.prog.start(phase, total)
	var mu sync.Mutex
	// done counts ds, deleted, and skipped more that keep kept.
	done := func(ds []deletion, skipped int) {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range ds {
			c.count(d.Deletion)
		}
		c.prog.add(len(ds)+skipped, 0)
	}
	for _, sw := range stages {
		if h := c.opts.Hooks.BeforeStage; h != nil {
			h(sw.stage)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		stage := sw.ds
		if c.opts.DryRun {
			ds, skipped := stage, 0
			if len(stage) > 0 { // an empty stage has no batch, as when deleting
				var err error
				if ds, skipped, err = c.beforeBatch(ctx, sw.stage, stage, keep); err != nil {
					return err
				}
			}
			done(ds, skipped)
			continue
		}
		var err error
		if c.units != nil {
			err = c.sweepUnits(ctx, sw.stage, stage, keep, done)
		} else if c.batch != nil {
			err = c.sweepBatched(ctx, sw.stage, stage, keep, done)
		} else {
			err = forEach(ctx, c.workers, len(stage), func(ctx context.Context, i int) error {
				ds, skipped, err := c.beforeBatch(ctx, sw.stage, stage[i:i+1], keep)
				if err != nil {
					return err
				}
				if len(ds) == 0 {
					done(nil, skipped) // keep kept it all
					return nil
				}
				// The folder (or file) itself, as Distribution deletes it.
				if err := c.drv.Delete(ctx, stage[i].Path); err != nil && !errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("deleting %s: %w", stage[i].Path, err)
				}
				done(ds, 0)
				return nil
			})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// beforeBatch runs Hooks.BeforeBatch on a batch about to be deleted and
// drops from it what keep keeps; skipped is how many it dropped. Without
// either, the batch is returned as it is.
func (c *collector) beforeBatch(ctx context.Context, st Stage, batch []deletion, keep func(Deletion) bool) (ds []deletion, skipped int, err error) {
	if h := c.opts.Hooks.BeforeBatch; h != nil {
		pub := make([]Deletion, len(batch))
		for i := range batch {
			pub[i] = batch[i].Deletion
		}
		h(st, pub)
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
	if keep == nil {
		return batch, 0, nil
	}
	ds = make([]deletion, 0, len(batch))
	for i := range batch {
		if !keep(batch[i].Deletion) {
			ds = append(ds, batch[i])
		}
	}
	return ds, len(batch) - len(ds), nil
}

// sweepBatched hands the listed files to DeleteMany, whole deletions
// per call, several calls at once.
func (c *collector) sweepBatched(ctx context.Context, st Stage, stage []deletion, keep func(Deletion) bool, done func([]deletion, int)) error {
	var batches [][]deletion
	for start := 0; start < len(stage); {
		n, end := 0, start
		for end < len(stage) && (end == start || n+len(stage[end].files) <= batchFiles) {
			n += len(stage[end].files)
			end++
		}
		batches = append(batches, stage[start:end])
		start = end
	}
	// A call deletes up to 1000 objects, and S3 takes some 3,500
	// writes a second per prefix before it answers SlowDown: a few calls
	// at once are plenty.
	return forEach(ctx, max(1, c.workers/8), len(batches), func(ctx context.Context, i int) error {
		batch, skipped, err := c.beforeBatch(ctx, st, batches[i], keep)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			done(nil, skipped) // keep kept it all
			return nil
		}
		var files []string
		for _, d := range batch {
			files = append(files, d.files...)
		}
		if err := c.batch.DeleteMany(ctx, files); err != nil {
			return fmt.Errorf("deleting %d files (%s...): %w", len(files), batch[0].Path, err)
		}
		done(batch, skipped)
		return nil
	})
}

// unitChunk is how many deletions one DeleteUnits call makes. Deletions
// are sorted, so a chunk's units mostly share their parent folder,
// which DeleteUnits then tries to prune once.
const unitChunk = 128

// sweepUnits deletes a stage a chunk per call, several calls at once.
func (c *collector) sweepUnits(ctx context.Context, st Stage, stage []deletion, keep func(Deletion) bool, done func([]deletion, int)) error {
	chunks := (len(stage) + unitChunk - 1) / unitChunk
	return forEach(ctx, c.workers, chunks, func(ctx context.Context, i int) error {
		chunk, skipped, err := c.beforeBatch(ctx, st, stage[i*unitChunk:min((i+1)*unitChunk, len(stage))], keep)
		if err != nil {
			return err
		}
		if len(chunk) == 0 {
			done(nil, skipped) // keep kept it all
			return nil
		}
		units := make([]storage.Unit, len(chunk))
		for j, d := range chunk {
			units[j] = storage.Unit{Path: d.Path, Files: d.files}
		}
		if err := c.units.DeleteUnits(ctx, units); err != nil {
			return fmt.Errorf("deleting: %w", err)
		}
		done(chunk, skipped)
		return nil
	})
}

// count adds a finished deletion to the report and tells the caller.
func (c *collector) count(d Deletion) {
	switch d.Kind {
	case KindManifest:
		c.rep.ManifestsDeleted++
	case KindTagIndex:
		c.rep.TagIndexEntriesDeleted++
	case KindReferrerLink:
		c.rep.ReferrerLinksDeleted++
	case KindLayerLink:
		c.rep.LayerLinksDeleted++
	case KindBlob:
		c.rep.BlobsDeleted++
		c.rep.BytesFreed += d.Size
		if !c.opts.DryRun && c.lister != nil {
			c.deletedBlobs[d.Digest] = true
		}
	}
	c.log.Debug("gc: delete", "kind", d.Kind, "repository", d.Repository, "digest", d.Digest, "path", d.Path, "dry_run", c.opts.DryRun)
	if c.opts.OnDelete != nil {
		c.opts.OnDelete(d)
	}
}
