#include "relay/common/log.h"

#include <libwebsockets.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace wsrelay::log {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
thread_local const char* t_name = "main";

const char* levelName(LogLevel level) {
    switch (level) {
        case LogLevel::Debug: return "debug";
        case LogLevel::Info: return "info";
        case LogLevel::Warn: return "warn";
        case LogLevel::Error: return "error";
    }
    return "?";
}

void lwsEmit(int level, const char* line) {
    // lws 4.1.6 logs every socket adopted with a read buffer (relay/admission/head_reader.h) at
    // error level: leftover debug output, not an error.
    if (strstr(line, "calling service") != nullptr ||
        strstr(line, "deferring handling ah") != nullptr) {
        return;
    }
    LogLevel ours = (level & LLL_ERR) ? LogLevel::Error : LogLevel::Warn;
    if (!enabled(ours)) return;
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) --n;
    write(ours, "lws: %.*s", static_cast<int>(n), line);
}

}  // namespace

void setLevel(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool enabled(LogLevel level) {
    return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void setThreadName(const char* name) { t_name = name; }

void write(LogLevel level, const char* fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm utc{};
    gmtime_r(&ts.tv_sec, &utc);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &utc);
    // One fprintf per line: stdio locks the stream, so lines from workers never interleave.
    fprintf(stderr, "%s.%03ldZ %s [%s] %s\n", when, ts.tv_nsec / 1000000, levelName(level), t_name,
            msg);
}

void routeLibwebsockets() { lws_set_log_level(LLL_ERR | LLL_WARN, lwsEmit); }

}  // namespace wsrelay::log
