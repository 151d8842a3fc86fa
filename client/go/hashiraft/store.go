// Package hashiraft puts a hashicorp raft node (github.com/hashicorp/raft)
// on walrus: Store is its LogStore and its StableStore over one walrusd.
//
// Mapping onto walrus's log (etcd's WAL semantics):
//
//   - StoreLogs is one Append (one fsync). hashicorp's log types and
//     extensions have no place in an etcd entry, so each entry's data is a
//     small envelope: version, hashicorp LogType, extensions, data
//     (encodeLog). The etcd entry type is always EntryNormal.
//   - DeleteRange of a suffix (a follower dropping entries the leader
//     overruled) writes nothing: walrus cannot delete, but the StoreLogs
//     that follows at the same index replaces the old tail durably (an
//     entry at index i replaces i and everything after it). Until then the
//     Store hides the range. A crash in between brings the old tail back,
//     which is the state before the DeleteRange: the leader finds the
//     conflict again.
//   - DeleteRange of a prefix (compaction after a snapshot) records a
//     snapshot marker at the range's end and releases the segments before
//     it, so walrusd may purge them. On start, the Store reads from the
//     newest marker (Status), so it needs no bookkeeping of its own.
//   - StoreLogs that starts past the end of the log (after a snapshot was
//     installed) first records a marker just before it. Its term is the
//     first new entry's term: hashicorp does not tell a LogStore the term of
//     the entry before, and walrus uses the marker's term only to find it.
//   - Other deletions (a range in the middle) do not happen in hashicorp
//     raft and are refused.
//
// StableStore: hashicorp keeps CurrentTerm, LastVoteTerm and LastVoteCand.
// They live in walrus's hard state (term, vote), so a vote is durable in
// the same log as the entries, written with one Append:
//   - CurrentTerm is the hard state's term;
//   - LastVoteCand is the hard state's vote, a number: Options.Voters maps
//     each candidate as hashicorp names it in a vote (its transport address)
//     to a nonzero number. An unmapped candidate is refused (the vote is not
//     cast, which is safe);
//   - LastVoteTerm is not stored: hashicorp only votes in its current term,
//     so a vote in the hard state is a vote in the hard state's term.
//
// The hard state's commit stays 0: hashicorp raft never tells its stores the
// commit index, so walrus cannot refuse an overwrite of committed entries
// for this node (etcd raft nodes get that protection). Any other StableStore
// key goes to Options.SideFile (a small file replaced atomically); without
// one such keys are refused.
//
// The log since the last compaction is kept in memory (loaded by Open):
// hashicorp raft reads it one entry at a time (GetLog, once per entry it
// replicates), which would be a round trip each over walrusd's ranged reads,
// and it compacts after each snapshot (keeping TrailingLogs entries, 10,240
// by default), so the copy is no larger than the log hashicorp keeps.
//
// Safe for concurrent use.
package hashiraft

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/hashicorp/raft"

	"walrus/client/go/walrus"
	pb "walrus/proto/walruspb"
)

var (
	keyCurrentTerm  = "CurrentTerm"
	keyLastVoteTerm = "LastVoteTerm"
	keyLastVoteCand = "LastVoteCand"
	// errNotFound is what hashicorp raft expects for a missing key: it
	// compares the message.
	errNotFound = errors.New("not found")
)

// Options configure a Store.
type Options struct {
	// Metadata the WAL is created with.
	Metadata []byte
	// Voters maps each candidate, as hashicorp raft names it in a vote (the
	// transport's encoding of its address), to a nonzero vote number.
	Voters map[string]uint64
	// SideFile holds the StableStore keys walrus's hard state has no room
	// for; "" refuses them.
	SideFile string
	// CallTimeout bounds each walrus call (default 30 s).
	CallTimeout time.Duration
}

