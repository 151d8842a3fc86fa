package etcdraft_test

import (
	"context"
	"testing"

	"github.com/golang/protobuf/proto"
	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"
	_ "go.etcd.io/etcd/wal/walpb" // registers walpb.Record, next to walrus.walpb.Record
	"google.golang.org/grpc/codes"

	"walrus/client/go/etcdraft"
	"walrus/client/go/internal/testdaemon"
	"walrus/client/go/walrus"
)

// A Go program holding etcd's raftpb and walrus's messages starts at all
// only if their registered names differ; this checks both are there.
func TestRegistry_EtcdAndWalrusRaftMessagesLinkSideBySide(t *testing.T) {
	for _, name := range []string{"raftpb.EntryType", "walrus.raftpb.EntryType"} {
		if proto.EnumValueMap(name) == nil {
			t.Errorf("enum %s not registered", name)
		}
	}
	for _, name := range []string{"raftpb.Entry", "walrus.raftpb.Entry", "walpb.Record", "walrus.walpb.Record"} {
		if proto.MessageType(name) == nil {
			t.Errorf("message %s not registered", name)
		}
	}
}

func ents(first, last, term uint64) []raftpb.Entry {
	var out []raftpb.Entry
	for i := first; i <= last; i++ {
		out = append(out, raftpb.Entry{Index: i, Term: term, Data: []byte{byte(i)}})
	}
	return out
}

func open(t *testing.T, d *testdaemon.Daemon, snap raftpb.Snapshot, persisted *[]raftpb.Snapshot) *etcdraft.Storage {
	t.Helper()
	c, err := walrus.Dial(d.Target, walrus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := etcdraft.Open(context.Background(), c, snap, etcdraft.Options{
		Metadata: []byte("node"),
		PersistSnapshot: func(s raftpb.Snapshot) error {
			*persisted = append(*persisted, s)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSave_SnapshotFromLeaderPastTheLogThenRestartFromItsMarker(t *testing.T) {
	d := testdaemon.Start(t)
	var persisted []raftpb.Snapshot
	s := open(t, d, raftpb.Snapshot{}, &persisted)
	ctx := context.Background()
	if err := s.Save(ctx, raft.Ready{HardState: raftpb.HardState{Term: 1, Vote: 1, Commit: 3}, Entries: ents(1, 5, 1)}); err != nil {
		t.Fatal(err)
	}
	snap := raftpb.Snapshot{Data: []byte("state"), Metadata: raftpb.SnapshotMetadata{Index: 10, Term: 2,
		ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}
	rd := raft.Ready{Snapshot: snap, HardState: raftpb.HardState{Term: 2, Vote: 1, Commit: 10}, Entries: ents(11, 12, 2)}
	if err := s.Save(ctx, rd); err != nil {
		t.Fatal(err)
	}
	if len(persisted) != 1 {
		t.Fatalf("PersistSnapshot called %d times", len(persisted))
	}
	if first, _ := s.FirstIndex(); first != 11 {
		t.Fatalf("FirstIndex = %d; want 11", first)
	}

	d.Restart(t)
	r := open(t, d, snap, &persisted)
	hs, cs, _ := r.InitialState()
	if hs.Term != 2 || hs.Vote != 1 || hs.Commit != 10 || len(cs.Voters) != 3 {
		t.Fatalf("InitialState = %+v %+v", hs, cs)
	}
	got, err := r.Entries(11, 13, 1<<20)
	if err != nil || len(got) != 2 || got[1].Term != 2 {
		t.Fatalf("Entries(11, 13) = %v, %v", got, err)
	}
	if _, err := r.Entries(5, 6, 1<<20); err != raft.ErrCompacted {
		t.Fatalf("Entries(5) = %v; want ErrCompacted", err)
	}
}

func TestOpen_FencesThePreviousStorage(t *testing.T) {
	d := testdaemon.Start(t)
	var persisted []raftpb.Snapshot
	old := open(t, d, raftpb.Snapshot{}, &persisted)
	open(t, d, raftpb.Snapshot{}, &persisted)
	err := old.Save(context.Background(), raft.Ready{Entries: ents(1, 1, 1)})
	if walrus.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Save by the fenced storage = %v; want FailedPrecondition", err)
	}
}

// The default view reads from walrusd: after a new leader rewrites the tail
// and a restart, Entries and Term answer from the daemon what was made
// durable, with MemoryStorage's errors at the bounds, and a node opening from
// a snapshot walrus has no marker for is told NotFound (try an older one).
func TestRemoteView_RangesAndTermsFromWalrus_AcrossRewriteAndRestart(t *testing.T) {
	d := testdaemon.Start(t)
	var persisted []raftpb.Snapshot
	s := open(t, d, raftpb.Snapshot{}, &persisted)
	ctx := context.Background()
	if err := s.Save(ctx, raft.Ready{HardState: raftpb.HardState{Term: 1, Vote: 1, Commit: 50}, Entries: ents(1, 100, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, raft.Ready{HardState: raftpb.HardState{Term: 2, Vote: 2, Commit: 50}, Entries: ents(80, 120, 2)}); err != nil {
		t.Fatal(err)
	}
	check := func(st *etcdraft.Storage, when string) {
		t.Helper()
		if last, _ := st.LastIndex(); last != 120 {
			t.Fatalf("%s: LastIndex = %d; want 120", when, last)
		}
		got, err := st.Entries(70, 121, 1<<30)
		if err != nil || len(got) != 51 {
			t.Fatalf("%s: Entries(70, 121) = %d entries, %v", when, len(got), err)
		}
		for i, e := range got {
			want := uint64(1)
			if e.Index >= 80 {
				want = 2
			}
			if e.Index != uint64(70+i) || e.Term != want || e.Data[0] != byte(e.Index) {
				t.Fatalf("%s: entry %d = %+v", when, 70+i, e)
			}
		}
		if term, err := st.Term(79); err != nil || term != 1 {
			t.Fatalf("%s: Term(79) = %d, %v", when, term, err)
		}
		if _, err := st.Entries(120, 122, 1<<30); err != raft.ErrUnavailable {
			t.Fatalf("%s: Entries past the end = %v; want ErrUnavailable", when, err)
		}
		first, _ := st.FirstIndex()
		small, err := st.Entries(first, 121, 1)
		if err != nil || len(small) != 1 {
			t.Fatalf("%s: Entries with maxSize 1 = %d entries, %v; want 1", when, len(small), err)
		}
	}
	check(s, "after the rewrite")
	snap, err := s.CreateSnapshot(ctx, 50, &raftpb.ConfState{Voters: []uint64{1}}, []byte("kv"))
	if err != nil || snap.Metadata.Term != 1 {
		t.Fatalf("CreateSnapshot(50) = %+v, %v", snap.Metadata, err)
	}
	if err := s.Compact(ctx, 50, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Entries(50, 51, 1<<30); err != raft.ErrCompacted {
		t.Fatalf("Entries(50) after Compact(50) = %v; want ErrCompacted", err)
	}

	d.Restart(t)
	r := open(t, d, snap, &persisted)
	if first, _ := r.FirstIndex(); first != 51 {
		t.Fatalf("FirstIndex after restart = %d; want 51", first)
	}
	check(r, "after a restart")

	c, err := walrus.Dial(d.Target, walrus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	unknown := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 200, Term: 2}}
	if _, err := etcdraft.Open(ctx, c, unknown, etcdraft.Options{Metadata: []byte("node")}); walrus.Code(err) != codes.NotFound {
		t.Fatalf("Open from a snapshot past the log = %v; want NotFound", err)
	}
}
