package gc

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/storage"
)

// repo is what the scan found in one repository folder, and what
// preparing it made of that.
type repo struct {
	name             string
	revDir, layerDir string
	orphan           bool // no _manifests folder: not a repository to Distribution

	// From the listing (paths are full driver paths).
	revLinks   []string            // files named "link" below _manifests/revisions
	revFiles   map[string][]string // revision folder -> the files below it
	tagsDir    bool                // _manifests/tags exists
	tags       map[string]bool     // entries of _manifests/tags
	current    map[string]string   // tag -> its current/link
	indexFiles map[string][]string // tag index entry folder -> the files below it
	layerLinks []string            // files named "link" below _layers
	refFiles   map[string][]string // referrer folder _regctl/referrers/<s>/<r> -> files
	refsOf     map[digest.Digest][]string

	// From prepare.
	frozen    bool // not a valid name: keep everything in it
	allTagged bool // a tag cannot be read: keep every revision
	revs      []revision
	revIndex  map[digest.Digest]int
	forced    map[digest.Digest]bool // corrupt revision links kept by their path
	// resolve maps each digest that is a manifest of this repository (a
	// canonical revision link to an existing blob) to that manifest.
	resolve  map[digest.Digest]*manifestInfo
	tagCount map[digest.Digest]int
	layers   []digest.Digest
	tagList  []string
}

// revision is a manifest Distribution's enumeration yields for a
// repository: a revision link whose canonical link resolves to an
// existing blob.
type revision struct {
	d      digest.Digest
	forced bool // from a corrupt link, kept as if tagged
}

type blobEntry struct {
	size int64
	md5  string // of its data, when the listing tells it
}

// linkRead is a link file's content.
type linkRead struct {
	d       digest.Digest
	err     error // not a valid digest
	missing bool  // gone between listing and reading
}

// scan lists every repository (in parallel, one walk per repository
// part) and every blob (one walk per blobs/<alg>/<xx> folder).
func (c *collector) scan(ctx context.Context) error {
	c.prog.start(PhaseScan, 2)
	if c.lister != nil {
		// Outside the group: prefetches wait for it in group workers.
		c.cacheReady = make(chan struct{})
		go c.loadManifestCache(ctx)
	}
	g := newGroup(ctx, c.workers)
	g.Go(func(ctx context.Context) error {
		defer c.prog.add(1, 0)
		if c.lister != nil {
			return c.scanReposFlat(ctx, g)
		}
		return c.discover(ctx, g, storage.RepositoriesRoot())
	})
	g.Go(func(ctx context.Context) error {
		defer c.prog.add(1, 0)
		return c.scanBlobs(ctx, g)
	})
	return g.Wait()
}

// list is drv.List where a missing folder is empty and a file is no
// folder (the drivers' error for listing a file is not typed).
func (c *collector) list(ctx context.Context, p string) ([]string, error) {
	children, err := c.drv.List(ctx, p)
	if err == nil || errors.Is(err, storage.ErrNotFound) || c.symlink(p, err) {
		return children, nil
	}
	if fi, serr := c.drv.Stat(ctx, p); serr == nil && !fi.IsDir {
		return nil, nil
	} else if errors.Is(serr, storage.ErrNotFound) {
		return nil, nil
	}
	return nil, err
}

