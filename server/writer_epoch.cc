#include "server/writer_epoch.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace walrus {
namespace {

constexpr absl::string_view kPrefix = "walrus-writer-epoch ";

}  // namespace

absl::StatusOr<uint64_t> LoadWriterEpoch(FileSystem* fs, const std::string& path) {
  if (!fs->Exists(path)) return 0;
  absl::StatusOr<std::string> content = ReadFileToString(fs, path);
  if (!content.ok()) return content.status();
  absl::string_view text = *content;
  uint64_t epoch = 0;
  if (!absl::ConsumePrefix(&text, kPrefix) || !absl::ConsumeSuffix(&text, "\n") ||
      !absl::SimpleAtoi(text, &epoch)) {
    return absl::DataLossError(absl::StrCat(
        "writer epoch file ", path,
        " is damaged (want \"walrus-writer-epoch N\"); refusing to guess the fencing state. "
        "Restore it, or write a value above every epoch ever issued"));
  }
  // The file's bytes were synced before its rename, but a writer killed
  // between the rename and the directory fsync leaves the rename in the page
  // cache only. This walrusd is about to enforce the epoch it read, so make
  // the rename durable first: a power loss must not bring an older one back.
  if (absl::Status s = fs->SyncDir(ParentDir(path)); !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("making writer epoch file ", path, " durable: ", s.message()));
  }
  return epoch;
}

absl::Status StoreWriterEpoch(FileSystem* fs, const std::string& path, uint64_t epoch) {
  const std::string tmp = path + ".tmp";
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs->NewWritableFile(tmp);
  if (!file.ok()) return file.status();
  absl::Status s = (*file)->Append(absl::StrCat(kPrefix, epoch, "\n"));
  if (s.ok()) s = (*file)->Sync();
  absl::Status closed = (*file)->Close();
  if (s.ok()) s = closed;
  // The rename is the commit point; the tmp file must be durable before it,
  // and the directory after it, or a crash could leave an empty epoch file.
  if (s.ok()) s = fs->Rename(tmp, path);
  if (s.ok()) s = fs->SyncDir(ParentDir(path));
  if (!s.ok()) {
    (void)fs->RemoveFile(tmp);
    return absl::Status(
        s.code(), absl::StrCat("storing writer epoch ", epoch, " in ", path, ": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace walrus
