// Package check holds what the Raft cluster tests share: their figures and
// the final reading of a node's walrus directory with etcd's own wal package.
package check

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
	"go.uber.org/zap"

	"walrus/client/go/etcdraft"
	"walrus/client/go/walrus"
	"walrus/tests/raft/internal/daemon"
)

// Counters are a run's figures, printed at the end.
type Counters struct {
	mu sync.Mutex
	m  map[string]int
}

// Add adds n to the figure called name.
func (s *Counters) Add(name string, n int) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[string]int{}
	}
	s.m[name] += n
	s.mu.Unlock()
}

func (s *Counters) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for k := range s.m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "  %-34s %d\n", k, s.m[k])
	}
	return b.String()
}

// EtcdReaderAgrees reads d's log from the snapshot marker (index, term)
// through walrusd, stops walrusd, and reads its directory with etcd's wal
// package from the same marker: metadata, hard state and entries must be
// the same. It returns a one-line summary.
func EtcdReaderAgrees(d *daemon.Walrusd, index, term uint64) (string, error) {
	client, err := walrus.Dial(d.Target(), walrus.Options{})
	if err != nil {
		return "", err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := client.ReadAll(ctx, index, term)
	if err != nil {
		return "", fmt.Errorf("walrus ReadAll from marker %d/%d: %v", index, term, err)
	}
	d.Stop()
	w, err := wal.OpenForRead(zap.NewNop(), d.WALDir(), walpb.Snapshot{Index: index, Term: term})
	if err != nil {
		return "", fmt.Errorf("etcd wal.OpenForRead at %d/%d: %v", index, term, err)
	}
	defer w.Close()
	meta, hs, ents, err := w.ReadAll()
	if err != nil {
		return "", fmt.Errorf("etcd wal ReadAll from %d/%d: %v", index, term, err)
	}
	if string(meta) != string(r.Metadata) {
		return "", fmt.Errorf("etcd reads metadata %q, walrus %q", meta, r.Metadata)
	}
	whs := etcdraft.HardStateFromWalrus(r.HardState)
	if hs.Term != whs.Term || hs.Vote != whs.Vote || hs.Commit != whs.Commit {
		return "", fmt.Errorf("etcd reads hard state %+v, walrus %+v", hs, whs)
	}
	wents := etcdraft.EntriesFromWalrus(r.Entries)
	if len(ents) != len(wents) {
		return "", fmt.Errorf("etcd reads %d entries from marker %d, walrus %d", len(ents), index, len(wents))
	}
	for i := range ents {
		if !reflect.DeepEqual(normalize(ents[i]), normalize(wents[i])) {
			return "", fmt.Errorf("entry %d: etcd reads %+v, walrus %+v", ents[i].Index, ents[i], wents[i])
		}
	}
	return fmt.Sprintf("etcd's wal reader agrees with walrusd from marker %d/%d: %d entries, hard state term %d vote %d commit %d",
		index, term, len(ents), hs.Term, hs.Vote, hs.Commit), nil
}

func normalize(e raftpb.Entry) raftpb.Entry {
	if len(e.Data) == 0 {
		e.Data = nil
	}
	return e
}
