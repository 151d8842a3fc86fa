#include "core/format.h"

#include <set>

#include "core/crc32c.h"
#include "core/decoder.h"
#include "core/encoder.h"
#include "gtest/gtest.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

TEST(Crc32c, StandardTestVector) {
  // RFC 3720 / the CRC catalogue's check value for CRC-32C.
  EXPECT_EQ(crc32c::Value("123456789"), 0xE3069283u);
}

TEST(Crc32c, ExtendInPiecesEqualsWhole) {
  std::string data = "the quick brown fox jumps over the lazy dog";
  uint32_t whole = crc32c::Value(data);
  for (size_t cut = 0; cut <= data.size(); ++cut) {
    uint32_t pieces = crc32c::Extend(crc32c::Value(data.substr(0, cut)), data.substr(cut));
    EXPECT_EQ(pieces, whole) << "cut at " << cut;
  }
}

TEST(Crc32c, EmptyDataLeavesCrcUnchanged) { EXPECT_EQ(crc32c::Extend(0x1234u, ""), 0x1234u); }

TEST(FrameLength, PaddedLengthSetsFlagAndPad) {
  EXPECT_EQ(EncodeFrameLength(8), 8u);
  EXPECT_EQ(EncodeFrameLength(5), 5u | (uint64_t{0x83} << 56));
  uint64_t len = 0, pad = 0;
  ASSERT_TRUE(DecodeFrameLength(EncodeFrameLength(13), &len, &pad));
  EXPECT_EQ(len, 13u);
  EXPECT_EQ(pad, 3u);
}

TEST(FrameLength, InconsistentPadIsMalformed) {
  uint64_t len = 0, pad = 0;
  EXPECT_FALSE(DecodeFrameLength(8 | (uint64_t{0x83} << 56), &len, &pad));  // 8 needs no pad
  EXPECT_FALSE(DecodeFrameLength(5, &len, &pad));                           // 5 needs pad 3
  EXPECT_FALSE(DecodeFrameLength(5 | (uint64_t{0x43} << 56), &len, &pad));  // flag bit missing
  EXPECT_FALSE(DecodeFrameLength(8 | (uint64_t{0x80} << 56), &len, &pad));  // flag without pad
}

TEST(SegmentName, RoundTripsAndRejectsOtherNames) {
  EXPECT_EQ(SegmentName(1, 0x2a), "0000000000000001-000000000000002a.wal");
  std::optional<SegmentId> id = ParseSegmentName("00000000000000ff-0000000000001000.wal");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->seq, 0xffu);
  EXPECT_EQ(id->index, 0x1000u);
  EXPECT_FALSE(ParseSegmentName("0000000000000001-000000000000002a.wal.broken"));
  EXPECT_FALSE(ParseSegmentName("0.tmp"));
  EXPECT_FALSE(ParseSegmentName("000000000000000g-000000000000002a.wal"));
  EXPECT_FALSE(ParseSegmentName("0000000000000001_000000000000002a.wal"));
}

TEST(Encoder, EntryBytesMatchProtobufSerialization) {
  raftpb::Entry entry = testing::MakeEntry(7, 3, "payload");
  entry.set_type(raftpb::EntryConfChange);
  std::string ours;
  Encoder::MarshalEntry(entry, &ours);
  EXPECT_EQ(ours, entry.SerializeAsString());
}

TEST(Encoder, EntryWithoutDataOmitsDataFieldLikeGoNil) {
  raftpb::Entry entry;
  entry.set_index(1);
  std::string ours;
  Encoder::MarshalEntry(entry, &ours);
  // Type, Term and Index are always present (gogoproto non-nullable).
  EXPECT_EQ(ours, std::string("\x08\x00\x10\x00\x18\x01", 6));
}

TEST(Encoder, HardStateAndSnapshotBytesMatchProtobuf) {
  raftpb::HardState state = testing::MakeState(5, 2, 9);
  std::string ours;
  Encoder::MarshalHardState(state, &ours);
  EXPECT_EQ(ours, state.SerializeAsString());
  walpb::Snapshot snapshot = testing::MakeSnapshot(100, 4);
  Encoder::MarshalSnapshot(snapshot, &ours);
  EXPECT_EQ(ours, snapshot.SerializeAsString());
}

TEST(Encoder, FramesAreAlignedAndChainTheCrc) {
  Encoder encoder(0);
  encoder.AddCrcRecord();
  encoder.AddMetadata("meta");
  encoder.AddEntry(testing::MakeEntry(1, 1, "abc"));
  absl::string_view bytes = encoder.pending();
  ASSERT_EQ(bytes.size() % kFrameAlignment, 0u);

  uint32_t crc = 0;
  size_t offset = 0;
  std::vector<int64_t> types;
  while (offset < bytes.size()) {
    uint64_t field;
    std::memcpy(&field, bytes.data() + offset, 8);
    uint64_t len = 0, pad = 0;
    ASSERT_TRUE(DecodeFrameLength(field, &len, &pad));
    RecordView record;
    ASSERT_TRUE(ParseRecord(bytes.substr(offset + 8, len), &record));
    walpb::Record proto;
    ASSERT_TRUE(proto.ParseFromArray(bytes.data() + offset + 8, static_cast<int>(len)));
    EXPECT_EQ(proto.crc(), record.crc);
    if (record.type != static_cast<int64_t>(RecordType::kCrc)) {
      crc = crc32c::Extend(crc, record.data);
    }
    EXPECT_EQ(record.crc, crc) << "record type " << record.type;
    types.push_back(record.type);
    offset += 8 + len + pad;
  }
  EXPECT_EQ(types, (std::vector<int64_t>{4, 1, 2}));
  EXPECT_EQ(encoder.crc(), crc);
}

