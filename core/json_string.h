// JSON string literals, for the text walrus writes as JSON: walrusd's log
// lines (--log-format=json) and walrusctl's --json output.
#ifndef WALRUS_CORE_JSON_STRING_H_
#define WALRUS_CORE_JSON_STRING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace walrus {

// Appends `text` to *out as a JSON string literal, quotes included: '"' and
// '\' escaped, control characters as \n, \r, \t or \u00XX; every other byte
// as it is (UTF-8 passes through).
void AppendJsonString(absl::string_view text, std::string* out);

// The same, returned.
std::string JsonString(absl::string_view text);

}  // namespace walrus

#endif  // WALRUS_CORE_JSON_STRING_H_
