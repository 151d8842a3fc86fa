#include "client/cli/cli.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/errors.h"
#include "core/json_string.h"

namespace walrus::cli {

int OfflineExitCode(const absl::Status& status) {
  if (IsTornTail(status)) return kExitTornTail;
  if (status.code() == absl::StatusCode::kDataLoss) return kExitCorrupt;
  return kExitError;
}

int RemoteExitCode(const absl::Status& status) {
  if (IsRequestTooLarge(status)) return kExitTooLarge;
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kDataLoss:
      return kExitCorrupt;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
      return kExitRefused;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kResourceExhausted:
      return kExitNoSpace;
    default:
      return kExitError;
  }
}

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "walrusctl: %.*s\n", static_cast<int>(message.size()), message.data());
  return code;
}

namespace {

// Parses from argv[first]; with `leading_only`, stops at the first
// positional argument and sets *next to its index.
Args ParseFrom(int argc, char** argv, int first, const std::vector<std::string>& bool_flags,
               bool leading_only, int* next) {
  Args args;
  int i = first;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (leading_only) break;
      args.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      args.flags[name.substr(0, eq)] = name.substr(eq + 1);
    } else if (std::find(bool_flags.begin(), bool_flags.end(), name) != bool_flags.end()) {
      args.flags[name] = "true";
    } else if (i + 1 < argc) {
      args.flags[name] = argv[++i];
    } else {
      args.error = absl::StrCat("flag --", name, " needs a value");
    }
  }
  if (next != nullptr) *next = i;
  return args;
}

}  // namespace

Args ParseArgs(int argc, char** argv, int first, const std::vector<std::string>& bool_flags) {
  return ParseFrom(argc, argv, first, bool_flags, /*leading_only=*/false, nullptr);
}

Args ParseLeadingFlags(int argc, char** argv, int first, const std::vector<std::string>& bool_flags,
                       int* next) {
  return ParseFrom(argc, argv, first, bool_flags, /*leading_only=*/true, next);
}

bool GetUint(const Args& args, const std::string& name, uint64_t* out, std::string* error) {
  auto it = args.flags.find(name);
  if (it == args.flags.end()) return true;
  if (!absl::SimpleAtoi(it->second, out)) {
    *error = absl::StrCat("--", name, " must be a non-negative integer, got '", it->second, "'");
    return false;
  }
  return true;
}

bool GetDouble(const Args& args, const std::string& name, double* out, std::string* error) {
  auto it = args.flags.find(name);
  if (it == args.flags.end()) return true;
  double value;
  if (!absl::SimpleAtod(it->second, &value) || !std::isfinite(value) || value < 0) {
    *error = absl::StrCat("--", name, " must be a non-negative number, got '", it->second, "'");
    return false;
  }
  *out = value;
  return true;
}

void JsonObject::Key(absl::string_view key) {
  absl::StrAppend(&members_, members_.empty() ? "" : ",", JsonString(key), ":");
}

JsonObject& JsonObject::Number(absl::string_view key, uint64_t value) {
  Key(key);
  absl::StrAppend(&members_, value);
  return *this;
}

JsonObject& JsonObject::Bool(absl::string_view key, bool value) {
  Key(key);
  members_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::String(absl::string_view key, absl::string_view value) {
  Key(key);
  AppendJsonString(value, &members_);
  return *this;
}

JsonObject& JsonObject::Double(absl::string_view key, double value, int decimals) {
  Key(key);
  absl::StrAppend(&members_, absl::StrFormat("%.*f", decimals, value));
  return *this;
}

JsonObject& JsonObject::Null(absl::string_view key) {
  Key(key);
  members_ += "null";
  return *this;
}

JsonObject& JsonObject::Raw(absl::string_view key, absl::string_view json) {
  Key(key);
  absl::StrAppend(&members_, json);
  return *this;
}

std::string JsonArray(const std::vector<std::string>& items) {
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

}  // namespace walrus::cli
