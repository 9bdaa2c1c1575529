package pidfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestPathIsBesideTheConfig(t *testing.T) {
	if got, want := Path("/etc/regctl/config.yml"), "/etc/regctl/config.yml.pid"; got != want {
		t.Errorf("Path = %s, want %s", got, want)
	}
}

// A test binary is no regctl serve: its pid file is read, but not live,
// and names the program instead.
func TestInspect(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yml.pid")
	if info, err := Inspect(path); err != nil || info.PID != 0 || info.Stale() {
		t.Errorf("missing file: %+v, %v", info, err)
	}
	if err := os.WriteFile(path, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Inspect(path); !errors.Is(err, ErrNoPID) {
		t.Errorf("garbled file: %v, want ErrNoPID", err)
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(path)
	if err != nil || info.PID != os.Getpid() || info.Live || !info.Stale() || info.Program == "" {
		t.Errorf("pid of a test binary: %+v, %v; want stale, naming the program", info, err)
	}

	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	if !Exited(done.Process.Pid) {
		t.Errorf("Exited(%d) = false for a process that has been reaped", done.Process.Pid)
	}
	if Exited(os.Getpid()) {
		t.Error("Exited(self) = true")
	}
}

// Write records this process and refuses nothing here, since no regctl
// serve runs on the config; remove deletes only its own record.
func TestWriteAndRemove(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yml")
	remove, err := Write(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if pid, err := readPID(Path(cfg)); err != nil || pid != os.Getpid() {
		t.Fatalf("pid file says %d, %v", pid, err)
	}
	remove()
	if _, err := os.Stat(Path(cfg)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left: %v", err)
	}
	if err := os.WriteFile(Path(cfg), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	remove()
	if _, err := os.Stat(Path(cfg)); err != nil {
		t.Errorf("remove deleted another process's record: %v", err)
	}
}
