// Command regbench measures a registry: push and pull of one image of a
// given size, and manifest GETs per second at a given concurrency. It is
// run by bench/serve.sh against regctl serve and CNCF Distribution side
// by side; compare the ratios, not the absolute figures.
//
// Push and pull run -rounds times, each round with a new random image,
// and the median round is reported. With -pid, the server's own CPU time
// (from /proc) is reported per operation too: on a small machine where
// the load generator shares the cores with the server, CPU per operation
// is the figure least distorted by the client.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	rounds := flag.Int("rounds", 3, "push+pull rounds, each with a new image; the median is reported")
	concurrency := flag.Int("c", 32, "concurrent manifest GETs")
	duration := flag.Duration("d", 10*time.Second, "how long to run manifest GETs")
	client := flag.String("client", "raw", `manifest GET client: "raw" (keep-alive HTTP/1.1 on bare connections, cheap, so the server gets the CPU) or "nethttp" (net/http.Client)`)
	pid := flag.Int("pid", 0, "the server's process id, to report its CPU time per operation (Linux /proc)")
	repo := flag.String("repo", "bench/image", "repository to use")
	parallel := flag.Int("pulls", 4, "clients pulling the image at once in the parallel pull phase (0: skip)")
	flag.Parse()
	if *client != "raw" && *client != "nethttp" {
		check(fmt.Errorf("-client %q: want raw or nethttp", *client))
	}

	ref, err := name.ParseReference(*registry+"/"+*repo+":bench", name.Insecure)
	check(err)
	cpu := func() time.Duration { return serverCPU(*pid) }

	mib := float64(*sizeMiB)
	var pushes, pulls, pushCPU, pullCPU, ppulls []float64
	for range *rounds {
		img, err := makeImage(*sizeMiB, *layers)
		check(err)

		c0, start := cpu(), time.Now()
		check(remote.Write(ref, img))
		pushes = append(pushes, mib/time.Since(start).Seconds())
		pushCPU = append(pushCPU, (cpu() - c0).Seconds())

		c0, start = cpu(), time.Now()
		n, err := pull(ref)
		check(err)
		pulls = append(pulls, float64(n)/(1<<20)/time.Since(start).Seconds())
		pullCPU = append(pullCPU, (cpu() - c0).Seconds())

		// Several clients at once: where a server's CPU per byte, not a
		// single stream, decides throughput.
		if *parallel > 0 {
			start = time.Now()
			n, err := pullParallel(ref, *parallel)
			check(err)
			ppulls = append(ppulls, float64(n)/(1<<20)/time.Since(start).Seconds())
		}
	}

	url := "http://" + *registry + "/v2/" + *repo + "/manifests/bench"
	get := manifestGetsNetHTTP
	if *client == "raw" {
		get = manifestGetsRaw
	}
	c0, u0 := cpu(), selfCPU()
	gets, errs := get(*registry, url, *concurrency, *duration)
	mCPU, clientCPU := cpu()-c0, selfCPU()-u0

	out := map[string]any{
		"registry":                    *registry,
		"rounds":                      *rounds,
		"push_mib_per_s":              median(pushes),
		"push_mib_per_s_all":          pushes,
		"pull_mib_per_s":              median(pulls),
		"pull_mib_per_s_all":          pulls,
		"parallel_pulls":              *parallel,
		"parallel_pull_mib_per_s":     median(ppulls),
		"parallel_pull_mib_per_s_all": ppulls,
		"manifest_gets_per_s":         float64(gets) / duration.Seconds(),
		"manifest_get_errors":         errs,
		"manifest_concurrency":        *concurrency,
		"manifest_client":             *client,
		// How much of the machine the load generator itself took while
		// it ran manifest GETs (1.0 = one core).
		"client_cores_during_gets": clientCPU.Seconds() / duration.Seconds(),
	}
	if *pid != 0 {
		out["server_cpu_s_per_gib_push"] = median(pushCPU) / (mib / 1024)
		out["server_cpu_s_per_gib_pull"] = median(pullCPU) / (mib / 1024)
		if gets > 0 {
			out["server_cpu_us_per_manifest_get"] = float64(mCPU.Microseconds()) / float64(gets)
		}
		out["server_cores_during_gets"] = mCPU.Seconds() / duration.Seconds()
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	check(enc.Encode(out))
}

