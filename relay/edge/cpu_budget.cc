#include "relay/edge/cpu_budget.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace wsrelay {
namespace {

std::optional<long long> parseNumber(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::optional<int> wholeCpus(std::optional<long long> quota, std::optional<long long> period) {
    if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
    return static_cast<int>((*quota + *period - 1) / *period);
}

std::string readFile(const char* path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

std::optional<int> cpusFromCpuMax(std::string_view text) {
    size_t space = text.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    return wholeCpus(parseNumber(text.substr(0, space)), parseNumber(text.substr(space + 1)));
}

std::optional<int> cpusFromCfs(std::string_view quota_us, std::string_view period_us) {
    return wholeCpus(parseNumber(quota_us), parseNumber(period_us));
}

int cpuBudget() {
    int cpus = 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
    if (cpus <= 0) cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

    std::optional<int> quota = cpusFromCpuMax(readFile("/sys/fs/cgroup/cpu.max"));
    if (!quota) {
        quota = cpusFromCfs(readFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                            readFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us"));
    }
    if (quota) cpus = std::min(cpus, *quota);
    return std::max(cpus, 1);
}

}  // namespace wsrelay
