#pragma once

// The processes of the server under test (--server-pid, repeatable): their CPU over the measured
// span and their RSS, summed, and each one's share. A server that forks workers (Node cluster,
// nginx) is measured by passing every PID: /proc/PID/stat counts all threads of a process but
// not its children.

#include <cstdint>
#include <string>
#include <vector>

namespace wsrelay::loadgen {

class ServerProcesses {
public:
    explicit ServerProcesses(std::vector<int> pids) : pids_(std::move(pids)) {}

    bool empty() const { return pids_.empty(); }

    // Reads every process's utime + stime now, the start of the measured span.
    void markCpu();
    // Reads them again, the end of the span.
    void endCpu();

    // Appends ,"server_pids":[...],"server_cpu_s":X,"server_cpu_us_per_UNIT":Y,
    // "server_cpu_by_pid":[{"pid":P,"cpu_s":X,"cpu_us_per_UNIT":Y}...], and the legacy
    // "relay_cpu_s"/"relay_cpu_us_per_UNIT" with the same sums. Nothing without PIDs; when a
    // process could not be read, only the pids and "server_cpu_error".
    void appendCpu(std::string& json, const char* unit, uint64_t units) const;

    // Summed VmRSS in KiB; negative when a process could not be read.
    long rssKib() const;
    // Appends ,"server_rss_before_kib","server_rss_after_kib","server_rss_per_connection_bytes"
    // (and the legacy relay_* names) for `connections` opened between the two readings.
    void appendRss(std::string& json, long before_kib, long after_kib, uint64_t connections) const;

    // Summed CPU seconds over the span; negative when unreadable.
    double cpuSeconds() const;

private:
    std::vector<int> pids_;
    std::vector<double> start_;
    std::vector<double> end_;
};

}  // namespace wsrelay::loadgen
