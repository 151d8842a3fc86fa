package walrus_test

import (
	"context"
	"fmt"
	"io/ioutil"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc/codes"

	"walrus/client/go/internal/testdaemon"
	"walrus/client/go/walrus"
	pb "walrus/proto/walruspb"
)

func entries(first, last, term uint64) []*pb.Entry {
	var out []*pb.Entry
	for i := first; i <= last; i++ {
		out = append(out, &pb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(term),
			Type: pb.EntryType_EntryNormal.Enum(), Data: []byte{byte(i), 'x'}})
	}
	return out
}

func dial(t *testing.T, d *testdaemon.Daemon) *walrus.Client {
	t.Helper()
	return dialWith(t, d, walrus.Options{})
}

func dialWith(t *testing.T, d *testdaemon.Daemon, opts walrus.Options) *walrus.Client {
	t.Helper()
	c, err := walrus.Dial(d.Target, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestFenceCreateAppendReadAll_RoundTripsEntriesAndHardState(t *testing.T) {
	d := testdaemon.Start(t)
	c := dial(t, d)
	ctx := context.Background()
	epoch, err := c.Fence(ctx)
	if err != nil || epoch != 1 {
		t.Fatalf("Fence = %d, %v; want 1", epoch, err)
	}
	if created, err := c.Create(ctx, []byte("meta")); err != nil || !created {
		t.Fatalf("Create = %v, %v", created, err)
	}
	hs := &pb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(1), Commit: proto.Uint64(3)}
	if last, err := c.Append(ctx, hs, entries(1, 5, 2)); err != nil || last != 5 {
		t.Fatalf("Append = %d, %v", last, err)
	}
	r, err := c.ReadAll(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Metadata) != "meta" || !proto.Equal(r.HardState, hs) || len(r.Entries) != 5 {
		t.Fatalf("ReadAll = %q %v %d entries", r.Metadata, r.HardState, len(r.Entries))
	}
	if !proto.Equal(r.Entries[4], entries(5, 5, 2)[0]) {
		t.Fatalf("entry 5 = %v", r.Entries[4])
	}
}

func TestAppend_StaleEpochAfterAnotherWriterFencedIsRefused(t *testing.T) {
	d := testdaemon.Start(t)
	old, next := dial(t, d), dial(t, d)
	ctx := context.Background()
	if _, err := old.Fence(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := next.Fence(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := old.Append(ctx, nil, entries(1, 1, 1))
	if walrus.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Append with the old epoch = %v; want FailedPrecondition", err)
	}
	if _, err := next.Append(ctx, nil, entries(1, 1, 1)); err != nil {
		t.Fatalf("Append with the new epoch: %v", err)
	}
}

func TestAppend_EntryCrcMismatchIsInvalidArgumentAndWritesNothing(t *testing.T) {
	d := testdaemon.Start(t)
	c := dial(t, d)
	ctx := context.Background()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	req := &pb.AppendRequest{Entries: entries(1, 2, 1)}
	walrus.FillEntryCRC32C(req)
	req.Entries[1].Data = []byte("corrupted on the way")
	if _, err := c.AppendRequest(ctx, req); walrus.Code(err) != codes.InvalidArgument {
		t.Fatalf("Append = %v; want InvalidArgument", err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.LastIndex != 0 {
		t.Fatalf("Status last index = %d, %v; want 0", st.GetLastIndex(), err)
	}
}

// With coalescing off every append is a message of its own, acknowledged
// with its own last index.
func TestAppendStream_CoalescingOffAcknowledgesEachAppendAsItsOwnMessage(t *testing.T) {
	d := testdaemon.Start(t)
	c := dialWith(t, d, walrus.Options{NoAppendCoalescing: true})
	ctx := context.Background()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	s, err := c.OpenAppendStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := uint64(1); i <= 10; i++ {
		if _, err := s.Send(&pb.AppendRequest{Entries: entries(i, i, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(1); i <= 10; i++ {
		r, err := s.Recv()
		if err != nil || r.Sequence != i || r.LastIndex != i {
			t.Fatalf("ack %d = %v, %v", i, r, err)
		}
	}
	if n := walrus.WireMessages(s); n != 10 {
		t.Fatalf("%d messages for 10 appends; want 10", n)
	}
}

func TestReadAll_FromSnapshotMarkerAfterRelease(t *testing.T) {
	d := testdaemon.Start(t, "--segment-size-bytes", "4096", "--retain-released-segments", "0")
	c := dial(t, d)
	ctx := context.Background()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 200; i += 10 {
		if _, err := c.Append(ctx, nil, entries(i, i+9, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SaveSnapshot(ctx, 150, 1); err != nil {
		t.Fatal(err)
	}
	if n, err := c.ReleaseTo(ctx, 150); err != nil || n == 0 {
		t.Fatalf("ReleaseTo = %d, %v; want segments released", n, err)
	}
	r, err := c.ReadAll(ctx, 150, 1)
	if err != nil {
		t.Fatalf("ReadAll(150): %v", err)
	}
	if len(r.Entries) != 50 || r.Entries[0].GetIndex() != 151 {
		t.Fatalf("ReadAll(150) = %d entries from %d", len(r.Entries), r.Entries[0].GetIndex())
	}
	if _, err := c.ReadAll(ctx, 150, 2); walrus.Code(err) != codes.FailedPrecondition {
		t.Fatalf("ReadAll with the wrong term = %v; want FailedPrecondition", err)
	}
}

func TestSnapshots_CatalogueAndReadAllFromCommittedSnapshot(t *testing.T) {
	d := testdaemon.Start(t)
	c := dial(t, d)
	ctx := context.Background()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	hs := &pb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(1), Commit: proto.Uint64(15)}
	if _, err := c.Append(ctx, hs, entries(1, 30, 1)); err != nil {
		t.Fatal(err)
	}
	for _, index := range []uint64{10, 20} {
		if err := c.SaveSnapshot(ctx, index, 1); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, m := range s.Snapshots {
		got = append(got, m.Index)
	}
	if len(got) != 3 || got[0] != 0 || got[1] != 10 || got[2] != 20 || s.Commit != 15 {
		t.Fatalf("Snapshots = %v, commit %d; want [0 10 20], commit 15", got, s.Commit)
	}
	r, err := c.ReadAllFromCommittedSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Snapshot.Index != 10 || r.Snapshot.Term != 1 || len(r.Entries) != 20 ||
		r.Entries[0].GetIndex() != 11 {
		t.Fatalf("ReadAllFromCommittedSnapshot = marker %v, %d entries; want (10, 1), 11..30",
			r.Snapshot, len(r.Entries))
	}
}

func TestAppend_RetriedAcrossWalrusdKill9(t *testing.T) {
	d := testdaemon.Start(t)
	c := dial(t, d)
	ctx := context.Background()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(ctx, nil, entries(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	if last, err := c.Append(ctx, nil, entries(4, 6, 1)); err != nil || last != 6 {
		t.Fatalf("Append after restart = %d, %v", last, err)
	}
}

func TestDial_ClientCertificateWithoutCAIsInvalidArgument(t *testing.T) {
	_, err := walrus.Dial("127.0.0.1:1", walrus.Options{TLSCertFile: "c.pem", TLSKeyFile: "k.pem"})
	if walrus.Code(err) != codes.InvalidArgument {
		t.Fatalf("Dial = %v; want InvalidArgument", err)
	}
}

func TestEntryCRC32C_IsCastagnoli(t *testing.T) {
	// The check value of CRC-32C over "123456789".
	if got := walrus.EntryCRC32C([]byte("123456789")); got != 0xe3069283 {
		t.Fatalf("EntryCRC32C = %#x", got)
	}
}

func TestTokenFile_MissingTokenIsUnauthenticatedAndTheFileTokenWorks(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := ioutil.WriteFile(tokens, []byte("  secret-token  \nignored second line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, "--auth-token-file", tokens)
	ctx := context.Background()
	if _, err := dial(t, d).Status(ctx); walrus.Code(err) != codes.Unauthenticated {
		t.Fatalf("Status without a token = %v; want Unauthenticated", err)
	}
	c, err := walrus.Dial(d.Target, walrus.Options{TokenFile: tokens})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("Status with the file's token: %v", err)
	}
}

// Follow sends the backlog, then entries as they become durable, and a
// truncation when a new leader rewrites what was sent.
func TestFollow_BacklogNewEntriesAndATruncation(t *testing.T) {
	d := testdaemon.Start(t)
	c := dial(t, d)
	ctx := context.Background()
	if _, err := c.Create(ctx, []byte("meta")); err != nil {
		t.Fatal(err)
	}
	hardState := func(term, vote, commit uint64) *pb.HardState {
		return &pb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
	}
	if _, err := c.Append(ctx, hardState(1, 1, 3), entries(1, 5, 1)); err != nil {
		t.Fatal(err)
	}
	followCtx, stop := context.WithCancel(ctx)
	defer stop()
	type got struct {
		truncatedFrom uint64
		entries       []string
	}
	messages := make(chan got, 100)
	done := make(chan error, 1)
	go func() {
		done <- c.Follow(followCtx, 1, 0, func(m *pb.FollowResponse) error {
			var es []string
			for _, e := range m.Entries {
				es = append(es, fmt.Sprintf("%d/%d", e.GetIndex(), e.GetTerm()))
			}
			messages <- got{m.TruncatedFrom, es}
			return nil
		})
	}()
	var log []string
	var truncations []uint64
	readThrough := func(want int) {
		t.Helper()
		for len(log) < want {
			select {
			case m := <-messages:
				if m.truncatedFrom != 0 {
					truncations = append(truncations, m.truncatedFrom)
					log = log[:m.truncatedFrom-1]
				}
				log = append(log, m.entries...)
			case <-time.After(30 * time.Second):
				t.Fatalf("no message; have %v", log)
			}
		}
	}
	readThrough(5)
	if _, err := c.Append(ctx, hardState(2, 2, 3), entries(4, 7, 2)); err != nil {
		t.Fatal(err)
	}
	readThrough(7)
	if got, want := strings.Join(log, " "), "1/1 2/1 3/1 4/2 5/2 6/2 7/2"; got != want {
		t.Fatalf("followed %q; want %q", got, want)
	}
	if len(truncations) != 1 || truncations[0] != 4 {
		t.Fatalf("truncations %v; want [4]", truncations)
	}
	stop()
	if err := <-done; walrus.Code(err) != codes.Canceled {
		t.Fatalf("Follow after cancel = %v", err)
	}
}
