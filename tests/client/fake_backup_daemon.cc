#include "tests/client/fake_backup_daemon.h"

#include <filesystem>

#include "core/crc32c.h"
#include "core/segment.h"
#include "core/wal.h"

namespace walrus {

std::string MischiefName(const ::testing::TestParamInfo<Mischief>& info) {
  switch (info.param) {
    case Mischief::kNone:
      return "WellBehaved";
    case Mischief::kBadCrc:
      return "BadChunkCrc";
    case Mischief::kShortFile:
      return "FileCutShort";
    case Mischief::kUnlistedFile:
      return "UnlistedFile";
  }
  return "unknown";
}

void WriteWal(const std::string& dir) {
  WalOptions options;
  options.segment_size = 4096;
  options.prepare_in_background = false;
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(dir, "meta", options);
  ASSERT_TRUE(wal.ok()) << wal.status();
  for (uint64_t i = 1; i <= 100; i += 10) {
    ASSERT_TRUE(
        (*wal)->Save(testing::MakeState(1, 1, i), testing::MakeEntries(i, i + 9, 1, 100)).ok());
  }
  ASSERT_TRUE((*wal)->Close().ok());
  absl::StatusOr<std::vector<SegmentFile>> files = ListSegments(PosixFs(), dir);
  ASSERT_TRUE(files.ok());
  ASSERT_GE(files->size(), 2u);
  std::filesystem::resize_file(dir + "/" + files->back().name, (*wal)->durable_position().offset);
}

std::vector<v1::BackupChunk> BackupMessages(const std::string& dir, Mischief mischief) {
  std::vector<v1::BackupChunk> out;
  absl::StatusOr<std::vector<SegmentFile>> files = ListSegments(PosixFs(), dir);
  if (!files.ok()) return out;
  v1::BackupChunk& header = out.emplace_back();
  header.set_has_header(true);
  header.set_last_entry_index(100);
  std::vector<std::string> bytes;
  for (const SegmentFile& f : *files) {
    bytes.push_back(testing::ReadFile(dir + "/" + f.name));
    v1::BackupFile* file = header.add_files();
    file->set_name(f.name);
    file->set_size_bytes(bytes.back().size());
    header.set_total_bytes(header.total_bytes() + bytes.back().size());
  }
  for (size_t i = 0; i < files->size(); ++i) {
    std::string data = bytes[i];
    if (mischief == Mischief::kShortFile && i + 1 == files->size()) data.resize(data.size() / 2);
    v1::BackupChunk& chunk = out.emplace_back();
    chunk.set_file_name(mischief == Mischief::kUnlistedFile ? SegmentName(99, 99)
                                                            : (*files)[i].name);
    chunk.set_offset(0);
    chunk.set_data(data);
    chunk.set_crc32c(crc32c::Value(data) ^ (mischief == Mischief::kBadCrc ? 1 : 0));
  }
  return out;
}

}  // namespace walrus
