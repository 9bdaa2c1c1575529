// Command regbench measures a registry: push and pull of one image of a
// given size, and manifest GETs per second at a given concurrency. It is
// run by bench/serve.sh against regctl serve and CNCF Distribution side
// by side; compare the ratios, not the absolute figures.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
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

func main() {
	registry := flag.String("registry", "127.0.0.1:5000", "registry host:port (plain HTTP)")
	sizeMiB := flag.Int("size", 256, "image size in MiB, split over -layers layers")
	layers := flag.Int("layers", 4, "number of layers")
	concurrency := flag.Int("c", 32, "concurrent manifest GETs")
	duration := flag.Duration("d", 10*time.Second, "how long to run manifest GETs")
	repo := flag.String("repo", "bench/image", "repository to use")
	flag.Parse()

	img, err := makeImage(*sizeMiB, *layers)
	check(err)
	ref, err := name.ParseReference(*registry+"/"+*repo+":bench", name.Insecure)
	check(err)

	start := time.Now()
	check(remote.Write(ref, img))
	push := time.Since(start)

	start = time.Now()
	pulled, err := remote.Image(ref)
	check(err)
	ls, err := pulled.Layers()
	check(err)
	var pulledBytes int64
	for _, l := range ls {
		rc, err := l.Compressed()
		check(err)
		n, err := io.Copy(io.Discard, rc)
		check(err)
		rc.Close()
		pulledBytes += n
	}
	pull := time.Since(start)

	gets, errs := manifestGets("http://"+*registry+"/v2/"+*repo+"/manifests/bench", *concurrency, *duration)

	mib := float64(*sizeMiB)
	out := map[string]any{
		"registry":             *registry,
		"push_seconds":         push.Seconds(),
		"push_mib_per_s":       mib / push.Seconds(),
		"pull_seconds":         pull.Seconds(),
		"pull_mib_per_s":       float64(pulledBytes) / (1 << 20) / pull.Seconds(),
		"manifest_gets_per_s":  float64(gets) / duration.Seconds(),
		"manifest_get_errors":  errs,
		"manifest_concurrency": *concurrency,
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	check(enc.Encode(out))
}

// makeImage builds an image of random (incompressible) layers.
func makeImage(sizeMiB, layers int) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	per := sizeMiB << 20 / layers
	for i := 0; i < layers; i++ {
		b := make([]byte, per)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(b, types.OCILayer)})
		if err != nil {
			return nil, err
		}
	}
	return img, nil
}

// manifestGets runs GETs of one manifest from c workers for d and
// returns how many succeeded and how many failed.
func manifestGets(url string, c int, d time.Duration) (ok, failed int64) {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	var nOK, nFail atomic.Int64
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				req.Header.Set("Accept", string(types.OCIManifestSchema1))
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						nFail.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					nOK.Add(1)
				} else {
					nFail.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return nOK.Load(), nFail.Load()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "regbench:", err)
		os.Exit(1)
	}
}
