#pragma once

#include "conf/config.h"

// Levelled logging to stderr. The level check happens before any formatting, so a disabled
// debug line costs one load and a compare.
namespace wsrelay::log {

void setLevel(LogLevel level);
bool enabled(LogLevel level);
// Names the calling thread in every line it logs ("main", "w0", ...).
void setThreadName(const char* name);
void write(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Routes libwebsockets' own errors and warnings through write().
void routeLibwebsockets();

}  // namespace wsrelay::log

#define WSR_LOG(level, ...)                                                                        \
    do {                                                                                           \
        if (::wsrelay::log::enabled(::wsrelay::LogLevel::level))                                   \
            ::wsrelay::log::write(::wsrelay::LogLevel::level, __VA_ARGS__);                        \
    } while (0)
