package hashiraft

import (
	"encoding/binary"
	"fmt"

	"github.com/golang/protobuf/proto"
	"github.com/hashicorp/raft"

	pb "walrus/proto/walruspb"
)

// envelopeVersion is the first byte of every entry's data. The envelope:
//
//	byte 0        envelopeVersion (1)
//	byte 1        hashicorp raft LogType
//	uvarint       length of Extensions
//	bytes         Extensions
//	bytes         Data (the rest)
const envelopeVersion = 1

func encodeLog(l *raft.Log) *pb.Entry {
	b := make([]byte, 2, 2+binary.MaxVarintLen64+len(l.Extensions)+len(l.Data))
	b[0], b[1] = envelopeVersion, byte(l.Type)
	var n [binary.MaxVarintLen64]byte
	b = append(b, n[:binary.PutUvarint(n[:], uint64(len(l.Extensions)))]...)
	b = append(b, l.Extensions...)
	b = append(b, l.Data...)
	return &pb.Entry{
		Index: proto.Uint64(l.Index),
		Term:  proto.Uint64(l.Term),
		Type:  pb.EntryType_EntryNormal.Enum(),
		Data:  b,
	}
}

func decodeLog(e *pb.Entry) (*raft.Log, error) {
	b := e.Data
	if len(b) < 3 || b[0] != envelopeVersion {
		return nil, fmt.Errorf("hashiraft: entry %d is not a hashicorp raft log entry", e.GetIndex())
	}
	extLen, n := binary.Uvarint(b[2:])
	if n <= 0 || uint64(len(b)-2-n) < extLen {
		return nil, fmt.Errorf("hashiraft: entry %d: bad envelope", e.GetIndex())
	}
	rest := b[2+n:]
	l := &raft.Log{Index: e.GetIndex(), Term: e.GetTerm(), Type: raft.LogType(b[1])}
	if extLen > 0 {
		l.Extensions = rest[:extLen]
	}
	if len(rest[extLen:]) > 0 {
		l.Data = rest[extLen:]
	}
	return l, nil
}
