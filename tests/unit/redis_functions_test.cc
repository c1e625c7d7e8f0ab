#include "adapters/redis_functions.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wsrelay {
namespace {

struct ReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// The reply hiredis makes of `resp`, as a connection would hand it over.
ReplyPtr parse(std::string_view resp) {
    redisReader* reader = redisReaderCreate();
    redisReaderFeed(reader, resp.data(), resp.size());
    void* reply = nullptr;
    const int status = redisReaderGetReply(reader, &reply);
    redisReaderFree(reader);
    EXPECT_EQ(status, REDIS_OK);
    EXPECT_NE(reply, nullptr) << resp;
    return ReplyPtr(static_cast<redisReply*>(reply));
}

TEST(RedisFunctionLibraryTest, OnlyTheClusterLibraryUsesShardedPublish) {
    const std::string standalone = redisFunctionLibrary(RedisMode::Standalone);
    const std::string cluster = redisFunctionLibrary(RedisMode::Cluster);
    EXPECT_TRUE(standalone.starts_with("#!lua name=wsrelay\n"));
    EXPECT_NE(standalone.find("local PUBLISH = 'PUBLISH'"), std::string::npos);
    EXPECT_NE(cluster.find("local PUBLISH = 'SPUBLISH'"), std::string::npos);
    EXPECT_EQ(cluster.find("'PUBLISH'"), std::string::npos);
    EXPECT_EQ(cluster.size(), standalone.size() + 1);
    for (const std::string* library : {&standalone, &cluster}) {
        EXPECT_NE(library->find("redis.register_function('wsrelay_publish'"), std::string::npos);
        EXPECT_NE(library->find("redis.register_function('wsrelay_history'"), std::string::npos);
        EXPECT_NE(library->find("return {offset, epoch, trimmed}"), std::string::npos);
    }
}

TEST(RedisFunctionLibraryTest, MissingFunctionErrors) {
    EXPECT_TRUE(isMissingFunction("ERR Function not found"));
    EXPECT_TRUE(isMissingFunction("NOSCRIPT No matching script."));
    EXPECT_FALSE(isMissingFunction("ERR wrong number of arguments"));
}

TEST(PublishReplyTest, ReadsOffsetEpochAndTrimmed) {
    ReplyPtr r = parse("*3\r\n:7\r\n$4\r\nab12\r\n:100\r\n");
    uint64_t offset = 0;
    std::string_view epoch;
    uint64_t trimmed = 1;
    ASSERT_TRUE(parsePublishReply(*r, offset, epoch, trimmed));
    EXPECT_EQ(offset, 7u);
    EXPECT_EQ(epoch, "ab12");
    EXPECT_EQ(trimmed, 100u);
}

// A library loaded by an older relay, during a rolling update, answers without the count.
TEST(PublishReplyTest, TwoElementsAreTrimmedNothing) {
    ReplyPtr r = parse("*2\r\n:7\r\n$4\r\nab12\r\n");
    uint64_t offset = 0;
    std::string_view epoch;
    uint64_t trimmed = 5;
    ASSERT_TRUE(parsePublishReply(*r, offset, epoch, trimmed));
    EXPECT_EQ(offset, 7u);
    EXPECT_EQ(epoch, "ab12");
    EXPECT_EQ(trimmed, 0u);
}

// A newer library may answer more: what follows the count is ignored.
TEST(PublishReplyTest, ElementsAfterTheThirdAreIgnored) {
    ReplyPtr r = parse("*4\r\n:7\r\n$4\r\nab12\r\n:3\r\n$5\r\nlater\r\n");
    uint64_t offset = 0;
    std::string_view epoch;
    uint64_t trimmed = 0;
    ASSERT_TRUE(parsePublishReply(*r, offset, epoch, trimmed));
    EXPECT_EQ(offset, 7u);
    EXPECT_EQ(epoch, "ab12");
    EXPECT_EQ(trimmed, 3u);
}

TEST(PublishReplyTest, RefusesOtherShapes) {
    for (std::string_view resp :
         {"+OK\r\n", ":1\r\n", "*0\r\n", "*1\r\n:1\r\n", "*2\r\n:0\r\n$1\r\na\r\n",
          "*2\r\n:-1\r\n$1\r\na\r\n", "*2\r\n$1\r\n1\r\n$1\r\na\r\n", "*2\r\n:1\r\n$0\r\n\r\n",
          "*2\r\n:1\r\n$3\r\na b\r\n", "*2\r\n:9007199254740992\r\n$1\r\na\r\n",
          "*3\r\n:0\r\n$1\r\na\r\n:1\r\n", "*3\r\n:1\r\n$0\r\n\r\n:1\r\n",
          // the count: a whole number of at most 2^53-1
          "*3\r\n:1\r\n$1\r\na\r\n:-1\r\n", "*3\r\n:1\r\n$1\r\na\r\n$1\r\n1\r\n",
          "*3\r\n:1\r\n$1\r\na\r\n:9007199254740992\r\n", "*3\r\n:1\r\n$1\r\na\r\n*0\r\n",
          "*4\r\n:1\r\n$1\r\na\r\n$1\r\nx\r\n:1\r\n"}) {
        ReplyPtr r = parse(resp);
        uint64_t offset = 0;
        std::string_view epoch;
        uint64_t trimmed = 0;
        EXPECT_FALSE(parsePublishReply(*r, offset, epoch, trimmed)) << resp;
    }
}

TEST(HistoryReplyTest, ReadsThePositionAndTheEntries) {
    ReplyPtr r = parse("*6\r\n:9\r\n$2\r\nep\r\n:4\r\n$3\r\n\"a\"\r\n:6\r\n$0\r\n\r\n");
    StreamPosition top;
    std::vector<HistoryReplyEntry> entries;
    std::string error;
    ASSERT_TRUE(parseHistoryReply(*r, 3, 2, top, entries, error)) << error;
    EXPECT_EQ(top, (StreamPosition{9, "ep"}));
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].offset, 4u);
    EXPECT_EQ(entries[0].data, "\"a\"");
    EXPECT_EQ(entries[1].offset, 6u);
    EXPECT_EQ(entries[1].data, "");
}