// walkFiles is drv.Walk with the same leniency as list, or the
// driver's ListFiles (files only, with their MD5s) when it has one.
func (c *collector) walkFiles(ctx context.Context, p string, fn func(fi storage.FileInfo, md5 string)) error {
	if c.lister != nil {
		var sums [][2]string
		err := c.lister.ListFiles(ctx, p, func(fi storage.FileInfo, md5 string) error {
			if md5 != "" && path.Base(fi.Path) == "link" {
				sums = append(sums, [2]string{fi.Path, md5})
			}
			fn(fi, md5)
			return nil
		})
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		c.mu.Lock()
		for _, s := range sums {
			c.linkMD5[s[0]] = s[1]
		}
		c.mu.Unlock()
		return nil
	}
	err := c.drv.Walk(ctx, p, func(fi storage.FileInfo) error {
		if fi.Symlink {
			c.symlink(fi.Path, storage.ErrSymlink)
			return nil
		}
		fn(fi, "")
		return nil
	})
	if err == nil || errors.Is(err, storage.ErrNotFound) || c.symlink(p, err) {
		return nil
	}
	if fi, serr := c.drv.Stat(ctx, p); serr == nil && !fi.IsDir {
		fn(fi, "")
		return nil
	} else if errors.Is(serr, storage.ErrNotFound) {
		return nil
	}
	return err
}

