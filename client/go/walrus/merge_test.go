package walrus

import (
	"math"
	"testing"

	"github.com/golang/protobuf/proto"

	pb "walrus/proto/walruspb"
)

func appendOf(first, last, term uint64, crc bool) *pb.AppendRequest {
	r := &pb.AppendRequest{}
	for i := first; ; i++ {
		r.Entries = append(r.Entries, &pb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(term),
			Type: pb.EntryType_EntryNormal.Enum(), Data: []byte{byte(i)}})
		if i == last {
			break
		}
	}
	if crc {
		FillEntryCRC32C(r)
	}
	return r
}

func withHardState(r *pb.AppendRequest, hs *pb.HardState) *pb.AppendRequest {
	r.HardState = hs
	return r
}

func withEpoch(r *pb.AppendRequest, epoch uint64) *pb.AppendRequest {
	r.Epoch = epoch
	return r
}

func TestMergeable_Rules(t *testing.T) {
	hs := &pb.HardState{Term: proto.Uint64(1), Vote: proto.Uint64(1), Commit: proto.Uint64(1)}
	hsOnly := &pb.AppendRequest{HardState: hs}
	miscounted := appendOf(3, 4, 1, true)
	miscounted.EntryCrc32C = miscounted.EntryCrc32C[:1]
	cases := []struct {
		name string
		a, b *pb.AppendRequest
		want bool
	}{
		{"contiguous, same term", appendOf(1, 2, 1, true), appendOf(3, 3, 1, true), true},
		{"contiguous, term rises", appendOf(1, 2, 1, true), appendOf(3, 4, 2, true), true},
		{"neither has CRCs", appendOf(1, 2, 1, false), appendOf(3, 3, 1, false), true},
		{"the first carries an empty hard state", withHardState(appendOf(1, 1, 1, true), &pb.HardState{}), appendOf(2, 2, 1, true), true},
		{"the second carries a hard state", appendOf(1, 1, 1, true), withHardState(appendOf(2, 2, 1, true), hs), true},
		{"the first carries a hard state", withHardState(appendOf(1, 1, 1, true), hs), appendOf(2, 2, 1, true), false},
		{"a gap", appendOf(1, 2, 1, true), appendOf(4, 4, 1, true), false},
		{"an overlap", appendOf(1, 2, 1, true), appendOf(2, 3, 1, true), false},
		{"the term decreases", appendOf(1, 2, 2, true), appendOf(3, 3, 1, true), false},
		{"different epochs", withEpoch(appendOf(1, 1, 1, true), 1), withEpoch(appendOf(2, 2, 1, true), 2), false},
		{"CRCs on the first only", appendOf(1, 1, 1, true), appendOf(2, 2, 1, false), false},
		{"CRCs on the second only", appendOf(1, 1, 1, false), appendOf(2, 2, 1, true), false},
		{"a miscounted CRC list", appendOf(1, 2, 1, true), miscounted, false},
		{"the first has no entries", hsOnly, appendOf(1, 1, 1, true), false},
		{"the second has no entries", appendOf(1, 1, 1, true), hsOnly, false},
		{"the first ends at the last index", appendOf(math.MaxUint64, math.MaxUint64, 1, false), appendOf(0, 0, 1, false), false},
	}
	for _, c := range cases {
		if got := mergeable(c.a, c.b); got != c.want {
			t.Errorf("%s: mergeable = %v; want %v", c.name, got, c.want)
		}
	}
}

func queueOf(reqs ...*pb.AppendRequest) []queued {
	var q []queued
	for i, r := range reqs {
		q = append(q, queued{req: r, seq: uint64(i + 1), size: proto.Size(r)})
	}
	return q
}

func TestBatchLen_CapsAndSwitch(t *testing.T) {
	var reqs []*pb.AppendRequest
	for i := uint64(1); i <= 10; i++ {
		reqs = append(reqs, appendOf(i, i, 1, true))
	}
	q := queueOf(reqs...)
	size := q[0].size
	cases := []struct {
		name   string
		limits mergeLimits
		want   int
	}{
		{"no caps", mergeLimits{maxBytes: 1 << 20}, 10},
		{"a byte cap of three appends", mergeLimits{maxBytes: 3*size + size/2}, 3},
		{"a byte cap of exactly three appends", mergeLimits{maxBytes: 3 * size}, 3},
		{"a count cap", mergeLimits{maxBytes: 1 << 20, maxCount: 4}, 4},
		{"coalescing off", mergeLimits{off: true, maxBytes: 1 << 20}, 1},
		{"an append larger than the cap goes alone", mergeLimits{maxBytes: size / 2}, 1},
	}
	for _, c := range cases {
		if got := batchLen(q, c.limits); got != c.want {
			t.Errorf("%s: batchLen = %d; want %d", c.name, got, c.want)
		}
	}
	hs := &pb.HardState{Term: proto.Uint64(1)}
	mixed := queueOf(appendOf(1, 1, 1, true), withHardState(appendOf(2, 2, 1, true), hs),
		appendOf(3, 3, 1, true))
	if got := batchLen(mixed, mergeLimits{maxBytes: 1 << 20}); got != 2 {
		t.Errorf("a hard state ends the message: batchLen = %d; want 2", got)
	}
}

func TestBuildMessage_ConcatenatesAndLeavesTheRequestsAlone(t *testing.T) {
	hs := &pb.HardState{Term: proto.Uint64(2), Commit: proto.Uint64(1)}
	a, b := withEpoch(appendOf(1, 2, 1, true), 3), withEpoch(withHardState(appendOf(3, 3, 2, true), hs), 3)
	a.Sequence, b.Sequence = 7, 8
	aCopy, bCopy := proto.Clone(a), proto.Clone(b)
	m := buildMessage(queueOf(a, b), 4)
	want := withEpoch(withHardState(appendOf(1, 3, 0, true), hs), 3)
	want.Entries[2].Term = proto.Uint64(2)
	for i := 0; i < 2; i++ {
		want.Entries[i].Term = proto.Uint64(1)
	}
	FillEntryCRC32C(want)
	want.Sequence = 4
	if !proto.Equal(m, want) {
		t.Fatalf("buildMessage = %v; want %v", m, want)
	}
	if !proto.Equal(a, aCopy) || !proto.Equal(b, bCopy) {
		t.Fatalf("buildMessage changed the appends: %v %v", a, b)
	}
	alone := buildMessage(queueOf(a), 9)
	if alone.Sequence != 9 || a.Sequence != 7 || len(alone.Entries) != 2 {
		t.Fatalf("a message of one append = %v; the append's sequence %d", alone, a.Sequence)
	}
}
