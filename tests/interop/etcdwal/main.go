// Command etcdwal is the etcd side of walrus' interoperability harness.
//
// It links against etcd 3.4's own wal package (Debian's golang-etcd-server-dev,
// built in GOPATH mode) so that every file it writes or reads goes through the
// reference implementation of the format walrus claims to be compatible with.
//
// Subcommands:
//
//	etcdwal write DIR --seed S --entries N --segment-size BYTES
//	etcdwal dump DIR [--snapshot-index N --snapshot-term T] [--mode read|write]
//	etcdwal snapshots DIR [--valid]
//
// See tests/interop/README.md.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/ioutil"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
	"go.uber.org/zap"
)

const usage = `usage:
  etcdwal write DIR --seed S --entries N --segment-size BYTES
  etcdwal dump DIR [--snapshot-index N --snapshot-term T] [--mode read|write]
  etcdwal snapshots DIR [--valid]
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "write":
		err = cmdWrite(os.Args[2:])
	case "dump":
		err = cmdDump(os.Args[2:])
	case "snapshots":
		err = cmdSnapshots(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		err = fmt.Errorf("unknown subcommand %q\n%s", os.Args[1], usage)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}

// ---------------------------------------------------------------- arguments

// parseArgs splits args into exactly one positional argument (DIR) and a map
// of --key value / --key=value options. Options listed in boolOpts take no
// value. Unknown options are rejected.
func parseArgs(args []string, valueOpts, boolOpts []string) (string, map[string]string, error) {
	known := map[string]bool{}
	for _, k := range valueOpts {
		known[k] = true
	}
	isBool := map[string]bool{}
	for _, k := range boolOpts {
		isBool[k] = true
	}
	opts := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		val := ""
		hasVal := false
		if j := strings.IndexByte(name, '='); j >= 0 {
			name, val, hasVal = name[:j], name[j+1:], true
		}
		switch {
		case isBool[name]:
			if !hasVal {
				val = "true"
			}
		case known[name]:
			if !hasVal {
				if i+1 >= len(args) {
					return "", nil, fmt.Errorf("option --%s needs a value", name)
				}
				i++
				val = args[i]
			}
		default:
			return "", nil, fmt.Errorf("unknown option %s\n%s", a, usage)
		}
		opts[name] = val
	}
	if len(pos) != 1 {
		return "", nil, fmt.Errorf("expected exactly one DIR argument, got %d\n%s", len(pos), usage)
	}
	return pos[0], opts, nil
}

func optUint(opts map[string]string, name string, def uint64) (uint64, error) {
	s, ok := opts[name]
	if !ok {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("--%s: %v", name, err)
	}
	return v, nil
}

func optInt(opts map[string]string, name string, def int64) (int64, error) {
	s, ok := opts[name]
	if !ok {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("--%s: %v", name, err)
	}
	return v, nil
}

// -------------------------------------------------------------------- dump

func cmdDump(args []string) error {
	dir, opts, err := parseArgs(args, []string{"snapshot-index", "snapshot-term", "mode"}, nil)
	if err != nil {
		return err
	}
	var snap walpb.Snapshot
	if snap.Index, err = optUint(opts, "snapshot-index", 0); err != nil {
		return err
	}
	if snap.Term, err = optUint(opts, "snapshot-term", 0); err != nil {
		return err
	}
	mode := opts["mode"]
	if mode == "" {
		mode = "read"
	}
	lg := zap.NewNop()
	var w *wal.WAL
	switch mode {
	case "read":
		w, err = wal.OpenForRead(lg, dir, snap)
	case "write":
		w, err = wal.Open(lg, dir, snap)
	default:
		return fmt.Errorf("--mode must be read or write, not %q", mode)
	}
	if err != nil {
		return err
	}
	metadata, st, ents, err := w.ReadAll()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	writeDump(&buf, metadata, st, ents)
	if _, err := os.Stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	// In write mode the WAL is now ready for appending; close it so the
	// locks are released and the tail is synced. In read mode ReadAll
	// already closed the files.
	if mode == "write" {
		if err := w.Close(); err != nil {
			return fmt.Errorf("close: %v", err)
		}
	}
	return nil
}

// writeDump renders the canonical JSON-lines dump shared with
// `walrusctl dump --format=jsonl`. It is built by hand so that key order and
// spacing are fixed.
func writeDump(b *bytes.Buffer, metadata []byte, st raftpb.HardState, ents []raftpb.Entry) {
	fmt.Fprintf(b, "{\"kind\":\"metadata\",\"data\":\"%s\"}\n", base64.StdEncoding.EncodeToString(metadata))
	fmt.Fprintf(b, "{\"kind\":\"hardstate\",\"term\":%d,\"vote\":%d,\"commit\":%d}\n", st.Term, st.Vote, st.Commit)
	for _, e := range ents {
		fmt.Fprintf(b, "{\"kind\":\"entry\",\"index\":%d,\"term\":%d,\"type\":%d,\"data\":\"%s\"}\n",
			e.Index, e.Term, int32(e.Type), base64.StdEncoding.EncodeToString(e.Data))
	}
}

// --------------------------------------------------------------- snapshots

func cmdSnapshots(args []string) error {
	dir, opts, err := parseArgs(args, nil, []string{"valid"})
	if err != nil {
		return err
	}
	var snaps []walpb.Snapshot
	if opts["valid"] == "true" {
		// etcd's own notion: snapshot records whose index is <= the
		// latest committed index recorded in the WAL.
		snaps, err = wal.ValidSnapshotEntries(zap.NewNop(), dir)
	} else {
		snaps, err = walkSnapshots(dir)
	}
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, s := range snaps {
		fmt.Fprintf(&b, "%d %d\n", s.Index, s.Term)
	}
	_, err = os.Stdout.Write(b.Bytes())
	return err
}

// walkSnapshots is a small independent frame walker: it visits every segment
// file in name order, decodes the 8-byte little-endian length frames and the
// walpb.Record inside each, and collects the walpb.Snapshot records. A zero
// length (preallocated space) or end of file moves on to the next segment.
// CRCs are not checked; this is only used to pick snapshot markers.
func walkSnapshots(dir string) ([]walpb.Snapshot, error) {
	names, err := walNames(dir)
	if err != nil {
		return nil, err
	}
	var snaps []walpb.Snapshot
	for _, name := range names {
		data, err := ioutil.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		off := 0
		for off+8 <= len(data) {
			l := binary.LittleEndian.Uint64(data[off : off+8])
			if l == 0 {
				break
			}
			recBytes := int(l & ^(uint64(0xff) << 56))
			padBytes := 0
			if l&(uint64(1)<<63) != 0 {
				padBytes = int((l >> 56) & 0x7)
			}
			start := off + 8
			end := start + recBytes
			if recBytes < 0 || end+padBytes > len(data) {
				break // torn tail
			}
			var rec walpb.Record
			if err := rec.Unmarshal(data[start:end]); err != nil {
				break
			}
			if rec.Type == 5 {
				var s walpb.Snapshot
				if err := s.Unmarshal(rec.Data); err != nil {
					return nil, fmt.Errorf("%s@%d: bad snapshot record: %v", name, off, err)
				}
				snaps = append(snaps, s)
			}
			off = end + padBytes
		}
	}
	return snaps, nil
}

func walNames(dir string) ([]string, error) {
	fis, err := ioutil.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, fi := range fis {
		var seq, idx uint64
		n := fi.Name()
		if !strings.HasSuffix(n, ".wal") {
			continue
		}
		if _, err := fmt.Sscanf(n, "%016x-%016x.wal", &seq, &idx); err != nil {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, wal.ErrFileNotFound
	}
	return names, nil
}

// ------------------------------------------------------------------- write

// model mirrors what a correct reader must return after the workload.
type model struct {
	metadata []byte
	state    raftpb.HardState // last non-empty hard state saved
	ents     []raftpb.Entry   // ents[i].Index == i+1
}

func (m *model) lastIndex() uint64 { return uint64(len(m.ents)) }

func (m *model) termAt(i uint64) uint64 {
	if i == 0 {
		return 0
	}
	return m.ents[i-1].Term
}

func randData(r *rand.Rand) []byte {
	switch p := r.Intn(100); {
	case p < 8:
		return nil
	case p < 16:
		return []byte{}
	case p < 80:
		return randBytes(r, 1+r.Intn(128))
	case p < 95:
		return randBytes(r, 128+r.Intn(1024))
	default:
		return randBytes(r, 1024+r.Intn(3*1024+1))
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

func randEntry(r *rand.Rand, index, term uint64) raftpb.Entry {
	e := raftpb.Entry{Index: index, Term: term, Type: raftpb.EntryNormal}
	switch p := r.Intn(100); {
	case p < 6:
		e.Type = raftpb.EntryConfChange
		cc := raftpb.ConfChange{
			ID:     r.Uint64(),
			Type:   raftpb.ConfChangeType(r.Intn(4)),
			NodeID: uint64(1 + r.Intn(7)),
		}
		if r.Intn(2) == 0 {
			cc.Context = randBytes(r, r.Intn(64))
		}
		e.Data = mustMarshal(&cc)
	case p < 11:
		e.Type = raftpb.EntryConfChangeV2
		cc := raftpb.ConfChangeV2{Transition: raftpb.ConfChangeTransition(r.Intn(3))}
		for i, n := 0, r.Intn(4); i < n; i++ {
			cc.Changes = append(cc.Changes, raftpb.ConfChangeSingle{
				Type:   raftpb.ConfChangeType(r.Intn(4)),
				NodeID: uint64(1 + r.Intn(7)),
			})
		}
		if r.Intn(2) == 0 {
			cc.Context = randBytes(r, r.Intn(64))
		}
		e.Data = mustMarshal(&cc)
	case p < 13:
		// the empty entry a new leader appends: no Data at all
		e.Type = raftpb.EntryNormal
		e.Data = nil
	default:
		e.Data = randData(r)
	}
	return e
}

func hsEqual(a, b raftpb.HardState) bool {
	return a.Term == b.Term && a.Vote == b.Vote && a.Commit == b.Commit
}

type marshaler interface{ Marshal() ([]byte, error) }

func mustMarshal(m marshaler) []byte {
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func cmdWrite(args []string) error {
	dir, opts, err := parseArgs(args, []string{"seed", "entries", "segment-size"}, []string{"no-verify"})
	if err != nil {
		return err
	}
	seed, err := optInt(opts, "seed", 1)
	if err != nil {
		return err
	}
	nEntries, err := optUint(opts, "entries", 1000)
	if err != nil {
		return err
	}
	segSize, err := optInt(opts, "segment-size", 64*1000*1000)
	if err != nil {
		return err
	}
	if segSize < 64 {
		return fmt.Errorf("--segment-size must be at least 64")
	}
	wal.SegmentSizeBytes = segSize

	r := rand.New(rand.NewSource(seed))
	m := &model{}
	m.metadata = append([]byte(fmt.Sprintf("etcdwal seed=%d ", seed)), randBytes(r, r.Intn(48))...)

	lg := zap.NewNop()
	w, err := wal.Create(lg, dir, m.metadata)
	if err != nil {
		return fmt.Errorf("wal.Create: %v", err)
	}

	var (
		written   uint64 // entries handed to Save, truncation rewrites included
		snapIndex uint64 // last snapshot marker index
		nSnaps    int
		nTruncs   int
		nSaves    int
	)
	term := uint64(1 + r.Intn(3))
	vote := uint64(1 + r.Intn(5))
	cur := raftpb.HardState{} // last hard state given to Save (non-empty)

	save := func(ents []raftpb.Entry, commit uint64) error {
		st := raftpb.HardState{Term: term, Vote: vote, Commit: commit}
		if hsEqual(st, cur) && len(ents) > 0 && r.Intn(2) == 0 {
			// raft's Ready carries an empty HardState when nothing changed
			st = raftpb.HardState{}
		}
		if err := w.Save(st, ents); err != nil {
			return fmt.Errorf("wal.Save: %v", err)
		}
		nSaves++
		if len(ents) > 0 {
			first := ents[0].Index
			m.ents = append(m.ents[:first-1], ents...)
			written += uint64(len(ents))
		}
		if !hsEqual(st, raftpb.HardState{}) {
			cur = st
			m.state = st
		}
		return nil
	}

	for written < nEntries {
		switch p := r.Intn(100); {
		case p < 6 && m.lastIndex() > cur.Commit+1:
			// Leader change with log truncation: a new leader at a higher
			// term overwrites the uncommitted suffix starting at some
			// index strictly above the commit index.
			from := cur.Commit + 2 + uint64(r.Int63n(int64(m.lastIndex()-cur.Commit-1)))
			if from > m.lastIndex() {
				from = m.lastIndex()
			}
			term += uint64(1 + r.Intn(2))
			vote = uint64(1 + r.Intn(5))
			n := 1 + r.Intn(6)
			ents := make([]raftpb.Entry, 0, n)
			for i := 0; i < n; i++ {
				ents = append(ents, randEntry(r, from+uint64(i), term))
			}
			if err := save(ents, cur.Commit); err != nil {
				return err
			}
			nTruncs++
		case p < 10:
			// Election without truncation: new term, new vote, no entries.
			term++
			vote = uint64(1 + r.Intn(5))
			if err := save(nil, cur.Commit); err != nil {
				return err
			}
		case p < 16 && cur.Commit > snapIndex:
			// Snapshot marker at an already committed index.
			idx := snapIndex + 1 + uint64(r.Int63n(int64(cur.Commit-snapIndex)))
			s := walpb.Snapshot{Index: idx, Term: m.termAt(idx)}
			if err := w.SaveSnapshot(s); err != nil {
				return fmt.Errorf("wal.SaveSnapshot: %v", err)
			}
			snapIndex = idx
			nSnaps++
		case p < 22 && m.lastIndex() > cur.Commit:
			// Commit advance only.
			commit := cur.Commit + 1 + uint64(r.Int63n(int64(m.lastIndex()-cur.Commit)))
			if err := save(nil, commit); err != nil {
				return err
			}
		default:
			// Append a batch at the end of the log, committing some prefix.
			n := 1 + r.Intn(8)
			if r.Intn(10) == 0 {
				n += r.Intn(32)
			}
			ents := make([]raftpb.Entry, 0, n)
			for i := 0; i < n; i++ {
				ents = append(ents, randEntry(r, m.lastIndex()+1+uint64(i), term))
			}
			commit := cur.Commit
			last := m.lastIndex() + uint64(n)
			if r.Intn(3) != 0 && last > commit {
				commit += uint64(r.Int63n(int64(last-commit) + 1))
			}
			if err := save(ents, commit); err != nil {
				return err
			}
		}
	}
	// A final snapshot marker at the commit index, if there is a new one,
	// and a final hard state.
	if cur.Commit > snapIndex && r.Intn(2) == 0 {
		s := walpb.Snapshot{Index: cur.Commit, Term: m.termAt(cur.Commit)}
		if err := w.SaveSnapshot(s); err != nil {
			return fmt.Errorf("wal.SaveSnapshot: %v", err)
		}
		nSnaps++
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("wal.Close: %v", err)
	}

	names, err := walNames(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "etcdwal write: seed=%d saves=%d entries_written=%d last_index=%d commit=%d term=%d snapshots=%d truncations=%d segments=%d\n",
		seed, nSaves, written, m.lastIndex(), m.state.Commit, m.state.Term, nSnaps, nTruncs, len(names))

	if opts["no-verify"] == "true" {
		return nil
	}
	// Self-check: etcd's reader must return exactly the model.
	rw, err := wal.OpenForRead(lg, dir, walpb.Snapshot{})
	if err != nil {
		return fmt.Errorf("verify: open: %v", err)
	}
	md, st, ents, err := rw.ReadAll()
	if err != nil {
		return fmt.Errorf("verify: ReadAll: %v", err)
	}
	var got, want bytes.Buffer
	writeDump(&got, md, st, ents)
	writeDump(&want, m.metadata, m.state, m.ents)
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		return errors.New("verify: etcd's ReadAll disagrees with the workload model")
	}
	return nil
}
