package gc

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// On the filesystem, walking costs a directory read for each of the
// registry's folders, and nearly every file has a folder of its own
// (revisions/<alg>/<hex>/link, blobs/<alg>/<xx>/<hex>/data): 117,000
// folders for 103,000 files. The layout scan lists only the folders that
// hold many entries and opens the one file each leaf folder holds by
// name, which is a few times fewer system calls. What it cannot see is
// a "link" file at a place of the layout where none belongs, which
// Distribution's walk would read too; sweeping, it deletes leaf folders
// whole (as Distribution does) rather than the files it saw.

// leafChunk is how many leaf folders one task reads.
const leafChunk = 256

// listAll is list with whether the folder exists.
func (c *collector) listAll(ctx context.Context, p string) ([]string, bool, error) {
	children, err := c.drv.List(ctx, p)
	if err == nil {
		return children, true, nil
	}
	if errors.Is(err, storage.ErrNotFound) || c.symlink(p, err) {
		return nil, false, nil
	}
	children, err = c.list(ctx, p)
	return children, false, err
}

// listLevels lists the folders depth levels below dir.
func (c *collector) listLevels(ctx context.Context, dir string, depth int) ([]string, error) {
	level := []string{dir}
	for range depth {
		var next []string
		for _, d := range level {
			children, err := c.list(ctx, d)
			if err != nil {
				return nil, fmt.Errorf("listing %s: %w", d, err)
			}
			next = append(next, children...)
		}
		level = next
	}
	return level, nil
}

// readLeaves reads the link file in each folder, a chunk per task, and
// calls found for each present one, under c.mu.
func (c *collector) readLeaves(g *group, dirs []string, found func(dir, link string)) {
	for start := 0; start < len(dirs); start += leafChunk {
		chunk := dirs[start:min(start+leafChunk, len(dirs))]
		c.prog.add(0, 1)
		g.Go(func(ctx context.Context) error {
			defer c.prog.add(1, 0)
			reads := make([]linkRead, len(chunk))
			for i, d := range chunk {
				var err error
				if reads[i], err = c.readLink(ctx, d+"/link"); err != nil {
					return err
				}
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			for i, d := range chunk {
				if !reads[i].missing {
					c.links[d+"/link"] = reads[i]
					found(d, d+"/link")
				}
			}
			return nil
		})
	}
}

// scanRepoLayout is scanRepoPart by the layout.
func (c *collector) scanRepoLayout(ctx context.Context, g *group, r *repo, dir, part string) error {
	switch part {
	case "_manifests":
		revs, err := c.listLevels(ctx, path.Join(dir, "revisions"), 2)
		if err != nil {
			return err
		}
		c.readLeaves(g, revs, func(d, link string) {
			r.revLinks = append(r.revLinks, link)
			r.revFiles[d] = []string{link}
		})
		tags, exists, err := c.listAll(ctx, path.Join(dir, "tags"))
		if err != nil {
			return fmt.Errorf("listing %s: %w", path.Join(dir, "tags"), err)
		}
		var currents []string
		c.mu.Lock()
		r.tagsDir = exists
		for _, t := range tags {
			r.tags[path.Base(t)] = true
			currents = append(currents, path.Join(t, "current"))
		}
		c.mu.Unlock()
		// Each tag's index: two listings a tag, a chunk of tags a task.
		for start := 0; start < len(tags); start += leafChunk / 8 {
			chunk := tags[start:min(start+leafChunk/8, len(tags))]
			c.prog.add(0, 1)
			g.Go(func(ctx context.Context) error {
				defer c.prog.add(1, 0)
				var entries []string
				for _, t := range chunk {
					es, err := c.listLevels(ctx, path.Join(t, "index"), 2)
					if err != nil {
						return err
					}
					entries = append(entries, es...)
				}
				c.mu.Lock()
				defer c.mu.Unlock()
				for _, e := range entries {
					r.indexFiles[e] = []string{e + "/link"}
				}
				return nil
			})
		}
		if c.opts.RemoveUntagged {
			c.readLeaves(g, currents, func(d, link string) { r.current[path.Base(path.Dir(d))] = link })
		}
	case "_layers":
		links, err := c.listLevels(ctx, dir, 2)
		if err != nil {
			return err
		}
		c.readLeaves(g, links, func(_, link string) { r.layerLinks = append(r.layerLinks, link) })
	case "_regctl":
		units, err := c.listLevels(ctx, path.Join(dir, "referrers"), 4)
		if err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, u := range units {
			ref, ok := makeDigest(path.Base(path.Dir(u)), path.Base(u))
			if !ok {
				continue
			}
			r.refsOf[ref] = append(r.refsOf[ref], u)
			r.refFiles[u] = []string{u + "/link"}
		}
	}
	return nil
}

// scanBlobPrefixLayout lists blobs/<alg>/<xx> and stats each data file.
func (c *collector) scanBlobPrefixLayout(ctx context.Context, dir string) error {
	hexes, err := c.list(ctx, dir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	alg, xx := path.Base(path.Dir(dir)), path.Base(dir)
	type found struct {
		d    digest.Digest
		size int64
		dir  string
	}
	var blobs []found
	for _, h := range hexes {
		hex := path.Base(h)
		d, ok := makeDigest(alg, hex)
		if !ok || hex[:2] != xx {
			continue // Distribution's walk would find no blob here either, or stop
		}
		fi, err := c.drv.Stat(ctx, h+"/data")
		if errors.Is(err, storage.ErrNotFound) || (err == nil && fi.IsDir) || c.symlink(h+"/data", err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %s/data: %w", h, err)
		}
		blobs = append(blobs, found{d, fi.Size, h})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range blobs {
		c.blobs[b.d] = &blobEntry{size: b.size}
		c.blobFiles[b.dir] = []string{b.dir + "/data"}
	}
	return nil
}
