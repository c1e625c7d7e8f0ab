#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace wsrelay {

// The container's memory limit, as the process's cgroup states it.
struct CgroupMemoryLimit {
    int64_t bytes = 0;
    std::string source;  // the file it was read from
};

// The memory limit of this process's cgroup, read under `root` (/sys/fs/cgroup) with the
// process's cgroup paths from `self_cgroup` (/proc/self/cgroup): cgroup v2 memory.max of its
// cgroup and every ancestor (the smallest wins), else cgroup v1 memory/memory.limit_in_bytes.
// nullopt when there is no limit ("max", or v1's page-rounded 2^63 - 1: any value >= 2^60).
std::optional<CgroupMemoryLimit> cgroupMemoryLimit(
    const std::string& root = "/sys/fs/cgroup",
    const std::string& self_cgroup = "/proc/self/cgroup");

// A memory.max or memory.limit_in_bytes value in bytes; nullopt for "max", a value >= 2^60 or
// text that is not a number.
std::optional<int64_t> memoryLimitFromText(std::string_view text);

// The process's memory budget (relay/common/memory_budget.h) and why: limits.memory_budget_bytes
// when set, else limits.memory_budget_percent of the cgroup's limit, else none (0).
struct MemoryBudgetChoice {
    int64_t bytes = 0;  // 0: no budget
    std::string why;    // for the startup log
};
MemoryBudgetChoice chooseMemoryBudget(const Config::Limits& limits,
                                      const std::optional<CgroupMemoryLimit>& cgroup);

}  // namespace wsrelay
