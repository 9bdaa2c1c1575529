package storage_test

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"regctl/pkg/storage"
)

// The S3 client's own CPU per request, for a running gateway's bucket
// that holds a registry: REGCTL_S3_BENCH="endpoint access secret bucket".
// The gateway shares the machine, so the figure to compare is cpu-µs/op
// (this process's user+system time), not the wall time.
//
//	REGCTL_S3_BENCH="http://127.0.0.1:35333 benchroot benchsecret123456 gc-a" \
//	  go test -run '^$' -bench S3 -benchtime 20x ./pkg/storage

func benchS3(b *testing.B) *storage.S3 {
	f := strings.Fields(os.Getenv("REGCTL_S3_BENCH"))
	if len(f) != 4 {
		b.Skip(`REGCTL_S3_BENCH="endpoint access secret bucket" not set`)
	}
	d, err := storage.NewS3(b.Context(), map[string]any{
		"regionendpoint": f[0], "accesskey": f[1], "secretkey": f[2], "bucket": f[3],
		"region": "us-east-1", "pathstyle": true,
	})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds this process's CPU time per op (and per unit, when
// units is not "") since start.
func reportCPU(b *testing.B, start time.Duration, perOp float64, unit string) {
	cpu := float64(cpuTime()-start) / float64(time.Microsecond)
	b.ReportMetric(cpu/float64(b.N), "cpu-µs/op")
	if unit != "" && perOp > 0 {
		b.ReportMetric(cpu/float64(b.N)/perOp, "cpu-µs/"+unit)
	}
}

// BenchmarkS3ListFiles lists the whole registry, 1000 keys a page.
func BenchmarkS3ListFiles(b *testing.B) {
	d := benchS3(b)
	keys := 0
	start := cpuTime()
	for b.Loop() {
		keys = 0
		if err := d.ListFiles(b.Context(), "/docker/registry/v2", func(storage.FileInfo, string) error {
			keys++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start, float64(keys+999)/1000, "page")
	b.ReportMetric(float64(keys), "keys")
}

// BenchmarkS3GetContent reads small objects (link files) one by one, as
// garbage collection's mark phase does.
func BenchmarkS3GetContent(b *testing.B) {
	d := benchS3(b)
	var links []string
	enough := errors.New("enough")
	err := d.ListFiles(b.Context(), "/docker/registry/v2/repositories", func(fi storage.FileInfo, _ string) error {
		if strings.HasSuffix(fi.Path, "/link") {
			links = append(links, fi.Path)
		}
		if len(links) == 500 {
			return enough
		}
		return nil
	})
	if err != enough {
		b.Fatal("too few link files to read", err)
	}
	i := 0
	start := cpuTime()
	for b.Loop() {
		if _, err := d.GetContent(b.Context(), links[i%len(links)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportCPU(b, start, 0, "")
}
