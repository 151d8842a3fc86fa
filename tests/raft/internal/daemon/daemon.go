// Package daemon runs walrusd processes for the Raft cluster tests: start on
// a Unix socket in a directory of the test's own, kill -9, restart, stop.
package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Walrusd is one walrusd process (or none, while it is killed) serving Dir.
type Walrusd struct {
	Binary string
	Dir    string   // data directory; the WAL is Dir/wal
	Args   []string // extra flags (segment size, retention)

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// Socket is the Unix socket walrusd listens on.
func (w *Walrusd) Socket() string { return filepath.Join(w.Dir, "walrusd.sock") }

// Target is the gRPC target of Socket.
func (w *Walrusd) Target() string { return "unix:" + w.Socket() }

// WALDir is the directory of segment files.
func (w *Walrusd) WALDir() string { return filepath.Join(w.Dir, "wal") }

// Start starts walrusd unless it runs. It does not wait for the socket:
// clients retry Unavailable until the daemon answers.
func (w *Walrusd) Start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil {
		return nil
	}
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		return err
	}
	os.Remove(w.Socket()) // a socket left by a killed process refuses to bind
	w.starts++
	logf, err := os.OpenFile(filepath.Join(w.Dir, "walrusd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "--- start %d\n", w.starts)
	args := append([]string{"--data-dir", w.Dir, "--listen", w.Target(), "--metrics-listen", ""}, w.Args...)
	cmd := exec.Command(w.Binary, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	w.cmd, w.exited = cmd, exited
	return nil
}

// Running reports whether the process is up (started and not exited).
func (w *Walrusd) Running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil {
		return false
	}
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// Reap forgets a process that exited by itself (so Start starts a new one)
// and reports whether there was one.
func (w *Walrusd) Reap() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd == nil {
		return false
	}
	select {
	case <-w.exited:
		w.cmd = nil
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (w *Walrusd) Kill() { w.signal(syscall.SIGKILL, 0) }

// Stop sends SIGTERM, waits up to 30 s, then SIGKILL.
func (w *Walrusd) Stop() { w.signal(syscall.SIGTERM, 30*time.Second) }

func (w *Walrusd) signal(sig syscall.Signal, grace time.Duration) {
	w.mu.Lock()
	cmd, exited := w.cmd, w.exited
	w.cmd = nil
	w.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-exited:
			return
		case <-time.After(grace):
			cmd.Process.Kill()
		}
	}
	<-exited
}

// LogTail is the last n bytes of walrusd's log, for failure messages.
func (w *Walrusd) LogTail(n int64) string {
	f, err := os.Open(filepath.Join(w.Dir, "walrusd.log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - n
	if off < 0 {
		off = 0
	}
	b := make([]byte, st.Size()-off)
	f.ReadAt(b, off)
	return string(b)
}

// ExitReason is the last line of walrusd's log that says why it stopped
// (a "critical" or "cannot start" line), or "" if there is none.
func (w *Walrusd) ExitReason() string {
	tail := w.LogTail(8192)
	lines := strings.Split(tail, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		// From the level on, without the timestamp, so one reason
		// repeated by restarts reads as one.
		for _, mark := range []string{"critical", "cannot start"} {
			if j := strings.Index(lines[i], mark); j >= 0 {
				return strings.TrimSpace(lines[i][j:])
			}
		}
	}
	return ""
}

// ClusterArgs are the walrusd flags of the cluster tests: small segments so
// cuts happen often, and released segments purged at once.
func ClusterArgs(segmentBytes int) []string {
	return []string{"--segment-size-bytes", fmt.Sprint(segmentBytes), "--retain-released-segments", "0"}
}
