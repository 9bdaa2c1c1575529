// Command gcbench builds the registry bench/gc.sh collects garbage in,
// through the registry HTTP API (go-containerregistry), as users fill
// one: -repos repositories, each with -tags tags pushed -pushes times
// (every push but the last leaves an untagged manifest behind), every
// fifth tag a two-platform index, a signature (a manifest with a
// `subject`, pushed by digest) on every third push, and base layers
// shared by all repositories. Repositories are pushed -c at once.
//
//	gcbench -registry 127.0.0.1:5000 [-repos 200 -tags 10 -pushes 4 -c 16]
//
// The defaults give DESIGN.md's registry: about 120,000 files, 1 GB.
// Content is drawn from -seed, so runs are comparable. It prints what
// it pushed as JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type params struct {
	registry            string
	repos, tags, pushes int
	layerKiB, baseKiB   int
	bases               int
	seed                uint64
}

type counts struct {
	images, indexes, signatures, layers atomic.Int64
	bytes                               atomic.Int64
}

func main() {
	var p params
	flag.StringVar(&p.registry, "registry", "127.0.0.1:5000", "registry host:port (plain HTTP, no auth)")
	flag.IntVar(&p.repos, "repos", 200, "repositories")
	flag.IntVar(&p.tags, "tags", 10, "tags per repository")
	flag.IntVar(&p.pushes, "pushes", 4, "pushes per tag (all but the last become untagged)")
	flag.IntVar(&p.layerKiB, "layer-kib", 22, "mean size of an image's own layers, KiB")
	flag.IntVar(&p.baseKiB, "base-kib", 512, "size of a shared base layer, KiB")
	flag.IntVar(&p.bases, "bases", 20, "shared base layers")
	flag.Uint64Var(&p.seed, "seed", 1, "content seed")
	conc := flag.Int("c", 16, "repositories pushed at once")
	flag.Parse()

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2 * *conc
	opts := []remote.Option{remote.WithTransport(tr), remote.WithJobs(2)}

	rng := rand.New(rand.NewPCG(p.seed, 0))
	base := make([]v1.Layer, p.bases)
	for i := range base {
		base[i] = static.NewLayer(randBytes(rng, p.baseKiB<<10), types.OCILayer)
	}

	start := time.Now()
	var c counts
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	sem := make(chan struct{}, *conc)
	for r := range p.repos {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := pushRepo(p, r, base, &c, opts); err != nil {
				errOnce.Do(func() { firstErr = err })
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "gcbench:", firstErr)
		os.Exit(1)
	}
	took := time.Since(start)
	out := map[string]any{
		"registry":     p.registry,
		"repositories": p.repos,
		"tags":         p.repos * p.tags,
		"images":       c.images.Load(),
		"indexes":      c.indexes.Load(),
		"signatures":   c.signatures.Load(),
		"own_layers":   c.layers.Load(),
		"layer_mib":    float64(c.bytes.Load()) / (1 << 20),
		"seconds":      took.Seconds(),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		os.Exit(1)
	}
}

// pushRepo pushes one repository's tags in order, so that each push of
// a tag overwrites the one before.
func pushRepo(p params, r int, base []v1.Layer, c *counts, opts []remote.Option) error {
	rng := rand.New(rand.NewPCG(p.seed, uint64(r)+1))
	repo := fmt.Sprintf("%s/group%d/project%d", p.registry, r%20, r)
	image := func(bases ...v1.Layer) (v1.Image, error) {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		var adds []mutate.Addendum
		for _, b := range bases {
			adds = append(adds, mutate.Addendum{Layer: b})
		}
		for range 2 {
			// Sizes vary from a quarter to twice the mean.
			n := p.layerKiB<<10/4 + rng.IntN(p.layerKiB<<10*7/4+1)
			adds = append(adds, mutate.Addendum{Layer: static.NewLayer(randBytes(rng, n), types.OCILayer)})
			c.layers.Add(1)
			c.bytes.Add(int64(n))
		}
		img, err := mutate.Append(img, adds...)
		if err != nil {
			return nil, err
		}
		// A distinct config for each push.
		return mutate.Config(img, v1.Config{Env: []string{fmt.Sprintf("PUSH=%s-%d", repo, rng.Uint64())}})
	}
	for tag := range p.tags {
		ref, err := name.ParseReference(fmt.Sprintf("%s:v%d", repo, tag), name.Insecure)
		if err != nil {
			return err
		}
		for push := range p.pushes {
			b1, b2 := base[tag%len(base)], base[(tag+7)%len(base)]
			var desc v1.Descriptor
			if tag%5 == 4 {
				idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
				var adds []mutate.IndexAddendum
				for i, arch := range []string{"amd64", "arm64"} {
					img, err := image([]v1.Layer{b1, b2}[i])
					if err != nil {
						return err
					}
					adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
				}
				idx = mutate.AppendManifests(idx, adds...)
				if err := remote.WriteIndex(ref, idx, opts...); err != nil {
					return fmt.Errorf("push %s: %w", ref, err)
				}
				c.indexes.Add(1)
				c.images.Add(2)
				d, err := partial(idx.Digest, idx.Size, idx.MediaType)
				if err != nil {
					return err
				}
				desc = d
			} else {
				img, err := image(b1, b2)
				if err != nil {
					return err
				}
				if err := remote.Write(ref, img, opts...); err != nil {
					return fmt.Errorf("push %s: %w", ref, err)
				}
				c.images.Add(1)
				d, err := partial(img.Digest, img.Size, img.MediaType)
				if err != nil {
					return err
				}
				desc = d
			}
			if (tag*p.pushes+push)%3 == 0 {
				if err := pushSignature(repo, desc, rng, opts); err != nil {
					return err
				}
				c.signatures.Add(1)
			}
		}
	}
	return nil
}

// pushSignature pushes a cosign-style signature of desc by digest: an
// untagged manifest whose subject is desc.
func pushSignature(repo string, desc v1.Descriptor, rng *rand.Rand, opts []remote.Option) error {
	sig := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	sig = mutate.ConfigMediaType(sig, "application/vnd.dev.cosign.artifact.sig.v1+json")
	sig, err := mutate.Append(sig, mutate.Addendum{Layer: static.NewLayer(randBytes(rng, 256), "application/vnd.dev.cosign.simplesigning.v1+json")})
	if err != nil {
		return err
	}
	sig = mutate.Subject(sig, desc).(v1.Image)
	d, err := sig.Digest()
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(repo+"@"+d.String(), name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, sig, opts...); err != nil {
		return fmt.Errorf("push signature %s: %w", ref, err)
	}
	return nil
}

// partial is a manifest's descriptor.
func partial(digest func() (v1.Hash, error), size func() (int64, error), mt func() (types.MediaType, error)) (v1.Descriptor, error) {
	d, err := digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	n, err := size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	m, err := mt()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{Digest: d, Size: n, MediaType: m}, nil
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}
