#pragma once

// Reads Redis's per-command call counts (INFO commandstats) over a short blocking connection, for
// the recovery mode's count of the history reads Redis served. Redis 7 counts the commands a
// function runs (redis.call) under their own names as well as the FCALL itself: the relay's
// history publishes show as FCALL and XADD, its reads as FCALL and, when there is something to
// read, XRANGE or XREVRANGE (adapters/redis_functions.lua).

#include <cstdint>
#include <map>
#include <string>

namespace wsrelay::loadgen {

// cmdstat name without the prefix ("xrange", "fcall") -> calls.
using CommandCalls = std::map<std::string, uint64_t>;

// Connects to HOST:PORT, sends INFO commandstats and parses the answer; at most `timeout_ms` in
// all. False with `error` set when Redis could not be asked or answered something else.
bool readCommandCalls(const std::string& host_port, CommandCalls& out, std::string& error,
                      int timeout_ms = 2000);

// b - a per command (a command missing from `a` counts from 0).
CommandCalls callsBetween(const CommandCalls& a, const CommandCalls& b);

}  // namespace wsrelay::loadgen