// makeImage builds an image of random (incompressible) layers. Digests
// are computed here, so that the push timing holds no client hashing.
func makeImage(sizeMiB, layers int) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	per := sizeMiB << 20 / layers
	for range layers {
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
	if _, err := img.Digest(); err != nil {
		return nil, err
	}
	return img, nil
}

// pull fetches an image and all its layers as a client does (digests
// verified) and returns the layer bytes read.
func pull(ref name.Reference) (int64, error) {
	img, err := remote.Image(ref)
	if err != nil {
		return 0, err
	}
	ls, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// pullParallel runs n pulls of ref at once and returns the bytes read.
func pullParallel(ref name.Reference, n int) (int64, error) {
	var wg sync.WaitGroup
	var total atomic.Int64
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := pull(ref)
			if err != nil {
				errs <- err
				return
			}
			total.Add(got)
		}()
	}
	wg.Wait()
	close(errs)
	return total.Load(), <-errs
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// serverCPU is the user+system CPU time of process pid, from
// /proc/<pid>/stat, or 0 when pid is 0.
func serverCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	check(err)
	// The command name (field 2) may hold spaces: count from its ")".
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	check(errors.Join(err1, err2))
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const acceptManifest = string(types.OCIManifestSchema1)

// manifestGetsNetHTTP runs GETs of one manifest from c workers for d
// with net/http and returns how many succeeded and how many failed.
func manifestGetsNetHTTP(_, url string, c int, d time.Duration) (ok, failed int64) {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	var nOK, nFail atomic.Int64
	for range c {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				req.Header.Set("Accept", acceptManifest)
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
		})
	}
	wg.Wait()
	return nOK.Load(), nFail.Load()
}

// manifestGetsRaw is manifestGetsNetHTTP on c bare keep-alive
// connections: one prepared request written per round trip, and a
// minimal response parser (status line, Content-Length, body). It costs
// the client a fraction of net/http's CPU, which matters when client and
// server share two cores: every cycle the client spends is one the server
// cannot, and it flattens the ratio between two servers.
func manifestGetsRaw(host, url string, c int, d time.Duration) (ok, failed int64) {
	path := strings.TrimPrefix(url, "http://"+host)
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: " + acceptManifest +
		"\r\nUser-Agent: regbench\r\n\r\n")
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var nOK, nFail atomic.Int64
	for range c {
		wg.Go(func() {
			var conn net.Conn
			var br *bufio.Reader
			for time.Now().Before(deadline) {
				if conn == nil {
					var err error
					if conn, err = net.DialTimeout("tcp", host, 10*time.Second); err != nil {
						nFail.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					br = bufio.NewReaderSize(conn, 16<<10)
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				status, keep, err := roundTrip(conn, br, req)
				if err != nil {
					nFail.Add(1)
					conn.Close()
					conn = nil
					continue
				}
				if status == http.StatusOK {
					nOK.Add(1)
				} else {
					nFail.Add(1)
				}
				if !keep {
					conn.Close()
					conn = nil
				}
			}
			if conn != nil {
				conn.Close()
			}
		})
	}
	wg.Wait()
	return nOK.Load(), nFail.Load()
}

// roundTrip writes req and reads one response, which must carry a
// Content-Length (chunked responses are an error). It reports the status
// and whether the connection may be reused.
func roundTrip(conn net.Conn, br *bufio.Reader, req []byte) (status int, keep bool, err error) {
	if _, err := conn.Write(req); err != nil {
		return 0, false, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || string(line[:5]) != "HTTP/" {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length, keep := int64(-1), true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(line) <= 2 { // "\r\n": end of headers
			break
		}
		k, v, ok := strings.Cut(string(line), ":")
		if !ok {
			return 0, false, fmt.Errorf("bad header line %q", line)
		}
		v = strings.TrimSpace(v)
		switch {
		case strings.EqualFold(k, "Content-Length"):
			if length, err = strconv.ParseInt(v, 10, 64); err != nil {
				return 0, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case strings.EqualFold(k, "Transfer-Encoding"):
			return 0, false, fmt.Errorf("unsupported Transfer-Encoding %q", v)
		case strings.EqualFold(k, "Connection"):
			keep = !strings.EqualFold(v, "close")
		}
	}
	if length < 0 {
		return 0, false, errors.New("response without Content-Length")
	}
	if _, err := br.Discard(int(length)); err != nil {
		return 0, false, err
	}
	return status, keep, nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "regbench:", err)
		os.Exit(1)
	}
}
