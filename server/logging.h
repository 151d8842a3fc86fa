// walrusd's log: spdlog to stderr, one line per event, text or JSON.
#ifndef WALRUS_SERVER_LOGGING_H_
#define WALRUS_SERVER_LOGGING_H_

#include <string>

namespace walrus {

// `format` is "text" or "json"; `level` one of trace, debug, info, warn, error.
// Times are UTC. In JSON each line is {"time":..,"level":..,"msg":..}.
void InitLogging(const std::string& format, const std::string& level);

}  // namespace walrus

#endif  // WALRUS_SERVER_LOGGING_H_
