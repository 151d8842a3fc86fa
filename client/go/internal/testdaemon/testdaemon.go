// Package testdaemon starts a walrusd for the client packages' tests: the
// binary named by $WALRUSD, on a Unix socket in the test's temporary
// directory, stopped when the test ends.
package testdaemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Daemon is a running walrusd.
type Daemon struct {
	Dir    string
	Target string
	cmd    *exec.Cmd
}

// Start starts walrusd with extra flags. Without $WALRUSD the test is
// skipped (ctest always sets it).
func Start(t *testing.T, flags ...string) *Daemon {
	t.Helper()
	bin := os.Getenv("WALRUSD")
	if bin == "" {
		t.Skip("WALRUSD is not set")
	}
	dir := t.TempDir()
	d := &Daemon{Dir: dir, Target: "unix:" + filepath.Join(dir, "walrusd.sock")}
	d.start(t, bin, flags)
	return d
}

func (d *Daemon) start(t *testing.T, bin string, flags []string) {
	args := append([]string{"--data-dir", d.Dir, "--listen", d.Target, "--metrics-listen", ""}, flags...)
	d.cmd = exec.Command(bin, args...)
	if log, err := os.OpenFile(filepath.Join(d.Dir, "walrusd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		d.cmd.Stderr = log
		defer log.Close() // the child holds its own descriptor
	}
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start walrusd: %v", err)
	}
	cmd := d.cmd
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// Restart kills walrusd with SIGKILL and starts it again on the same
// directory; clients retry until it answers.
func (d *Daemon) Restart(t *testing.T, flags ...string) {
	t.Helper()
	d.cmd.Process.Kill()
	d.cmd.Wait()
	os.Remove(filepath.Join(d.Dir, "walrusd.sock"))
	d.start(t, os.Getenv("WALRUSD"), flags)
}
