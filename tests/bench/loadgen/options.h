#pragma once

// Command line of wsrelay_loadgen: `wsrelay_loadgen MODE [--flag value]...` (see README.md).

#include <cstdint>
#include <string>
#include <vector>

namespace wsrelay::loadgen {

enum class Mode { Fanout, Idle, Handshake };

struct Options {
    Mode mode = Mode::Fanout;
    std::vector<std::string> urls;
    int threads = 1;
    int sources = 8;        // loopback source addresses 127.0.0.1 .. 127.0.0.N
    double timeout_s = 60;  // global deadline, every mode
    int connect_concurrency = 512; // connections being opened at once (fanout, idle)
    int relay_pid = 0;      // when set, the relay's CPU (fanout) or RSS (idle) is reported too
    std::string headers;    // --header lines, each ending in CRLF, added to every upgrade request

    // fanout
    uint32_t subscribers = 100;
    std::string channel = "bench";
    uint32_t channels = 1;
    double rate = 1000;
    double duration_s = 0;
    uint64_t count = 0;     // 0: rate × duration
    uint32_t size = 64;
    std::string publish_via = "client";
    double drain_timeout_s = 5; // after the last publish, how long to wait for stragglers
    bool allow_loss = false;

    // idle
    uint32_t connections = 1000;
    double hold_s = -1;     // < 0: until SIGTERM/SIGINT (or the timeout)

    // handshake
    uint32_t concurrency = 64;
};

// Parses argv; on error prints a message and the usage to stderr and exits with status 2.
Options parseOptions(int argc, char** argv);

} // namespace wsrelay::loadgen
