#pragma once

// Clocks, CPU and memory readings of this process and of the relay under test, the open-file
// limit, loopback source addresses, and the SIGINT/SIGTERM flag.

#include <netinet/in.h>

#include <cstdint>
#include <string>

namespace wsrelay::loadgen {

uint64_t nowNs();  // CLOCK_MONOTONIC

// user + system CPU seconds of this process (getrusage, every thread).
double selfCpuSeconds();
// user + system CPU seconds of another process from /proc/PID/stat; negative when unreadable.
double processCpuSeconds(int pid);
// Whether another process still runs: false once it has exited, zombie or gone.
bool processRunning(int pid);
// VmRSS of another process in KiB from /proc/PID/status; negative when unreadable.
long processRssKib(int pid);

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the resulting soft limit.
uint64_t raiseFileLimit();

// 127.0.0.(1 + i % sources): many source addresses so that ephemeral ports never run out.
in_addr sourceAddress(uint64_t i, int sources);

// Installs SIGINT/SIGTERM handlers that set the flag, and ignores SIGPIPE.
void installSignalHandlers();
bool signalled();

// Appends `s` to out as a JSON string literal.
void appendJsonString(std::string& out, const std::string& s);

// Append ,"name":v to a report object: a count, or a number printed with `fmt`.
void appendCount(std::string& json, const char* name, uint64_t v);
void appendNumber(std::string& json, const char* name, double v, const char* fmt = "%.6g");

// Closes the report object `json` (adding "first_error" when there was one) and writes it to
// stdout as one line.
void emitReport(std::string& json, const std::string& first_error);

}  // namespace wsrelay::loadgen
