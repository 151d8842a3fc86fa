// The one place that turns an errno into an absl::Status, and the status
// payloads the WAL attaches so callers can tell error kinds apart without
// parsing messages.
#ifndef WALRUS_CORE_ERRORS_H_
#define WALRUS_CORE_ERRORS_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace walrus {

// Maps errno `err` to a canonical code (see core/fs.h) with message
// "<what>: <strerror>", and records `err` as a payload.
absl::Status ErrnoToStatus(int err, absl::string_view what);

// The errno recorded by ErrnoToStatus, if any.
std::optional<int> ErrnoOf(const absl::Status& status);

// A DATA_LOSS status for a torn tail: an incomplete last record of the last
// segment after the last fsync, which Repair() may truncate. Distinct from
// corruption, which is never truncated.
absl::Status TornTailError(absl::string_view message);
bool IsTornTail(const absl::Status& status);

// FAILED_PRECONDITION marked as "held by another live process" (a segment
// lock), so an operator tool can tell it from other precondition failures.
absl::Status InUseError(absl::string_view message);
bool IsInUse(const absl::Status& status);

// INVALID_ARGUMENT for a request larger than the daemon accepts (its
// --max-message-bytes), marked so that tools can give it an exit code of its
// own: unlike a full disk it never succeeds on a retry.
absl::Status RequestTooLargeError(absl::string_view message);
bool IsRequestTooLarge(const absl::Status& status);

}  // namespace walrus

#endif  // WALRUS_CORE_ERRORS_H_