TEST(Encoder, RollbackRestoresBufferAndCrc) {
  Encoder encoder(0);
  encoder.AddMetadata("m");
  Encoder::Mark mark = encoder.mark();
  encoder.AddEntry(testing::MakeEntry(1, 1));
  encoder.RollbackTo(mark);
  EXPECT_EQ(encoder.pending_size(), mark.size);
  EXPECT_EQ(encoder.crc(), mark.crc);
}

// AddEntry writes its frames in place; they must be the frames of the
// general path (MarshalEntry, then AddRecord) byte for byte, for every CRC
// varint length (the in-place path reserves 5 bytes and moves the payload
// back for shorter ones), with and without data.
TEST(Encoder, AddEntryFramesEqualTheGeneralPathForEveryCrcLength) {
  Encoder fast(0x1234);
  Encoder general(0x1234);
  std::string payload;
  std::set<size_t> crc_lengths;
  for (uint64_t i = 1; i <= 2000; ++i) {
    raftpb::Entry e;
    e.set_index(i);
    e.set_term(i / 7 + 1);
    e.set_type(static_cast<raftpb::EntryType>(i % 3));
    if (i % 11 != 0) e.set_data(std::string((i * 37) % 300, static_cast<char>('a' + i % 26)));
    fast.AddEntry(e);
    Encoder::MarshalEntry(e, &payload);
    absl::string_view view = payload;
    general.AddRecord(RecordType::kEntry, &view);
    crc_lengths.insert(general.crc() < (1u << 7)    ? 1
                       : general.crc() < (1u << 14) ? 2
                       : general.crc() < (1u << 21) ? 3
                       : general.crc() < (1u << 28) ? 4
                                                    : 5);
    ASSERT_EQ(fast.crc(), general.crc()) << "entry " << i;
    ASSERT_EQ(fast.pending(), general.pending()) << "entry " << i;
  }
  EXPECT_GE(crc_lengths.size(), 2u);  // the short-varint case was taken
}

// After ClearPending(offset) the next pending bytes start at that offset
// within a page of memory (what lets a direct write take them in place), and
// the bytes, the CRC and rolling back are as with the bytes anywhere else.
TEST(Encoder, PendingBytesStartAtTheNextFileOffsetWithinAPage) {
  Encoder placed(7);
  Encoder plain(7);
  uint64_t offset = 0;
  for (uint64_t i = 1; i <= 40; ++i) {
    raftpb::Entry e = testing::MakeEntry(i, 1);
    e.set_data(std::string((i * 1531) % 9000, static_cast<char>('a' + i % 26)));
    placed.AddEntry(e);
    plain.AddEntry(e);
    ASSERT_EQ(reinterpret_cast<uintptr_t>(placed.pending().data()) % Encoder::kPage,
              offset % Encoder::kPage)
        << "entry " << i;
    ASSERT_EQ(placed.pending(), plain.pending()) << "entry " << i;
    if (i % 5 == 0) {
      const Encoder::Mark mark = placed.mark();
      placed.AddEntry(testing::MakeEntry(i + 1, 1));
      placed.RollbackTo(mark);
      ASSERT_EQ(placed.pending(), plain.pending()) << "rolled back after entry " << i;
    }
    if (i % 3 == 0) {  // written: the next bytes go after these in the file
      offset += placed.pending_size();
      placed.ClearPending(offset);
      plain.ClearPending(0);
      ASSERT_EQ(placed.pending_size(), 0u);
    }
  }
  EXPECT_EQ(placed.crc(), plain.crc());
}

TEST(ParseRecord, RejectsTruncatedAndBadWireTypes) {
  RecordView record;
  const std::string valid("\x08\x02\x10\x05\x1a\x01z", 7);  // record.data points into it
  EXPECT_TRUE(ParseRecord(valid, &record));
  EXPECT_EQ(record.type, 2);
  EXPECT_EQ(record.crc, 5u);
  EXPECT_EQ(record.data, "z");
  EXPECT_FALSE(ParseRecord(std::string("\x08\x02\x1a\x05z", 5), &record));  // data runs past end
  EXPECT_FALSE(ParseRecord(std::string("\x0f\x00", 2), &record));           // wire type 7
  EXPECT_FALSE(ParseRecord(std::string("\x08\xff", 2), &record));           // truncated varint
  EXPECT_FALSE(ParseRecord(std::string("\x10\xff\xff\xff\xff\x1f", 6), &record));  // crc > 32 bits
}

TEST(ParseRecord, SkipsUnknownFields) {
  RecordView record;
  // field 9 varint, field 10 fixed32, then type 3.
  EXPECT_TRUE(ParseRecord(std::string("\x48\x01\x55\x00\x00\x00\x00\x08\x03", 9), &record));
  EXPECT_EQ(record.type, 3);
}

}  // namespace
}  // namespace walrus
