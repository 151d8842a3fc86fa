// libFuzzer target: the frame decoder over one arbitrary segment file.
// Invariants: no crash or sanitizer report; every record handed to the
// visitor verifies under an independent CRC-32C and parses the same with
// protobuf's parser; positions are 8-byte aligned, increasing and inside the
// file; a decode limited to a prefix sees a prefix of the full decode's
// records.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/decoder.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/support/mem_fs.h"

namespace {

constexpr char kPath[] = "/w/0000000000000000-0000000000000000.wal";

struct Seen {
  int64_t type;
  uint64_t offset, end;
  std::string data;
};

std::vector<Seen> DecodeAll(walrus::MemFileSystem* fs, uint64_t size,
                            std::optional<uint64_t> limit) {
  walrus::Decoder decoder(fs, {kPath});
  if (limit.has_value()) decoder.LimitLastFile(*limit);
  std::vector<Seen> seen;
  uint32_t crc = 0;
  uint64_t last_end = 0;
  absl::Status status =
      decoder.Decode([&](const walrus::RecordView& r, const walrus::RecordPosition& pos) {
        FUZZ_CHECK(pos.offset == last_end, "record at %lu after one ending at %lu",
                   (unsigned long)pos.offset, (unsigned long)last_end);
        FUZZ_CHECK(pos.end > pos.offset && pos.end <= size && pos.end % 8 == 0,
                   "bad extent [%lu, %lu) of %lu", (unsigned long)pos.offset,
                   (unsigned long)pos.end, (unsigned long)size);
        std::string data(r.data);
        if (r.type == 4) {
          FUZZ_CHECK(crc == 0 || r.crc == crc, "crc record breaks the chain");
          crc = r.crc;
        } else {
          uint32_t want = walrus::fuzz::SlowCrc32c(crc, data);
          FUZZ_CHECK(want == r.crc, "served a record whose CRC does not verify");
          crc = want;
        }
        last_end = pos.end;
        seen.push_back({r.type, pos.offset, pos.end, data});
        return absl::OkStatus();
      });
  FUZZ_CHECK(status.ok(), "decode failed on an in-memory file");
  const walrus::LogEnd& end = decoder.end();
  FUZZ_CHECK(end.offset <= size, "end offset past the file");
  FUZZ_CHECK(end.kind == walrus::LogEnd::kClean || !end.reason.empty(), "damage without reason");
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);

  // The hand-written record parser agrees with protobuf's when both accept.
  walrus::RecordView view;
  walrus::walpb::Record record;
  if (walrus::ParseRecord(bytes, &view) && record.ParseFromString(bytes)) {
    FUZZ_CHECK(record.type() == view.type && record.crc() == view.crc &&
                   record.has_data() == view.has_data && record.data() == view.data,
               "ParseRecord and protobuf disagree");
  }

  walrus::MemFileSystem fs;
  if (!fs.CreateDir("/w").ok()) return 0;
  auto file = fs.NewWritableFile(kPath);
  if (!file.ok() || !(*file)->Append(bytes).ok()) return 0;
  std::vector<Seen> full = DecodeAll(&fs, size, std::nullopt);
  uint64_t limit = size == 0 ? 0 : (data[0] * 131u) % (size + 1);
  std::vector<Seen> part = DecodeAll(&fs, size, limit);
  FUZZ_CHECK(part.size() <= full.size(), "a limited decode saw more records");
  for (size_t i = 0; i < part.size(); ++i) {
    FUZZ_CHECK(part[i].offset == full[i].offset && part[i].data == full[i].data,
               "a limited decode is not a prefix of the full one");
    FUZZ_CHECK(part[i].end <= limit, "a limited decode read past its limit");
  }
  return 0;
}
