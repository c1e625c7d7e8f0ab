// The memory budget's source: cgroup files under a root the test writes (v2 and v1 layouts, a
// container's view and a host's), and the choice between the key, the cgroup and none.

#include "relay/edge/memory_limit.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace wsrelay {
namespace {

namespace fs = std::filesystem;

class CgroupRoot : public ::testing::Test {
protected:
    void SetUp() override {
        std::string dir = (fs::temp_directory_path() / "wsrelay-cgroup-XXXXXX").string();
        ASSERT_NE(mkdtemp(dir.data()), nullptr);
        root_ = dir;
    }
    void TearDown() override { fs::remove_all(root_); }

    void write(const std::string& relative, const std::string& text) {
        const fs::path path = root_ / relative;
        fs::create_directories(path.parent_path());
        std::ofstream(path) << text;
    }
    std::optional<CgroupMemoryLimit> limit() {
        return cgroupMemoryLimit((root_ / "sys").string(), (root_ / "self_cgroup").string());
    }

    fs::path root_;
};

TEST(MemoryLimitTest, ValuesOfMemoryMaxAndLimitInBytes) {
    EXPECT_EQ(memoryLimitFromText("max\n"), std::nullopt);
    EXPECT_EQ(memoryLimitFromText("1073741824\n"), int64_t{1} << 30);
    EXPECT_EQ(memoryLimitFromText(" 536870912 "), int64_t{512} << 20);
    EXPECT_EQ(memoryLimitFromText("9223372036854771712\n"), std::nullopt);  // v1: no limit
    EXPECT_EQ(memoryLimitFromText(""), std::nullopt);
    EXPECT_EQ(memoryLimitFromText("12k"), std::nullopt);
    EXPECT_EQ(memoryLimitFromText("0"), std::nullopt);
}

TEST_F(CgroupRoot, V2TheSmallestLimitOfTheCgroupAndItsAncestorsWins) {
    write("self_cgroup", "0::/kubepods/pod1/ctr\n");
    write("sys/kubepods/pod1/ctr/memory.max", "max\n");
    write("sys/kubepods/pod1/memory.max", "536870912\n");
    write("sys/kubepods/memory.max", "1073741824\n");
    const auto found = limit();
    ASSERT_TRUE(found);
    EXPECT_EQ(found->bytes, int64_t{512} << 20);
    EXPECT_EQ(found->source, (root_ / "sys/kubepods/pod1/memory.max").string());
}

TEST_F(CgroupRoot, V2InsideACgroupNamespaceReadsTheRoot) {
    write("self_cgroup", "0::/\n");
    write("sys/memory.max", "268435456\n");
    const auto found = limit();
    ASSERT_TRUE(found);
    EXPECT_EQ(found->bytes, int64_t{256} << 20);
}

TEST_F(CgroupRoot, V2WithoutALimitIsNone) {
    write("self_cgroup", "0::/user.slice\n");
    write("sys/user.slice/memory.max", "max\n");
    EXPECT_EQ(limit(), std::nullopt);
}

TEST_F(CgroupRoot, V1ReadsTheProcessMemoryCgroupThenTheMountRoot) {
    write("self_cgroup", "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n");
    write("sys/memory/docker/abc/memory.limit_in_bytes", "134217728\n");
    auto found = limit();
    ASSERT_TRUE(found);
    EXPECT_EQ(found->bytes, int64_t{128} << 20);
    EXPECT_EQ(found->source, (root_ / "sys/memory/docker/abc/memory.limit_in_bytes").string());

    // A container's view: the mount shows its own cgroup at the root.
    fs::remove_all(root_ / "sys/memory/docker");
    write("sys/memory/memory.limit_in_bytes", "67108864\n");
    found = limit();
    ASSERT_TRUE(found);
    EXPECT_EQ(found->bytes, int64_t{64} << 20);
}

TEST_F(CgroupRoot, V1UnlimitedIsNone) {
    // What this project's CI machine shows.
    write("self_cgroup", "4:memory:/\n");
    write("sys/memory/memory.limit_in_bytes", "9223372036854771712\n");
    EXPECT_EQ(limit(), std::nullopt);
}

TEST_F(CgroupRoot, NoCgroupFilesIsNone) { EXPECT_EQ(limit(), std::nullopt); }

TEST(MemoryLimitTest, TheKeyWinsThenThePercentageOfTheCgroupThenNone) {
    Config::Limits limits;
    const CgroupMemoryLimit cgroup{int64_t{1} << 30, "/sys/fs/cgroup/memory.max"};

    MemoryBudgetChoice choice = chooseMemoryBudget(limits, cgroup);
    EXPECT_EQ(choice.bytes, int64_t{512} << 20);  // 50 % by default
    EXPECT_NE(choice.why.find("/sys/fs/cgroup/memory.max"), std::string::npos) << choice.why;

    limits.memory_budget_percent = 25;
    EXPECT_EQ(chooseMemoryBudget(limits, cgroup).bytes, int64_t{256} << 20);

    EXPECT_EQ(chooseMemoryBudget(limits, std::nullopt).bytes, 0);

    limits.memory_budget_bytes = int64_t{64} << 20;
    choice = chooseMemoryBudget(limits, cgroup);
    EXPECT_EQ(choice.bytes, int64_t{64} << 20);
    EXPECT_NE(choice.why.find("limits.memory_budget_bytes"), std::string::npos) << choice.why;
}

}  // namespace
}  // namespace wsrelay