// Store implements raft.LogStore and raft.StableStore. See the package
// comment.
type Store struct {
	client *walrus.Client
	opts   Options

	mu       sync.Mutex
	term     uint64
	vote     uint64
	voteTerm uint64      // LastVoteTerm set, its candidate not yet
	logs     []*raft.Log // the visible log: logs[i].Index == logs[0].Index+i
	side     map[string][]byte
}

// Open takes over client's WAL (Fence, then Create: Create carries the
// epoch) and loads it from the newest snapshot marker.
func Open(ctx context.Context, client *walrus.Client, opts Options) (*Store, error) {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if _, err := client.Fence(ctx); err != nil {
		return nil, fmt.Errorf("walrus fence: %w", err)
	}
	if _, err := client.Create(ctx, opts.Metadata); err != nil {
		return nil, fmt.Errorf("walrus create: %w", err)
	}
	st, err := client.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("walrus status: %w", err)
	}
	r, err := client.ReadAll(ctx, st.SnapshotIndex, st.SnapshotTerm)
	if err != nil {
		return nil, fmt.Errorf("walrus read from marker %d/%d: %w", st.SnapshotIndex, st.SnapshotTerm, err)
	}
	s := &Store{client: client, opts: opts, term: r.HardState.GetTerm(), vote: r.HardState.GetVote(),
		side: map[string][]byte{}}
	for _, e := range r.Entries {
		l, err := decodeLog(e)
		if err != nil {
			return nil, err
		}
		s.logs = append(s.logs, l)
	}
	if opts.SideFile != "" {
		b, err := ioutil.ReadFile(opts.SideFile)
		if err == nil {
			err = json.Unmarshal(b, &s.side)
		}
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("side file: %v", err)
		}
	}
	return s, nil
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.CallTimeout)
}

// FirstIndex implements raft.LogStore (0: no entries).
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.logs) == 0 {
		return 0, nil
	}
	return s.logs[0].Index, nil
}

// LastIndex implements raft.LogStore (0: no entries).
func (s *Store) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastLocked(), nil
}

func (s *Store) lastLocked() uint64 {
	if len(s.logs) == 0 {
		return 0
	}
	return s.logs[len(s.logs)-1].Index
}

// GetLog implements raft.LogStore.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.logs) == 0 || index < s.logs[0].Index || index > s.lastLocked() {
		return raft.ErrLogNotFound
	}
	*log = *s.logs[index-s.logs[0].Index]
	return nil
}

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs implements raft.LogStore: one durable Append.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := s.ctx()
	defer cancel()
	first := logs[0].Index
	if len(s.logs) > 0 && first < s.logs[0].Index {
		return fmt.Errorf("hashiraft: StoreLogs at %d, before the first index %d", first, s.logs[0].Index)
	}
	if first > s.lastLocked()+1 && first > 1 {
		// After an installed snapshot: the log continues past its end.
		if err := s.client.SaveSnapshot(ctx, first-1, logs[0].Term); err != nil {
			return fmt.Errorf("walrus snapshot marker %d/%d: %w", first-1, logs[0].Term, err)
		}
		s.logs = nil
	}
	entries := make([]*pb.Entry, len(logs))
	for i, l := range logs {
		entries[i] = encodeLog(l)
	}
	if _, err := s.client.Append(ctx, nil, entries); err != nil {
		return fmt.Errorf("walrus append %d..%d: %w", first, logs[len(logs)-1].Index, err)
	}
	if len(s.logs) > 0 {
		s.logs = s.logs[:first-s.logs[0].Index]
	}
	for _, l := range logs {
		c := *l
		s.logs = append(s.logs, &c)
	}
	return nil
}

