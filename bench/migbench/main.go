// Command migbench supports bench/migrate.sh:
//
//	migbench gen -root DIR -repos N [-tags 10 -pushes 4 -layers 5 -mib-per-repo 5 -big 0]
//	migbench put -root DIR -endpoint URL -bucket B -prefix P [-c 64]
//
// gen writes a registry storage root in CNCF Distribution's layout
// directly (no registry needed): per repository, tags × pushes images of
// a config, layers and an OCI manifest, with every link Distribution
// keeps (layers, revisions, tag index, current). The DESIGN.md registry
// (119,604 files, 979 MB) is -repos 200 with the defaults. Sizes are
// drawn log-uniformly, from a fixed seed, so runs are comparable.
//
// put is the ceiling a copy tool is measured against: every file PUT
// once with -c requests at once, no listing, no comparison.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: migbench gen|put ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "put":
		err = put(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "migbench:", err)
		os.Exit(1)
	}
}

type generator struct {
	root  string
	rng   *rand.Rand
	files int
	bytes int64
}

func (g *generator) write(rel string, b []byte) error {
	p := filepath.Join(g.root, "docker/registry/v2", rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	g.files++
	g.bytes += int64(len(b))
	return os.WriteFile(p, b, 0o644)
}

// blob stores content as a blob and returns its digest.
func (g *generator) blob(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	p := filepath.Join(g.root, "docker/registry/v2/blobs/sha256", h[:2], h, "data")
	if _, err := os.Stat(p); err == nil {
		return "sha256:" + h, nil
	}
	return "sha256:" + h, g.write("blobs/sha256/"+h[:2]+"/"+h+"/data", b)
}

func (g *generator) link(rel, dg string) error { return g.write(rel, []byte(dg)) }

func (g *generator) random(n int) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := g.rng.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// size draws a layer size log-uniformly so that the mean is about mean.
func (g *generator) size(mean float64) int {
	// log-uniform on [lo, hi] with hi = 40*lo has mean (hi-lo)/ln(40).
	lo := mean * math.Log(40) / 39
	return int(lo * math.Exp(g.rng.Float64()*math.Log(40)))
}

func gen(args []string) error {
	fl := flag.NewFlagSet("gen", flag.ExitOnError)
	root := fl.String("root", "", "storage root to write")
	repos := fl.Int("repos", 40, "repositories")
	tags := fl.Int("tags", 10, "tags per repository")
	pushes := fl.Int("pushes", 4, "pushes per tag (each a new image)")
	layers := fl.Int("layers", 5, "new layers per image")
	mib := fl.Float64("mib-per-repo", 4.6, "MiB of layers per repository")
	big := fl.Int("big", 0, "blobs of 12 MiB added (multipart copies)")
	fl.Parse(args)
	if *root == "" {
		return fmt.Errorf("gen: -root is required")
	}
	g := &generator{root: *root, rng: rand.New(rand.NewPCG(1, 2))}
	mean := *mib * (1 << 20) / float64(*tags**pushes**layers)
	start := time.Now()
	for r := range *repos {
		repo := fmt.Sprintf("group-%d/project-%d", r%20, r)
		for t := range *tags {
			tag := fmt.Sprintf("v%d", t)
			var last string
			for p := range *pushes {
				var descs []map[string]any
				for range *layers {
					dg, err := g.blob(g.random(g.size(mean)))
					if err != nil {
						return err
					}
					descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg})
				}
				if t == 0 && p == 0 && r < *big {
					dg, err := g.blob(g.random(12 << 20))
					if err != nil {
						return err
					}
					descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg})
				}
				cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "created": time.Unix(int64(1700000000+r*1000+t*10+p), 0).UTC()})
				cdg, err := g.blob(cfg)
				if err != nil {
					return err
				}
				man, _ := json.Marshal(map[string]any{
					"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
					"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdg, "size": len(cfg)},
					"layers": descs,
				})
				mdg, err := g.blob(man)
				if err != nil {
					return err
				}
				base := "repositories/" + repo
				for _, d := range append(descs, map[string]any{"digest": cdg}) {
					dg := d["digest"].(string)
					if err := g.link(base+"/_layers/sha256/"+dg[7:]+"/link", dg); err != nil {
						return err
					}
				}
				if err := g.link(base+"/_manifests/revisions/sha256/"+mdg[7:]+"/link", mdg); err != nil {
					return err
				}
				if err := g.link(base+"/_manifests/tags/"+tag+"/index/sha256/"+mdg[7:]+"/link", mdg); err != nil {
					return err
				}
				last = mdg
			}
			if err := g.link("repositories/"+repo+"/_manifests/tags/"+tag+"/current/link", last); err != nil {
				return err
			}
		}
	}
	fmt.Printf("{\"files\": %d, \"bytes\": %d, \"seconds\": %.1f}\n", g.files, g.bytes, time.Since(start).Seconds())
	return nil
}

func put(args []string) error {
	fl := flag.NewFlagSet("put", flag.ExitOnError)
	root := fl.String("root", "", "storage root to upload")
	endpoint := fl.String("endpoint", "", "S3 endpoint URL")
	bucket := fl.String("bucket", "", "bucket")
	prefix := fl.String("prefix", "", "rootdirectory")
	conc := fl.Int("c", 64, "requests at once")
	fl.Parse(args)
	ctx := context.Background()
	c, err := bareClient(ctx, *endpoint)
	if err != nil {
		return err
	}
	keyPrefix := strings.Trim(*prefix, "/")
	if keyPrefix != "" {
		keyPrefix += "/"
	}
	paths := make(chan string, 1024)
	var n, bytes atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Go(func() {
			for p := range paths {
				f, err := os.Open(filepath.Join(*root, p))
				if err != nil {
					failed.Add(1)
					continue
				}
				st, _ := f.Stat()
				in := &s3.PutObjectInput{
					Bucket: bucket, Key: aws.String(keyPrefix + p), Body: f, ContentLength: aws.Int64(st.Size()),
					ContentType: aws.String("application/octet-stream"), StorageClass: types.StorageClassStandard,
				}
				if _, err := c.PutObject(ctx, in); err != nil {
					failed.Add(1)
				} else {
					n.Add(1)
					bytes.Add(st.Size())
				}
				f.Close()
			}
		})
	}
	err = filepath.WalkDir(*root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(*root, p)
		paths <- filepath.ToSlash(rel)
		return nil
	})
	close(paths)
	wg.Wait()
	if err != nil {
		return err
	}
	fmt.Printf("{\"objects\": %d, \"bytes\": %d, \"failed\": %d, \"seconds\": %.2f}\n", n.Load(), bytes.Load(), failed.Load(), time.Since(start).Seconds())
	return nil
}

// bareClient is an SDK client set up as regctl's S3 driver sets up its
// own (256 idle connections, standard retries without a retry quota,
// checksums only where required, path style), with the credentials from
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: plain signed PUTs through
// it are the ceiling, with nothing of regctl's on top.
func bareClient(ctx context.Context, endpoint string) (*s3.Client, error) {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	})
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 5
				o.RateLimiter = ratelimit.None
			})
		}),
	)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
	}), nil
}
