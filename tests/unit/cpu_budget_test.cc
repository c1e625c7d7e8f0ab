#include "relay/edge/cpu_budget.h"

#include <gtest/gtest.h>

namespace wsrelay {
namespace {

TEST(CpuBudgetTest, CgroupV2CpuMax) {
    EXPECT_EQ(cpusFromCpuMax("max 100000\n"), std::nullopt);
    EXPECT_EQ(cpusFromCpuMax("200000 100000\n"), 2);
    EXPECT_EQ(cpusFromCpuMax("150000 100000"), 2);  // 1.5 CPUs: round up, never starve a worker
    EXPECT_EQ(cpusFromCpuMax("50000 100000"), 1);
    EXPECT_EQ(cpusFromCpuMax(""), std::nullopt);
    EXPECT_EQ(cpusFromCpuMax("garbage"), std::nullopt);
    EXPECT_EQ(cpusFromCpuMax("1x 100000"), std::nullopt);
}

TEST(CpuBudgetTest, CgroupV1Cfs) {
    EXPECT_EQ(cpusFromCfs("-1\n", "100000\n"), std::nullopt);
    EXPECT_EQ(cpusFromCfs("400000\n", "100000\n"), 4);
    EXPECT_EQ(cpusFromCfs("", ""), std::nullopt);
    EXPECT_EQ(cpusFromCfs("100000", "0"), std::nullopt);
}

TEST(CpuBudgetTest, ThisProcessGetsAtLeastOneWorker) { EXPECT_GE(cpuBudget(), 1); }

}  // namespace
}  // namespace wsrelay
