package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

// TailOptions tune Tail.
type TailOptions struct {
	// Lines is how many of the last lines to show first.
	Lines int
	// Follow keeps reading as the log grows, like tail -F.
	Follow bool
	// Poll is how often a followed log is checked; 250ms when 0.
	Poll time.Duration
}

// Tail writes the last lines of the log at path to w and, with Follow,
// what is appended later until ctx ends (which is no error). Like
// tail -F it waits for a log that does not exist yet, and starts over
// when the file is truncated (logrotate's copytruncate) or replaced.
func Tail(ctx context.Context, path string, w io.Writer, opts TailOptions) error {
	poll := opts.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var offset int64
	var seen []byte // the last bytes read, to notice a truncation
	first := true
	for {
		if f == nil {
			var err error
			f, err = os.Open(path)
			switch {
			case errors.Is(err, fs.ErrNotExist) && opts.Follow:
				f = nil
			case err != nil:
				return err
			case first:
				// Show the end of what is there, then follow from it.
				var last []byte
				if last, offset, err = lastLines(f, opts.Lines); err != nil {
					return err
				}
				if _, err := w.Write(last); err != nil {
					return err
				}
			default:
				offset = 0 // a new file: all of it is new
			}
			first = false
		}
		if f != nil {
			if truncated(f, offset, seen) {
				offset = 0
			}
			n, err := copyFrom(f, offset, w)
			offset += n
			if err != nil {
				return err
			}
			seen = tailBytes(f, offset)
			if !opts.Follow {
				return nil
			}
			if replaced(f, path) {
				f.Close()
				f, seen = nil, nil
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// copyFrom copies what f holds past offset.
func copyFrom(f *os.File, offset int64, w io.Writer) (int64, error) {
	return io.Copy(w, io.NewSectionReader(f, offset, 1<<62))
}

// replaced tells whether path is no longer f's file (it was rotated
// away and a new one was created), so reading goes on in the new one.
func replaced(f *os.File, path string) bool {
	cur, err := f.Stat()
	if err != nil {
		return true
	}
	now, err := os.Stat(path)
	if err != nil {
		return false // gone for now: keep the old one until a new one appears
	}
	return !os.SameFile(cur, now)
}

// tailBytes is up to 64 bytes of f before offset.
func tailBytes(f *os.File, offset int64) []byte {
	k := min(offset, 64)
	b := make([]byte, k)
	if n, _ := f.ReadAt(b, offset-k); int64(n) != k {
		return nil
	}
	return b
}

// truncated tells whether f was truncated since offset was reached (as
// logrotate's copytruncate does): it is shorter than that now, or, when
// it has already grown past it again, the bytes before offset are no
// longer the ones read there.
func truncated(f *os.File, offset int64, seen []byte) bool {
	fi, err := f.Stat()
	if err != nil || offset == 0 {
		return false
	}
	if fi.Size() < offset {
		return true
	}
	return seen != nil && !bytes.Equal(tailBytes(f, offset), seen)
}

// lastLines returns the last n lines of f and f's size, reading
// backwards in blocks so a large log costs only its end.
func lastLines(f *os.File, n int) ([]byte, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := fi.Size()
	if n <= 0 {
		return nil, size, nil
	}
	const block = 8 << 10
	var buf []byte
	pos := size
	for pos > 0 {
		k := min(int64(block), pos)
		pos -= k
		chunk := make([]byte, k)
		if _, err := f.ReadAt(chunk, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, err
		}
		buf = append(chunk, buf...)
		// One more newline than lines wanted: the one ending the line
		// before them. A final newline ends the last line, not a new one.
		if bytes.Count(bytes.TrimSuffix(buf, []byte("\n")), []byte("\n")) >= n {
			break
		}
	}
	body := bytes.TrimSuffix(buf, []byte("\n"))
	for i := len(body) - 1; i >= 0; i-- {
		if body[i] == '\n' {
			n--
			if n == 0 {
				return buf[i+1:], size, nil
			}
		}
	}
	return buf, size, nil
}

// tailFrom is the last n lines of path written after offset: what one
// run of the daemon logged, for an error message.
func tailFrom(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	last, _, err := lastLines(f, n)
	if err != nil {
		return ""
	}
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if since := fi.Size() - offset; since < int64(len(last)) {
		if since < 0 {
			since = 0
		}
		last = last[int64(len(last))-since:]
	}
	return string(last)
}
