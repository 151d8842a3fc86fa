// Command-line plumbing shared by walrusctl and walrus-bench: flag parsing,
// walrusctl's exit codes and how statuses map onto them, and the one JSON
// writer (JsonObject, JsonArray; strings by core/json_string.h) every --json output goes through.
#ifndef WALRUS_CLIENT_CLI_CLI_H_
#define WALRUS_CLIENT_CLI_CLI_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace walrus::cli {

// walrusctl's exit codes. 0-4 are the offline commands' (unchanged); the
// remote commands add 5-8 for what only a daemon can answer.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;        // usage, local I/O, malformed input, other errors
constexpr int kExitTornTail = 2;     // offline: torn tail (repairable)
constexpr int kExitCorrupt = 3;      // corruption (DATA_LOSS), offline or from the daemon
constexpr int kExitInUse = 4;        // offline: the directory is held by a live process
constexpr int kExitUnavailable = 5;  // daemon unreachable, shutting down, fail-stop, timeout
constexpr int kExitRefused = 6;      // the daemon refused the request; nothing was written
constexpr int kExitNotFound = 7;     // snapshot marker not found
constexpr int kExitNoSpace = 8;      // the daemon's disk is full
constexpr int kExitTooLarge = 9;     // the request is larger than the daemon accepts

// Offline commands: torn tail 2, DATA_LOSS 3, anything else 1.
int OfflineExitCode(const absl::Status& status);
// Remote commands, by the daemon's code:
//   DATA_LOSS 3; UNAVAILABLE, DEADLINE_EXCEEDED 5; FAILED_PRECONDITION,
//   INVALID_ARGUMENT, OUT_OF_RANGE, ALREADY_EXISTS 6; NOT_FOUND 7;
//   RESOURCE_EXHAUSTED 8; a request over the daemon's message size limit
//   (IsRequestTooLarge) 9; anything else 1.
int RemoteExitCode(const absl::Status& status);

// Prints "walrusctl: MESSAGE" on stderr and returns `code`.
int Fail(int code, absl::string_view message);

// --name=value or --name value; positional arguments kept in order. Flags
// named in `bool_flags` take no value ("true").
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  std::string error;  // non-empty: the command line is malformed

  bool Has(const std::string& name) const { return flags.count(name) > 0; }
};
Args ParseArgs(int argc, char** argv, int first, const std::vector<std::string>& bool_flags);

// The flags before the first positional argument only (a program's global
// flags, ahead of its command); *next is the index of that argument (argc if
// none).
Args ParseLeadingFlags(int argc, char** argv, int first, const std::vector<std::string>& bool_flags,
                       int* next);

// Leaves *out alone if the flag is absent; false (and *error) if it is not a
// non-negative integer.
bool GetUint(const Args& args, const std::string& name, uint64_t* out, std::string* error);

// The same for a non-negative decimal number (seconds, say).
bool GetDouble(const Args& args, const std::string& name, double* out, std::string* error);

// One JSON object, built member by member in the order added, with no
// spaces: {"key":value,...}. The setters are named by type so that a string
// literal can never become a bool.
class JsonObject {
 public:
  JsonObject& Number(absl::string_view key, uint64_t value);
  JsonObject& Bool(absl::string_view key, bool value);
  JsonObject& String(absl::string_view key, absl::string_view value);
  // `value` with `decimals` digits after the point ("%.3f" for 3).
  JsonObject& Double(absl::string_view key, double value, int decimals);
  JsonObject& Null(absl::string_view key);
  // `json` is a value already written as JSON (an object, an array).
  JsonObject& Raw(absl::string_view key, absl::string_view json);
  std::string Build() const { return "{" + members_ + "}"; }

 private:
  void Key(absl::string_view key);

  std::string members_;
};

// A JSON array of values already written as JSON: [a,b,...].
std::string JsonArray(const std::vector<std::string>& items);

}  // namespace walrus::cli

#endif  // WALRUS_CLIENT_CLI_CLI_H_
