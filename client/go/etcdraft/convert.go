package etcdraft

import (
	"github.com/golang/protobuf/proto"
	"go.etcd.io/etcd/raft"
	"go.etcd.io/etcd/raft/raftpb"

	pb "walrus/proto/walruspb"
)

// The conversions between etcd's raftpb and walrus's messages: the same
// fields and numbers, different Go types (etcd's are gogo-generated values,
// walrus's proto2 pointers).

// EntriesToWalrus converts etcd entries to walrus entries.
func EntriesToWalrus(entries []raftpb.Entry) []*pb.Entry {
	out := make([]*pb.Entry, len(entries))
	for i := range entries {
		e := &entries[i]
		out[i] = &pb.Entry{
			Term:  proto.Uint64(e.Term),
			Index: proto.Uint64(e.Index),
			Type:  pb.EntryType(e.Type).Enum(),
			Data:  e.Data,
		}
	}
	return out
}

// EntriesFromWalrus converts walrus entries to etcd entries.
func EntriesFromWalrus(entries []*pb.Entry) []raftpb.Entry {
	out := make([]raftpb.Entry, len(entries))
	for i, e := range entries {
		out[i] = raftpb.Entry{
			Term:  e.GetTerm(),
			Index: e.GetIndex(),
			Type:  raftpb.EntryType(e.GetType()),
			Data:  e.Data,
		}
	}
	return out
}

// HardStateToWalrus converts an etcd hard state.
func HardStateToWalrus(hs raftpb.HardState) *pb.HardState {
	return &pb.HardState{Term: proto.Uint64(hs.Term), Vote: proto.Uint64(hs.Vote), Commit: proto.Uint64(hs.Commit)}
}

// HardStateFromWalrus converts a walrus hard state (nil: empty).
func HardStateFromWalrus(hs *pb.HardState) raftpb.HardState {
	return raftpb.HardState{Term: hs.GetTerm(), Vote: hs.GetVote(), Commit: hs.GetCommit()}
}

// memoryView is the LogView of a log cached in this process.
type memoryView struct{ *raft.MemoryStorage }

// NewMemoryView returns a LogView that holds the log in memory (etcd's
// MemoryStorage): Open fills it with ReadAll and Save keeps it in step.
func NewMemoryView() LogView { return memoryView{raft.NewMemoryStorage()} }
