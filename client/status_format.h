// How `walrusctl status` shows a daemon's StatusResponse: a few aligned lines
// for people, or one JSON object (snake_case members, numbers as numbers,
// every field present) for scripts.
#ifndef WALRUS_CLIENT_STATUS_FORMAT_H_
#define WALRUS_CLIENT_STATUS_FORMAT_H_

#include <string>

#include "walrus.pb.h"

namespace walrus {

// Several lines, each ending in '\n'.
std::string StatusText(const v1::StatusResponse& status);
// One line of JSON, ending in '\n'.
std::string StatusJson(const v1::StatusResponse& status);

}  // namespace walrus

#endif  // WALRUS_CLIENT_STATUS_FORMAT_H_