// DeleteRange implements raft.LogStore; see the package comment for how a
// suffix and a prefix map onto walrus.
func (s *Store) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.logs) == 0 || max < s.logs[0].Index || min > s.lastLocked() {
		return nil
	}
	first, last := s.logs[0].Index, s.lastLocked()
	switch {
	case min > first && max >= last: // a suffix: replaced by the next StoreLogs
		s.logs = s.logs[:min-first]
		return nil
	case min <= first: // a prefix (or all): a marker, then release
		if max > last {
			max = last
		}
		term := s.logs[max-first].Term
		ctx, cancel := s.ctx()
		defer cancel()
		if err := s.client.SaveSnapshot(ctx, max, term); err != nil {
			return fmt.Errorf("walrus snapshot marker %d/%d: %w", max, term, err)
		}
		if _, err := s.client.ReleaseTo(ctx, max); err != nil {
			return fmt.Errorf("walrus release to %d: %w", max, err)
		}
		s.logs = append([]*raft.Log(nil), s.logs[max-first+1:]...)
		return nil
	default:
		return fmt.Errorf("hashiraft: DeleteRange(%d, %d) inside the log %d..%d cannot be mapped onto walrus",
			min, max, first, last)
	}
}

// SetUint64 implements raft.StableStore.
func (s *Store) SetUint64(key []byte, val uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch string(key) {
	case keyCurrentTerm:
		vote := s.vote
		if val != s.term {
			vote = 0 // a vote belongs to its term
		}
		return s.saveHardStateLocked(val, vote)
	case keyLastVoteTerm:
		s.voteTerm = val // durable with the candidate (Set LastVoteCand)
		return nil
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], val)
	return s.setSideLocked(string(key), b[:])
}

// GetUint64 implements raft.StableStore.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch string(key) {
	case keyCurrentTerm:
		return s.term, nil
	case keyLastVoteTerm:
		if s.vote == 0 {
			return 0, errNotFound
		}
		return s.term, nil
	}
	b, ok := s.side[string(key)]
	if !ok {
		return 0, errNotFound
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("hashiraft: %q holds %d bytes, not a uint64", key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Set implements raft.StableStore.
func (s *Store) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if string(key) == keyLastVoteCand {
		id, ok := s.opts.Voters[string(val)]
		if !ok || id == 0 {
			return fmt.Errorf("hashiraft: candidate %q has no vote number (Options.Voters)", val)
		}
		if s.voteTerm != s.term {
			return fmt.Errorf("hashiraft: vote in term %d while the current term is %d", s.voteTerm, s.term)
		}
		return s.saveHardStateLocked(s.term, id)
	}
	return s.setSideLocked(string(key), append([]byte(nil), val...))
}

// Get implements raft.StableStore.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if string(key) == keyLastVoteCand {
		if s.vote == 0 {
			return nil, errNotFound
		}
		for cand, id := range s.opts.Voters {
			if id == s.vote {
				return []byte(cand), nil
			}
		}
		return nil, fmt.Errorf("hashiraft: vote %d in the hard state is no candidate in Options.Voters", s.vote)
	}
	b, ok := s.side[string(key)]
	if !ok {
		return nil, errNotFound
	}
	return append([]byte(nil), b...), nil
}

func (s *Store) saveHardStateLocked(term, vote uint64) error {
	ctx, cancel := s.ctx()
	defer cancel()
	hs := &pb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(0)}
	if _, err := s.client.Append(ctx, hs, nil); err != nil {
		return fmt.Errorf("walrus hard state term %d vote %d: %w", term, vote, err)
	}
	s.term, s.vote = term, vote
	return nil
}

func (s *Store) setSideLocked(key string, val []byte) error {
	if s.opts.SideFile == "" {
		return fmt.Errorf("hashiraft: key %q has no place in walrus's hard state and no SideFile is set", key)
	}
	next := map[string][]byte{}
	for k, v := range s.side {
		next[k] = v
	}
	next[key] = val
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := writeFileDurably(s.opts.SideFile, b); err != nil {
		return err
	}
	s.side = next
	return nil
}

// writeFileDurably replaces path with b: temporary file, fsync, rename,
// directory fsync, so the file is the old or the new content after a crash.
func writeFileDurably(path string, b []byte) error {
	tmp := path + ".tmp"
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
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
