#include "server_processes.h"

#include <cstdio>

#include "process_info.h"

namespace wsrelay::loadgen {
namespace {

std::string perUnit(const char* prefix, const char* unit) {
    return std::string(prefix) + "_us_per_" + unit;
}

}  // namespace

void ServerProcesses::markCpu() {
    start_.clear();
    for (int pid : pids_) start_.push_back(processCpuSeconds(pid));
}

void ServerProcesses::endCpu() {
    end_.clear();
    for (int pid : pids_) end_.push_back(processCpuSeconds(pid));
}

double ServerProcesses::cpuSeconds() const {
    if (pids_.empty() || start_.size() != pids_.size() || end_.size() != pids_.size()) return -1;
    double sum = 0;
    for (size_t i = 0; i < pids_.size(); ++i) {
        if (start_[i] < 0 || end_[i] < 0) return -1;
        sum += end_[i] - start_[i];
    }
    return sum;
}

void ServerProcesses::appendCpu(std::string& json, const char* unit, uint64_t units) const {
    if (pids_.empty()) return;
    json += ",\"server_pids\":[";
    for (size_t i = 0; i < pids_.size(); ++i) {
        if (i) json += ',';
        json += std::to_string(pids_[i]);
    }
    json += ']';
    const double total = cpuSeconds();
    if (total < 0) {
        json += ",\"server_cpu_error\":\"a server process could not be read from /proc\"";
        return;
    }
    auto per = [units](double s) { return units ? s * 1e6 / double(units) : 0.0; };
    for (const char* prefix : {"server_cpu", "relay_cpu"}) {
        appendNumber(json, (std::string(prefix) + "_s").c_str(), total, "%.3f");
        appendNumber(json, perUnit(prefix, unit).c_str(), per(total), "%.3f");
    }
    json += ",\"server_cpu_by_pid\":[";
    for (size_t i = 0; i < pids_.size(); ++i) {
        if (i) json += ',';
        json += "{\"pid\":" + std::to_string(pids_[i]);
        appendNumber(json, "cpu_s", end_[i] - start_[i], "%.3f");
        appendNumber(json, perUnit("cpu", unit).c_str(), per(end_[i] - start_[i]), "%.3f");
        json += '}';
    }
    json += ']';
}

long ServerProcesses::rssKib() const {
    if (pids_.empty()) return -1;
    long sum = 0;
    for (int pid : pids_) {
        const long kib = processRssKib(pid);
        if (kib < 0) return -1;
        sum += kib;
    }
    return sum;
}

void ServerProcesses::appendRss(std::string& json, long before_kib, long after_kib,
                                uint64_t connections) const {
    if (pids_.empty()) return;
    if (before_kib < 0 || after_kib < 0) {
        json += ",\"server_rss_error\":\"a server process could not be read from /proc\"";
        return;
    }
    const double per_connection =
        connections ? double(after_kib - before_kib) * 1024.0 / double(connections) : 0.0;
    for (const char* prefix : {"server", "relay"}) {
        const std::string p(prefix);
        appendNumber(json, (p + "_rss_before_kib").c_str(), double(before_kib), "%.0f");
        appendNumber(json, (p + "_rss_after_kib").c_str(), double(after_kib), "%.0f");
        appendNumber(json, (p + "_rss_per_connection_bytes").c_str(), per_connection, "%.0f");
    }
}

}  // namespace wsrelay::loadgen
