package walrus_test

import (
	"context"
	"io"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"walrus/client/go/internal/testdaemon"
	"walrus/client/go/walrus"
	pb "walrus/proto/walruspb"
)

// A walrusd with a local socket and a created WAL; the socket's path.
func startLocal(t *testing.T, flags ...string) (*testdaemon.Daemon, *walrus.Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "append.sock")
	d := testdaemon.Start(t, append([]string{"--local-socket", path}, flags...)...)
	c := dial(t, d)
	if _, err := c.Create(context.Background(), []byte("meta")); err != nil {
		t.Fatal(err)
	}
	return d, c, path
}

// waitForSocket waits until walrusd, just started, has bound path.
func waitForSocket(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("walrusd did not bind %s within 10 s", path)
}

func dialLocal(t *testing.T, path string, opts walrus.LocalOptions) *walrus.LocalAppender {
	t.Helper()
	a, err := walrus.DialLocal(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func TestLocalAppender_PipelinedAppends_AckedInOrder_AndReadBack(t *testing.T) {
	_, c, path := startLocal(t)
	a := dialLocal(t, path, walrus.LocalOptions{})
	const n = 2000
	done := make(chan error, 1)
	go func() {
		for i := uint64(1); i <= n; i++ {
			if _, err := a.Send(&pb.AppendRequest{Entries: entries(i, i, 1)}); err != nil {
				done <- err
				return
			}
		}
		done <- a.CloseSend()
	}()
	for i := uint64(1); i <= n; i++ {
		ack, err := a.Recv()
		if err != nil {
			t.Fatalf("Recv %d: %v", i, err)
		}
		if ack.Sequence != i || ack.LastIndex != i {
			t.Fatalf("ack %d = %+v", i, ack)
		}
	}
	if _, err := a.Recv(); err != io.EOF {
		t.Fatalf("after the last ack: %v, want io.EOF", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r, err := c.ReadAll(context.Background(), 0, 0)
	if err != nil || len(r.Entries) != n || r.Entries[n-1].GetIndex() != n {
		t.Fatalf("ReadAll: %d entries, %v", len(r.Entries), err)
	}
}

func TestLocalAppender_Append_RefusedAppendEndsTheConnection(t *testing.T) {
	_, c, path := startLocal(t)
	a := dialLocal(t, path, walrus.LocalOptions{})
	if last, err := a.Append(&pb.AppendRequest{Entries: entries(1, 3, 1)}); err != nil || last != 3 {
		t.Fatalf("Append = %d, %v", last, err)
	}
	// A gap: refused, nothing written, and the connection ends.
	_, err := a.Append(&pb.AppendRequest{Entries: entries(7, 7, 1)})
	if err == nil || !strings.Contains(err.Error(), "local socket:") {
		t.Fatalf("append over a gap: %v", err)
	}
	if _, err := a.Append(&pb.AppendRequest{Entries: entries(4, 4, 1)}); err == nil {
		t.Fatal("the connection went on after a refusal")
	}
	r, err := c.ReadAll(context.Background(), 0, 0)
	if err != nil || len(r.Entries) != 3 {
		t.Fatalf("ReadAll: %d entries, %v; want 3", len(r.Entries), err)
	}
}

func TestLocalAppender_Token_WrongIsUnauthenticated_RightAppends(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := ioutil.WriteFile(tokens, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "append.sock")
	testdaemon.Start(t, "--local-socket", path, "--auth-token-file", tokens)
	waitForSocket(t, path)
	if _, err := walrus.DialLocal(path, walrus.LocalOptions{Token: "guess"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: %v, want Unauthenticated", err)
	}
	a := dialLocal(t, path, walrus.LocalOptions{Token: "s3cret"})
	// No WAL yet: the append is refused with the daemon's code, not a
	// broken connection.
	_, err := a.Append(&pb.AppendRequest{Entries: entries(1, 1, 1)})
	if code := status.Code(err); code != codes.FailedPrecondition {
		t.Fatalf("append before Create: %v, want FailedPrecondition", err)
	}
}
