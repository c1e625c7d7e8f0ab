#pragma once

#include <optional>
#include <string_view>

namespace wsrelay {

// How many workers `workers: 0` starts: the CPUs this process may run on (its affinity mask),
// lowered to the container's CPU quota when there is one, so a pod limited to 2 CPUs on a 64-core
// node runs 2 workers, not 64.
int cpuBudget();

// A cgroup v2 cpu.max line ("max 100000" or "150000 100000") as whole CPUs, rounded up; nullopt
// when there is no quota or the text is not understood.
std::optional<int> cpusFromCpuMax(std::string_view text);
// cgroup v1: cpu.cfs_quota_us (-1 = none) over cpu.cfs_period_us, rounded up.
std::optional<int> cpusFromCfs(std::string_view quota_us, std::string_view period_us);

}  // namespace wsrelay
