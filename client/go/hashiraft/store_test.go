package hashiraft

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"

	"walrus/client/go/internal/testdaemon"
	"walrus/client/go/walrus"
)

var voters = map[string]uint64{"node-a": 1, "node-b": 2}

func openStore(t *testing.T, d *testdaemon.Daemon) *Store {
	t.Helper()
	c, err := walrus.Dial(d.Target, walrus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := Open(context.Background(), c, Options{Voters: voters, SideFile: filepath.Join(d.Dir, "side.json")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func logs(first, last, term uint64) []*raft.Log {
	var out []*raft.Log
	for i := first; i <= last; i++ {
		out = append(out, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte{byte(i)},
			Extensions: []byte("ext")})
	}
	return out
}

func mustGet(t *testing.T, s *Store, index uint64) raft.Log {
	t.Helper()
	var l raft.Log
	if err := s.GetLog(index, &l); err != nil {
		t.Fatalf("GetLog(%d): %v", index, err)
	}
	return l
}

func TestEnvelope_KeepsTypeExtensionsAndData(t *testing.T) {
	in := &raft.Log{Index: 7, Term: 3, Type: raft.LogConfiguration, Data: []byte("d"), Extensions: []byte("e")}
	out, err := decodeLog(encodeLog(in))
	if err != nil || out.Index != 7 || out.Term != 3 || out.Type != raft.LogConfiguration ||
		string(out.Data) != "d" || string(out.Extensions) != "e" {
		t.Fatalf("decodeLog(encodeLog(%+v)) = %+v, %v", in, out, err)
	}
}

func TestDeleteRange_SuffixThenStoreLogsReplacesTheTailDurably(t *testing.T) {
	d := testdaemon.Start(t)
	s := openStore(t, d)
	if err := s.StoreLogs(logs(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(6, 10); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastIndex(); last != 5 {
		t.Fatalf("LastIndex after DeleteRange(6, 10) = %d", last)
	}
	if err := s.StoreLogs(logs(6, 7, 2)); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	r := openStore(t, d)
	if last, _ := r.LastIndex(); last != 7 {
		t.Fatalf("LastIndex after restart = %d; want 7", last)
	}
	if l := mustGet(t, r, 6); l.Term != 2 || string(l.Extensions) != "ext" {
		t.Fatalf("entry 6 = %+v", l)
	}
}

func TestDeleteRange_PrefixIsAMarkerAndSurvivesRestart(t *testing.T) {
	d := testdaemon.Start(t, "--segment-size-bytes", "4096", "--retain-released-segments", "0")
	s := openStore(t, d)
	for i := uint64(1); i <= 300; i += 50 {
		if err := s.StoreLogs(logs(i, i+49, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteRange(1, 250); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	r := openStore(t, d)
	first, _ := r.FirstIndex()
	last, _ := r.LastIndex()
	if first != 251 || last != 300 {
		t.Fatalf("after restart the log is %d..%d; want 251..300", first, last)
	}
}

func TestStoreLogs_PastTheEndAfterAnInstalledSnapshot(t *testing.T) {
	d := testdaemon.Start(t)
	s := openStore(t, d)
	if err := s.StoreLogs(logs(1, 3, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 3); err != nil { // the snapshot covers the whole log
		t.Fatal(err)
	}
	if err := s.StoreLogs(logs(101, 102, 4)); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	r := openStore(t, d)
	if first, _ := r.FirstIndex(); first != 101 {
		t.Fatalf("FirstIndex after restart = %d; want 101", first)
	}
}

func TestStableStore_TermAndVoteLiveInTheHardState(t *testing.T) {
	d := testdaemon.Start(t)
	s := openStore(t, d)
	if _, err := s.Get([]byte(keyLastVoteCand)); err == nil || err.Error() != "not found" {
		t.Fatalf("Get(LastVoteCand) on a new log = %v; want \"not found\"", err)
	}
	if err := s.SetUint64([]byte(keyCurrentTerm), 5); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte(keyLastVoteTerm), 5); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte(keyLastVoteCand), []byte("node-b")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte(keyLastVoteCand), []byte("stranger")); err == nil {
		t.Fatal("a vote for an unmapped candidate was accepted")
	}
	if err := s.Set([]byte("other"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	r := openStore(t, d)
	term, _ := r.GetUint64([]byte(keyCurrentTerm))
	voteTerm, _ := r.GetUint64([]byte(keyLastVoteTerm))
	cand, _ := r.Get([]byte(keyLastVoteCand))
	other, _ := r.Get([]byte("other"))
	if term != 5 || voteTerm != 5 || string(cand) != "node-b" || string(other) != "x" {
		t.Fatalf("after restart: term %d, vote term %d, candidate %q, other %q", term, voteTerm, cand, other)
	}
	if err := r.SetUint64([]byte(keyCurrentTerm), 6); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get([]byte(keyLastVoteCand)); err == nil {
		t.Fatal("the vote of term 5 still counts in term 6")
	}
}
