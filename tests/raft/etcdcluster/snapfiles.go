package main

import (
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"sort"

	"go.etcd.io/etcd/raft/raftpb"
)

// snapFiles keeps a node's snapshots (data and metadata) as files, the way
// etcd's snap package does: written to a temporary file, fsynced, renamed,
// directory fsynced, so a snapshot file is either whole or absent. The newest
// `keep` are kept: a crash between a file and its walrus marker leaves a file
// walrus knows nothing of, and the node restarts from the one before.
type snapFiles struct {
	dir  string
	keep int
}

func (s *snapFiles) name(index, term uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x-%016x.snap", term, index))
}

func (s *snapFiles) save(snap raftpb.Snapshot) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	b, err := snap.Marshal()
	if err != nil {
		return err
	}
	tmp := s.name(snap.Metadata.Index, snap.Metadata.Term) + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if err := os.Rename(tmp, s.name(snap.Metadata.Index, snap.Metadata.Term)); err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	return s.prune()
}

// newestFirst loads every snapshot, newest (highest index) first.
func (s *snapFiles) newestFirst() ([]raftpb.Snapshot, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, "*.snap"))
	if err != nil {
		return nil, err
	}
	var out []raftpb.Snapshot
	for _, n := range names {
		b, err := ioutil.ReadFile(n)
		if err != nil {
			return nil, err
		}
		var snap raftpb.Snapshot
		if err := snap.Unmarshal(b); err != nil {
			return nil, fmt.Errorf("%s: %v", n, err)
		}
		out = append(out, snap)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metadata.Index > out[j].Metadata.Index })
	return out, nil
}

func (s *snapFiles) prune() error {
	snaps, err := s.newestFirst()
	if err != nil {
		return err
	}
	for i := s.keep; i < len(snaps); i++ {
		if err := os.Remove(s.name(snaps[i].Metadata.Index, snaps[i].Metadata.Term)); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
