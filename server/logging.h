// spdlog set-up for idemd: text lines or JSON lines on stderr.
#pragma once

#include <string>

#include "server/config.h"
#include "util/status.h"

namespace idem::server {

// Installs the default logger. InvalidArgument for an unknown level.
Status SetUpLogging(LogFormat format, const std::string& level);

// `text` as the inside of a JSON string (quotes, backslashes and control
// characters escaped).
std::string JsonEscape(std::string_view text);

}  // namespace idem::server
