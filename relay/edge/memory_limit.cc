#include "relay/edge/memory_limit.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace wsrelay {
namespace {

// cgroup v1 writes "no limit" as LONG_MAX rounded down to a page (9223372036854771712); nobody
// gives a relay an exabyte.
constexpr int64_t kNoLimitFrom = int64_t{1} << 60;

std::optional<std::string> readFile(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string_view trimmed(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    return text;
}

// The path of the line of /proc/self/cgroup whose controller list is `controllers` exactly ("" is
// the v2 line "0::/path") or contains it ("memory" in "4:memory:/path").
std::optional<std::string> cgroupPath(std::string_view self_cgroup, std::string_view controller) {
    while (!self_cgroup.empty()) {
        const size_t eol = self_cgroup.find('\n');
        std::string_view line = self_cgroup.substr(0, eol);
        self_cgroup = eol == std::string_view::npos ? "" : self_cgroup.substr(eol + 1);
        const size_t first = line.find(':');
        const size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
        if (second == std::string_view::npos) continue;
        const std::string_view list = line.substr(first + 1, second - first - 1);
        bool match = controller.empty() && list.empty();
        for (size_t at = 0; !controller.empty() && at <= list.size();) {
            const size_t comma = std::min(list.find(',', at), list.size());
            if (list.substr(at, comma - at) == controller) match = true;
            at = comma + 1;
        }
        if (match) return std::string(line.substr(second + 1));
    }
    return std::nullopt;
}

std::string withoutTrailingSlash(std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    return path == "/" ? "" : path;
}

std::optional<CgroupMemoryLimit> fromV2(const std::string& root, std::string_view self_cgroup) {
    std::optional<std::string> path = cgroupPath(self_cgroup, "");
    if (!path) return std::nullopt;
    // A limit may sit on any ancestor (a pod's cgroup above its container's): the smallest wins.
    std::optional<CgroupMemoryLimit> best;
    std::string dir = withoutTrailingSlash(*path);
    while (true) {
        const std::string file = root + dir + "/memory.max";
        if (std::optional<std::string> text = readFile(file)) {
            std::optional<int64_t> bytes = memoryLimitFromText(*text);
            if (bytes && (!best || *bytes < best->bytes)) best = CgroupMemoryLimit{*bytes, file};
        }
        if (dir.empty()) break;
        dir = withoutTrailingSlash(dir.substr(0, dir.rfind('/')));
    }
    return best;
}

std::optional<CgroupMemoryLimit> fromV1(const std::string& root, std::string_view self_cgroup) {
    // The process's own memory cgroup first (a host view), then the mount's root (a container's
    // view, where the mount shows its own cgroup).
    std::optional<std::string> path = cgroupPath(self_cgroup, "memory");
    for (const std::string& dir :
         {path ? withoutTrailingSlash(*path) : std::string(), std::string()}) {
        const std::string file = root + "/memory" + dir + "/memory.limit_in_bytes";
        if (std::optional<std::string> text = readFile(file)) {
            std::optional<int64_t> bytes = memoryLimitFromText(*text);
            if (bytes) return CgroupMemoryLimit{*bytes, file};
            return std::nullopt;  // the process's cgroup has no limit
        }
    }
    return std::nullopt;
}

std::string mebibytes(int64_t bytes) { return std::to_string(bytes / (1024 * 1024)) + " MiB"; }

}  // namespace

std::optional<int64_t> memoryLimitFromText(std::string_view text) {
    text = trimmed(text);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    if (value <= 0 || value >= kNoLimitFrom) return std::nullopt;
    return value;
}

std::optional<CgroupMemoryLimit> cgroupMemoryLimit(const std::string& root,
                                                   const std::string& self_cgroup) {
    const std::string cgroups = readFile(self_cgroup).value_or("");
    if (std::optional<CgroupMemoryLimit> v2 = fromV2(root, cgroups)) return v2;
    // A v2 host answers here too when /sys/fs/cgroup/memory does not exist: nothing to read.
    return fromV1(root, cgroups);
}

MemoryBudgetChoice chooseMemoryBudget(const Config::Limits& limits,
                                      const std::optional<CgroupMemoryLimit>& cgroup) {
    if (limits.memory_budget_bytes > 0) {
        return {limits.memory_budget_bytes,
                std::to_string(limits.memory_budget_bytes) + " bytes (limits.memory_budget_bytes)"};
    }
    if (!cgroup) {
        return {0, "none (no cgroup memory limit; set limits.memory_budget_bytes to have one)"};
    }
    const int64_t percent = limits.memory_budget_percent;
    const int64_t bytes = cgroup->bytes / 100 * percent + cgroup->bytes % 100 * percent / 100;
    return {bytes, std::to_string(bytes) + " bytes (" + mebibytes(bytes) + ": " +
                       std::to_string(limits.memory_budget_percent) +
                       " % (limits.memory_budget_percent) of the cgroup limit " +
                       mebibytes(cgroup->bytes) + " in " + cgroup->source + ")"};
}

}  // namespace wsrelay
