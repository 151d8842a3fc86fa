// The helpers core/fs.h declares beside the interface: they work on any
// FileSystem.
#include "core/fs.h"

#include "absl/strings/str_cat.h"

namespace walrus {

absl::StatusOr<absl::string_view> ReadFileInto(FileSystem* fs, const std::string& path,
                                               std::string* buffer) {
  absl::StatusOr<std::unique_ptr<ReadableFile>> file = fs->NewReadableFile(path);
  if (!file.ok()) return file.status();
  absl::StatusOr<uint64_t> size = (*file)->Size();
  if (!size.ok()) return size.status();
  if (buffer->size() < *size) buffer->resize(*size);
  absl::StatusOr<size_t> n = (*file)->Read(0, *size, buffer->data());
  if (!n.ok()) return n.status();
  return absl::string_view(buffer->data(), *n);  // the file may have shrunk
}

absl::StatusOr<std::string> ReadFileToString(FileSystem* fs, const std::string& path) {
  absl::StatusOr<std::unique_ptr<ReadableFile>> file = fs->NewReadableFile(path);
  if (!file.ok()) return file.status();
  absl::StatusOr<uint64_t> size = (*file)->Size();
  if (!size.ok()) return size.status();
  std::string bytes;
  bytes.resize(*size);
  absl::StatusOr<size_t> n = (*file)->Read(0, bytes.size(), bytes.data());
  if (!n.ok()) return n.status();
  bytes.resize(*n);  // the file may have shrunk since Size()
  return bytes;
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

std::string ParentDir(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

}  // namespace walrus