TEST(HistoryReplyTest, APositionAlone) {
    ReplyPtr r = parse("*2\r\n:0\r\n$2\r\nep\r\n");
    StreamPosition top;
    std::vector<HistoryReplyEntry> entries;
    std::string error;
    ASSERT_TRUE(parseHistoryReply(*r, 0, 0, top, entries, error)) << error;
    EXPECT_EQ(top, (StreamPosition{0, "ep"}));
    EXPECT_TRUE(entries.empty());
}

TEST(HistoryReplyTest, RefusesWhatWasNotAskedForOrIsMalformed) {
    struct Case {
        std::string_view resp;
        uint64_t after;
        uint32_t limit;
    };
    for (const Case& c : std::vector<Case>{
             {"-ERR Function not found\r\n", 0, 10},
             {"*0\r\n", 0, 10},
             {"*1\r\n:1\r\n", 0, 10},
             {"*3\r\n:1\r\n$2\r\nep\r\n:1\r\n", 0, 10},             // odd length
             {"*2\r\n$1\r\n1\r\n$2\r\nep\r\n", 0, 10},              // offset as text
             {"*2\r\n:1\r\n:2\r\n", 0, 10},                         // epoch as number
             {"*2\r\n:1\r\n$3\r\ne-p\r\n", 0, 10},                  // epoch shape
             {"*4\r\n:5\r\n$2\r\nep\r\n:2\r\n$1\r\nx\r\n", 2, 10},  // not after
             {"*4\r\n:5\r\n$2\r\nep\r\n:6\r\n$1\r\nx\r\n", 0, 10},  // above the top
             {"*4\r\n:5\r\n$2\r\nep\r\n:3\r\n:1\r\n", 0, 10},       // data not text
             {"*6\r\n:5\r\n$2\r\nep\r\n:3\r\n$0\r\n\r\n:3\r\n$0\r\n\r\n", 0, 10},  // repeated
             {"*6\r\n:5\r\n$2\r\nep\r\n:3\r\n$0\r\n\r\n:4\r\n$0\r\n\r\n", 0, 1},   // over limit
             {"*4\r\n:-1\r\n$2\r\nep\r\n:1\r\n$0\r\n\r\n", 0, 10},
         }) {
        ReplyPtr r = parse(c.resp);
        StreamPosition top;
        std::vector<HistoryReplyEntry> entries;
        std::string error;
        EXPECT_FALSE(parseHistoryReply(*r, c.after, c.limit, top, entries, error)) << c.resp;
        EXPECT_FALSE(error.empty()) << c.resp;
    }
}

}  // namespace
}  // namespace wsrelay