// discover finds repositories below dir the way Distribution's catalog
// walk does: a folder with a "_manifests" entry is a repository, folders
// whose names start with "_" are never entered, and the others are
// searched for nested repositories.
func (c *collector) discover(ctx context.Context, g *group, dir string) error {
	children, err := c.list(ctx, dir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	isRepo, hasLayers := false, false
	for _, ch := range children {
		switch path.Base(ch) {
		case "_manifests":
			isRepo = true
		case "_layers":
			hasLayers = true
		}
	}
	var r *repo
	if dir != storage.RepositoriesRoot() && (isRepo || hasLayers) {
		r = c.addRepo(strings.TrimPrefix(dir, storage.RepositoriesRoot()+"/"))
		// Layer links but no _manifests: every manifest was deleted
		// through the API. Distribution's catalog does not list it;
		// Run only looks at its layer links (see orphanLinks).
		r.orphan = !isRepo
	}
	c.prog.add(0, len(children))
	for _, ch := range children {
		name := path.Base(ch)
		switch {
		case r != nil && (name == "_manifests" || name == "_layers" || (name == "_regctl" && !r.orphan)):
			g.Go(func(ctx context.Context) error {
				defer c.prog.add(1, 0)
				if c.layout {
					return c.scanRepoLayout(ctx, g, r, ch, name)
				}
				return c.scanRepoPart(ctx, g, r, ch, name)
			})
		case strings.HasPrefix(name, "_"):
			c.prog.add(1, 0) // _uploads is left to upload purging
		default:
			g.Go(func(ctx context.Context) error {
				defer c.prog.add(1, 0)
				return c.discover(ctx, g, ch)
			})
		}
	}
	return nil
}

func (c *collector) addRepo(name string) *repo {
	r := &repo{
		name:       name,
		revDir:     storage.ManifestRevisionsDir(name),
		layerDir:   storage.LayersDir(name),
		revFiles:   map[string][]string{},
		tags:       map[string]bool{},
		current:    map[string]string{},
		indexFiles: map[string][]string{},
		refFiles:   map[string][]string{},
		refsOf:     map[digest.Digest][]string{},
	}
	c.mu.Lock()
	c.repos = append(c.repos, r)
	c.mu.Unlock()
	return r
}

// scanRepoPart walks one of _manifests, _layers and _regctl and files
// what it finds into r. The manifests its revision links name are read
// meanwhile (see prefetch).
func (c *collector) scanRepoPart(ctx context.Context, g *group, r *repo, dir, part string) error {
	var infos []storage.FileInfo
	if err := c.walkFiles(ctx, dir, func(fi storage.FileInfo, _ string) { infos = append(infos, fi) }); err != nil {
		return fmt.Errorf("walking %s: %w", dir, err)
	}
	c.fileRepoPart(g, r, dir, part, infos)
	return nil
}

// fileRepoPart files the files listed below one part of r (dir, named
// part) into r, and prefetches the manifests of its revision links.
func (c *collector) fileRepoPart(g *group, r *repo, dir, part string, infos []storage.FileInfo) {
	if part == "_manifests" {
		var ds []digest.Digest
		for _, fi := range infos {
			if d, ok := revisionPathDigest(r, fi.Path); ok {
				ds = append(ds, d)
			}
		}
		c.prefetch(g, ds)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, fi := range infos {
		rel, ok := strings.CutPrefix(fi.Path, dir+"/")
		if !ok {
			continue
		}
		parts := strings.Split(rel, "/")
		switch part {
		case "_manifests":
			c.fileManifestsEntry(r, dir, rel, parts, fi)
		case "_layers":
			if !fi.IsDir && parts[len(parts)-1] == "link" {
				r.layerLinks = append(r.layerLinks, fi.Path)
			}
		case "_regctl":
			// referrers/<alg>/<hex>/<alg>/<hex>/link
			if fi.IsDir || len(parts) < 5 || parts[0] != "referrers" {
				continue
			}
			unit := path.Join(dir, path.Join(parts[:5]...))
			ref := digest.Digest(parts[3] + ":" + parts[4])
			if ref.Validate() != nil {
				continue
			}
			if _, seen := r.refFiles[unit]; !seen {
				r.refsOf[ref] = append(r.refsOf[ref], unit)
			}
			r.refFiles[unit] = append(r.refFiles[unit], fi.Path)
		}
	}
}

// scanReposFlat finds the repositories as discover does, from one flat
// listing per folder of repositories/ (in parallel) rather than a
// listing per folder level and per repository part: on S3 that is a
// request per 1000 keys instead of four or more per repository. A key's
// repository is the path before its first component starting with "_"
// (Distribution's catalog walk enters no such folder), and that
// component is its part; a repository is one with a _manifests part (an
// orphan: only a _layers part).
func (c *collector) scanReposFlat(ctx context.Context, g *group) error {
	tops, err := c.list(ctx, storage.RepositoriesRoot())
	if err != nil {
		return fmt.Errorf("listing %s: %w", storage.RepositoriesRoot(), err)
	}
	c.prog.add(0, len(tops))
	for _, top := range tops {
		if strings.HasPrefix(path.Base(top), "_") {
			c.prog.add(1, 0)
			continue
		}
		g.Go(func(ctx context.Context) error {
			defer c.prog.add(1, 0)
			var infos []storage.FileInfo
			if err := c.walkFiles(ctx, top, func(fi storage.FileInfo, _ string) {
				if !fi.IsDir {
					infos = append(infos, fi)
				}
			}); err != nil {
				return fmt.Errorf("walking %s: %w", top, err)
			}
			c.fileFlat(g, infos)
			return nil
		})
	}
	return nil
}

// fileFlat files the keys of one flat listing into their repositories.
func (c *collector) fileFlat(g *group, infos []storage.FileInfo) {
	type repoPart struct{ repo, part string }
	parts := map[repoPart][]storage.FileInfo{}
	has := map[string]map[string]bool{} // repository -> parts
	var names []string
	prefix := storage.RepositoriesRoot() + "/"
	for _, fi := range infos {
		comps := strings.Split(strings.TrimPrefix(fi.Path, prefix), "/")
		for i, comp := range comps[:len(comps)-1] { // the last is the file's name
			if !strings.HasPrefix(comp, "_") {
				continue
			}
			if i > 0 && (comp == "_manifests" || comp == "_layers" || comp == "_regctl") {
				name := strings.Join(comps[:i], "/")
				if has[name] == nil {
					has[name] = map[string]bool{}
					names = append(names, name)
				}
				has[name][comp] = true
				parts[repoPart{name, comp}] = append(parts[repoPart{name, comp}], fi)
			}
			break
		}
	}
	for _, name := range names {
		if !has[name]["_manifests"] && !has[name]["_layers"] {
			continue
		}
		r := c.addRepo(name)
		r.orphan = !has[name]["_manifests"]
		for _, part := range []string{"_manifests", "_layers", "_regctl"} {
			if fis, ok := parts[repoPart{name, part}]; ok && !(r.orphan && part == "_regctl") {
				c.fileRepoPart(g, r, storage.RepositoryDir(name)+"/"+part, part, fis)
			}
		}
	}
}

func (c *collector) fileManifestsEntry(r *repo, dir, rel string, parts []string, fi storage.FileInfo) {
	switch parts[0] {
	case "revisions":
		if fi.IsDir {
			return
		}
		if parts[len(parts)-1] == "link" {
			r.revLinks = append(r.revLinks, fi.Path)
		}
		if len(parts) >= 3 {
			unit := path.Join(dir, path.Join(parts[:3]...))
			r.revFiles[unit] = append(r.revFiles[unit], fi.Path)
		}
	case "tags":
		r.tagsDir = true
		if len(parts) < 2 {
			return
		}
		r.tags[parts[1]] = true
		if fi.IsDir {
			return
		}
		if len(parts) == 4 && parts[2] == "current" && parts[3] == "link" {
			r.current[parts[1]] = fi.Path
		}
		if len(parts) >= 5 && parts[2] == "index" {
			unit := path.Join(dir, path.Join(parts[:5]...))
			r.indexFiles[unit] = append(r.indexFiles[unit], fi.Path)
		}
	}
}

// scanBlobs walks blobs/<alg>/<xx> folders in parallel.
func (c *collector) scanBlobs(ctx context.Context, g *group) error {
	algs, err := c.list(ctx, storage.BlobsRoot())
	if err != nil {
		return fmt.Errorf("listing %s: %w", storage.BlobsRoot(), err)
	}
	c.prog.add(0, len(algs))
	for _, alg := range algs {
		g.Go(func(ctx context.Context) error {
			defer c.prog.add(1, 0)
			prefixes, err := c.list(ctx, alg)
			if err != nil {
				return fmt.Errorf("listing %s: %w", alg, err)
			}
			if prefixes == nil {
				c.strayBlobFile(alg)
			}
			c.prog.add(0, len(prefixes))
			for _, p := range prefixes {
				g.Go(func(ctx context.Context) error {
					defer c.prog.add(1, 0)
					if c.layout {
						return c.scanBlobPrefixLayout(ctx, p)
					}
					return c.scanBlobPrefix(ctx, p)
				})
			}
			return nil
		})
	}
	return nil
}

func (c *collector) scanBlobPrefix(ctx context.Context, dir string) error {
	var files []storage.FileInfo
	var sums []string
	err := c.walkFiles(ctx, dir, func(fi storage.FileInfo, md5 string) {
		if !fi.IsDir {
			files = append(files, fi)
			sums = append(sums, md5)
		}
	})
	if err != nil {
		return fmt.Errorf("walking %s: %w", dir, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, fi := range files {
		// blobs/<alg>/<xx>/<hex>/data
		rel := strings.TrimPrefix(fi.Path, storage.BlobsRoot()+"/")
		parts := strings.Split(rel, "/")
		if len(parts) >= 3 {
			unit := path.Join(storage.BlobsRoot(), parts[0], parts[1], parts[2])
			c.blobFiles[unit] = append(c.blobFiles[unit], fi.Path)
		}
		if parts[len(parts)-1] != "data" {
			continue // Distribution looks at data files only
		}
		d := digest.Digest("")
		if len(parts) == 4 {
			d = digest.Digest(parts[0] + ":" + parts[2])
		}
		if d == "" || d.Validate() != nil || parts[1] != parts[2][:2] {
			c.problemLocked(Problem{Kind: ProblemStrayBlobFile, Path: fi.Path,
				Detail: "not at blobs/<alg>/<hex[0:2]>/<hex>/data (Distribution would stop here); left alone"})
			continue
		}
		c.blobs[d] = &blobEntry{size: fi.Size, md5: sums[i]}
	}
	return nil
}

func (c *collector) strayBlobFile(p string) {
	c.problem(Problem{Kind: ProblemStrayBlobFile, Path: p, Detail: "a file where a folder of blobs belongs; left alone"})
}

// readLinks reads every link file marking needs, in parallel.
func (c *collector) readLinks(ctx context.Context) error {
	var paths []string
	add := func(p string, guess digest.Digest) {
		if _, done := c.links[p]; done {
			return
		}
		if sum, ok := c.linkMD5[p]; ok && guess != "" && sum == md5Hex(guess.String()) {
			c.links[p] = linkRead{d: guess} // the listing's MD5 confirms it
			return
		}
		paths = append(paths, p)
	}
	for _, r := range c.repos {
		// A tag's link names one of the repository's manifests,
		// normally: index them by the MD5 of their links.
		bySum := map[string]digest.Digest{}
		for _, p := range r.revLinks {
			d, _ := revisionPathDigest(r, p)
			add(p, d)
			if d != "" && c.opts.RemoveUntagged && len(c.linkMD5) > 0 {
				bySum[md5Hex(d.String())] = d
			}
		}
		for _, p := range r.layerLinks {
			d, _ := layerPathDigest(r, p)
			add(p, d)
		}
		if c.opts.RemoveUntagged {
			for _, p := range r.current {
				add(p, bySum[c.linkMD5[p]])
			}
		}
	}
	reads := make([]linkRead, len(paths))
	c.prog.start(PhaseRead, len(paths))
	err := forEach(ctx, c.workers, len(paths), func(ctx context.Context, i int) error {
		defer c.prog.add(1, 0)
		var err error
		reads[i], err = c.readLink(ctx, paths[i])
		return err
	})
	if err != nil {
		return err
	}
	for i, p := range paths {
		c.links[p] = reads[i]
	}
	return nil
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// readLink reads one link file as Distribution does: its exact bytes
// must be a digest (no trailing newline).
func (c *collector) readLink(ctx context.Context, p string) (linkRead, error) {
	b, err := c.drv.GetContent(ctx, p)
	switch {
	case errors.Is(err, storage.ErrNotFound) || c.symlink(p, err):
		return linkRead{missing: true}, nil
	case err != nil:
		return linkRead{}, fmt.Errorf("reading %s: %w", p, err)
	case len(b) == 0:
		return linkRead{err: errors.New("empty link file")}, nil
	}
	if alg, hex, ok := strings.Cut(string(b), ":"); ok {
		if d, ok := makeDigest(alg, hex); ok {
			return linkRead{d: d}, nil
		}
	}
	_, err = digest.Parse(string(b)) // for its error
	if err == nil {
		err = errors.New("not a digest")
	}
	return linkRead{err: err}, nil
}

// prefetch reads and parses the manifests ds (the digests revision link
// paths name) while the scan goes on, so that on S3 reading manifests
// overlaps listing. They are a guess: readManifests uses what the
// links and the blob listing confirm, and reads whatever the guesses
// missed; a failed read here is left for it to make again and report.
func (c *collector) prefetch(g *group, ds []digest.Digest) {
	c.waitCache()
	for _, d := range ds {
		if _, ok := c.cache[d]; ok {
			continue // most likely still what the cache says: checked in readManifests
		}
		c.mu.Lock()
		seen := c.prefetched[d] != nil
		if !seen {
			c.prefetched[d] = &prefetchRead{}
		}
		c.mu.Unlock()
		if seen {
			continue
		}
		g.Go(func(ctx context.Context) error {
			b, err := c.readSmall(ctx, storage.BlobDataPath(d))
			if err != nil || b == nil {
				return nil
			}
			info := parseManifest(b)
			c.mu.Lock()
			c.prefetched[d].info, c.prefetched[d].size = &info, int64(len(b))
			c.mu.Unlock()
			return nil
		})
	}
}

type prefetchRead struct {
	info *manifestInfo
	size int64
}

// readSmall reads the file at p when it has at most maxManifestSize
// bytes; nil when it has more (a layer's blob: no manifest).
func (c *collector) readSmall(ctx context.Context, p string) ([]byte, error) {
	rc, err := c.drv.Reader(ctx, p, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil || len(b) > maxManifestSize {
		return nil, err
	}
	return b, nil
}

// readManifests reads and parses, once each, the blobs of every
// manifest revision (every one: referrers are found by their subject).
func (c *collector) readManifests(ctx context.Context) error {
	seen := map[digest.Digest]bool{}
	var want []digest.Digest
	add := func(d digest.Digest) {
		if _, ok := c.blobs[d]; ok && !seen[d] {
			seen[d] = true
			want = append(want, d)
		}
	}
	for _, r := range c.repos {
		for _, p := range r.revLinks {
			if lr := c.links[p]; lr.err == nil && !lr.missing {
				add(lr.d)
			} else if d, ok := revisionPathDigest(r, p); ok && lr.err != nil {
				add(d) // a corrupt link is kept by the digest its path names
			}
		}
	}
	infos := make([]*manifestInfo, len(want))
	c.prog.add(0, len(want))
	c.waitCache()
	var fromCache atomic.Int64
	err := forEach(ctx, c.workers, len(want), func(ctx context.Context, i int) error {
		defer c.prog.add(1, 0)
		d := want[i]
		if c.blobs[d].size > maxManifestSize {
			infos[i] = &manifestInfo{err: fmt.Errorf("%d bytes: too large for a manifest", c.blobs[d].size)}
			return nil
		}
		if info, ok := c.cached(d); ok {
			infos[i] = info
			fromCache.Add(1)
			return nil
		}
		if pr := c.prefetched[d]; pr != nil && pr.info != nil && pr.size == c.blobs[d].size {
			infos[i] = pr.info
			return nil
		}
		b, err := c.drv.GetContent(ctx, storage.BlobDataPath(d))
		if errors.Is(err, storage.ErrNotFound) || c.symlink(storage.BlobDataPath(d), err) {
			return nil // gone meanwhile: treated as missing
		}
		if err != nil {
			return fmt.Errorf("reading manifest %s: %w", d, err)
		}
		info := parseManifest(b)
		infos[i] = &info
		return nil
	})
	if err != nil {
		return err
	}
	c.rep.ManifestsFromCache = int(fromCache.Load())
	c.manifests = make(map[digest.Digest]*manifestInfo, len(want))
	for i, d := range want {
		if infos[i] == nil {
			delete(c.blobs, d)
			continue
		}
		c.manifests[d] = infos[i]
	}
	return nil
}

// revisionPathDigest is the digest a canonical revision link path names
// (_manifests/revisions/<alg>/<hex>/link).
func revisionPathDigest(r *repo, p string) (digest.Digest, bool) {
	return linkPathDigest(p, r.revDir)
}

// layerPathDigest is the digest a canonical layer link path names.
func layerPathDigest(r *repo, p string) (digest.Digest, bool) {
	return linkPathDigest(p, r.layerDir)
}

func linkPathDigest(p, dir string) (digest.Digest, bool) {
	rel, ok := strings.CutPrefix(p, dir)
	if !ok || !strings.HasPrefix(rel, "/") {
		return "", false
	}
	alg, rest, _ := strings.Cut(rel[1:], "/")
	hex, rest, _ := strings.Cut(rest, "/")
	if rest != "link" {
		return "", false
	}
	return makeDigest(alg, hex)
}

// makeDigest is alg:hex when that is a valid digest. The common
// algorithms are checked by hand: go-digest's Validate runs a regular
// expression, and this is done for every link of the registry.
func makeDigest(alg, hex string) (digest.Digest, bool) {
	n := 0
	switch alg {
	case "sha256":
		n = 64
	case "sha512":
		n = 128
	default:
		d := digest.Digest(alg + ":" + hex)
		return d, d.Validate() == nil
	}
	if len(hex) != n {
		return "", false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return digest.Digest(alg + ":" + hex), true
}
