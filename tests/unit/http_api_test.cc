// HttpApi on a recording Io and a WorkerContext of fakes: the refusals of the head and the body,
// the publishes it hands the broker, and the answer it gives once the broker answered them all.
// The edge's calls (onRequest, onBody, onBodyComplete, onWriteable, onClosed) are made here as
// lws would make them; a connection is only a handle nobody dereferences.

#include "relay/edge/http_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/protocol/protocol.h"
#include "tests/unit/worker_parts.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::WorkerParts;

constexpr std::string_view kKey = "test-api-key";
constexpr std::string_view kPublish = "/api/publish";
constexpr std::string_view kBroadcast = "/api/broadcast";

Config config() {
    Config c = WorkerParts::defaultConfig();
    c.api.key = std::string(kKey);
    c.websocket.max_message_bytes = 4096;
    return c;
}

struct Answer {
    lws* wsi;
    unsigned status;
    std::string content_type;
    std::string body;
    unsigned retry_after_s = 0;
};

class HttpApiRequestTest : public ::testing::Test {
protected:
    explicit HttpApiRequestTest(Config c = config()) : w(std::move(c)), api(w.ctx, recorder()) {}
    ~HttpApiRequestTest() override {
        api.onClosed(slot);
        api.onClosed(other);
    }

    // An Io that records what the API asks of its connections.
    HttpApi::Io recorder() {
        return {[this](lws* wsi) { asks.push_back(wsi); },
                [this](lws* wsi, unsigned status, std::string_view type, std::string_view body,
                       unsigned retry_after_s) {
                    answers.push_back(
                        {wsi, status, std::string(type), std::string(body), retry_after_s});
                    return -1;  // as http::answer: the connection ends
                }};
    }
    // The head with the body's Content-Length, as the edge reads it.
    HttpApi::Head head(std::string_view path, std::string_view body, std::string_view key = kKey) {
        length_ = std::to_string(body.size());
        return {path, key, length_, false};
    }
    // A whole request as lws delivers it: head, body, end. Returns what the last call returned.
    int post(std::string_view path, std::string_view body, std::string_view key = kKey,
             HttpApi::Request** into = nullptr, lws* wsi = nullptr) {
        HttpApi::Request*& s = into != nullptr ? *into : slot;
        lws* const c = wsi != nullptr ? wsi : conn;
        const int rc = api.onRequest(c, head(path, body, key), s);
        if (s == nullptr) return rc;
        EXPECT_EQ(rc, 0);
        EXPECT_EQ(api.onBody(*s, body.data(), body.size()), 0);
        return api.onBodyComplete(c, *s);
    }
    // The answer onWriteable writes, after the one writable request the answer waits for.
    Answer written(HttpApi::Request*& s) {
        EXPECT_EQ(asks.size(), 1u);
        EXPECT_EQ(api.onWriteable(conn, s), -1);
        EXPECT_EQ(s, nullptr);
        EXPECT_EQ(answers.size(), 1u);
        return answers.empty() ? Answer{} : answers.back();
    }
    Answer written() { return written(slot); }
    void result(size_t i, PublishStatus status) {
        api.onPublishResult(w.broker.published.at(i).ticket, status);
    }

    WorkerParts w;
    std::vector<lws*> asks;
    std::vector<Answer> answers;
    HttpApi api;
    HttpApi::Request* slot = nullptr;
    HttpApi::Request* other = nullptr;
    char conn_ = 0;
    char other_conn_ = 0;
    lws* const conn = reinterpret_cast<lws*>(&conn_);
    lws* const other_conn = reinterpret_cast<lws*>(&other_conn_);

private:
    std::string length_;
};

constexpr std::string_view kPublishBody = R"({"channel":"news","data":{"n":1}})";

// ---- refusals at the head: answered at once, nothing kept ----

TEST_F(HttpApiRequestTest, AChunkedBodyIsRefusedAtOnceWith411) {
    HttpApi::Head h{kPublish, kKey, "", true};
    EXPECT_EQ(api.onRequest(conn, h, slot), -1);
    EXPECT_EQ(slot, nullptr);
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].wsi, conn);
    EXPECT_EQ(answers[0].status, 411u);
    EXPECT_EQ(answers[0].content_type, "application/json");
    EXPECT_THAT(answers[0].body, HasSubstr("Transfer-Encoding is not supported"));
    EXPECT_THAT(asks, IsEmpty());
}

TEST_F(HttpApiRequestTest, ABodyWithoutALengthIsRefusedWith411) {
    HttpApi::Head h{kPublish, kKey, "", false};
    EXPECT_EQ(api.onRequest(conn, h, slot), -1);
    EXPECT_EQ(slot, nullptr);
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].status, 411u);
    EXPECT_EQ(answers[0].body, R"({"error":"Content-Length required"})");
}

TEST_F(HttpApiRequestTest, ALengthThatIsNotPlainDigitsIsRefusedWith400) {
    for (std::string_view length : {"12abc", "-1", "5,5", " 5", "0x10"}) {
        answers.clear();
        HttpApi::Head h{kPublish, kKey, length, false};
        EXPECT_EQ(api.onRequest(conn, h, slot), -1) << length;
        EXPECT_EQ(slot, nullptr) << length;
        ASSERT_EQ(answers.size(), 1u) << length;
        EXPECT_EQ(answers[0].status, 400u) << length;
        EXPECT_EQ(answers[0].body, R"({"error":"invalid Content-Length"})") << length;
    }
}

TEST_F(HttpApiRequestTest, ALengthAboveTheMessageLimitIsRefusedWith413) {
    for (std::string_view length : {"4097", "99999999999999999999999"}) {
        answers.clear();
        HttpApi::Head h{kPublish, kKey, length, false};
        EXPECT_EQ(api.onRequest(conn, h, slot), -1) << length;
        EXPECT_EQ(slot, nullptr) << length;
        ASSERT_EQ(answers.size(), 1u) << length;
        EXPECT_EQ(answers[0].status, 413u) << length;
        EXPECT_EQ(answers[0].body, R"({"error":"body too large"})") << length;
    }
    HttpApi::Head h{kPublish, kKey, "4096", false};  // the limit itself is taken
    EXPECT_EQ(api.onRequest(conn, h, slot), 0);
    EXPECT_NE(slot, nullptr);
}

// ---- refusals of the key: answered once the body is read ----

TEST_F(HttpApiRequestTest, AMissingKeyIsAnswered401OnceTheBodyIsRead) {
    HttpApi::Head h = head(kPublish, kPublishBody, "");
    EXPECT_EQ(api.onRequest(conn, h, slot), 0);
    ASSERT_NE(slot, nullptr);
    EXPECT_THAT(answers, IsEmpty());  // not before the body: lws would misread what follows
    EXPECT_EQ(api.onBody(*slot, kPublishBody.data(), kPublishBody.size()), 0);
    EXPECT_EQ(api.onBodyComplete(conn, *slot), 0);
    EXPECT_THAT(asks, ElementsAre(conn));
    EXPECT_THAT(answers, IsEmpty());  // written when lws says the socket is writable
    const Answer a = written();
    EXPECT_EQ(a.status, 401u);
    EXPECT_EQ(a.body, R"({"error":"missing or wrong X-API-Key"})");
    EXPECT_THAT(w.broker.published, IsEmpty());
}

TEST_F(HttpApiRequestTest, AWrongKeyIsAnswered401AndPublishesNothing) {
    for (std::string_view key : {"test-api-kex", "test-api-key ", "test-api-ke", "TEST-API-KEY"}) {
        asks.clear();
        answers.clear();
        EXPECT_EQ(post(kPublish, kPublishBody, key), 0) << key;
        EXPECT_EQ(written().status, 401u) << key;
    }
    EXPECT_THAT(w.broker.published, IsEmpty());
}

class HttpApiThrottleTest : public HttpApiRequestTest {
protected:
    static Config throttled() {
        Config c = config();
        c.limits.api_key_failures_per_ip_per_minute = 2;
        return c;
    }
    HttpApiThrottleTest() : HttpApiRequestTest(throttled()) {}
};

TEST_F(HttpApiThrottleTest, PastItsFailuresAnAddressGets429WithoutItsKeyBeingChecked) {
    for (int i = 0; i < 2; ++i) {
        asks.clear();
        answers.clear();
        EXPECT_EQ(post(kPublish, kPublishBody, "wrong"), 0);
        EXPECT_EQ(written().status, 401u);
    }
    asks.clear();
    answers.clear();
    EXPECT_EQ(post(kPublish, kPublishBody, kKey), 0);  // the right key, too late
    const Answer a = written();
    EXPECT_EQ(a.status, 429u);
    EXPECT_EQ(a.retry_after_s, 30u);  // 2 a minute: one every 30 s
    EXPECT_EQ(a.body, R"({"error":"too many wrong X-API-Key attempts from this address"})");
    EXPECT_THAT(w.broker.published, IsEmpty());
    EXPECT_EQ(
        w.metrics.ip_limited[metrics::IpLimit::ApiKey][metrics::IpLimitResult::Refused].value(), 1);
}

class HttpApiOffTest : public HttpApiRequestTest {
protected:
    static Config off() {
        Config c = config();
        c.api.key.clear();
        return c;
    }
    HttpApiOffTest() : HttpApiRequestTest(off()) {}
};

TEST_F(HttpApiOffTest, WithoutAConfiguredKeyEveryRequestIsAnswered403) {
    for (std::string_view key : {"", "anything"}) {
        asks.clear();
        answers.clear();
        EXPECT_EQ(post(kPublish, kPublishBody, key), 0) << key;
        const Answer a = written();
        EXPECT_EQ(a.status, 403u) << key;
        EXPECT_EQ(a.body, R"({"error":"the HTTP API is off: set api.key"})") << key;
    }
    EXPECT_THAT(w.broker.published, IsEmpty());
}

// ---- refusals of the body ----

TEST_F(HttpApiRequestTest, ABodyTheParserRefusesIsAnswered400WithItsReason) {
    EXPECT_EQ(post(kPublish, R"({"channel":"news"})"), 0);
    EXPECT_EQ(written().body, R"({"error":"missing data"})");
    EXPECT_EQ(answers.back().status, 400u);

    asks.clear();
    answers.clear();
    EXPECT_EQ(post(kPublish, "not json"), 0);
    EXPECT_EQ(written().status, 400u);
    EXPECT_EQ(answers.back().body, R"({"error":"body must be a JSON object"})");

    asks.clear();
    answers.clear();
    EXPECT_EQ(post(kBroadcast, R"({"channels":[],"data":1})"), 0);
    EXPECT_EQ(written().status, 400u);
    EXPECT_THAT(answers.back().body, HasSubstr("channels must be an array of 1.."));
    EXPECT_THAT(w.broker.published, IsEmpty());
}

TEST_F(HttpApiRequestTest, MoreBodyThanTheLimitIsAnswered413) {
    // lws hands over Content-Length bytes; should it pass more, the buffer stays bounded.
    HttpApi::Head h{kPublish, kKey, "10", false};
    ASSERT_EQ(api.onRequest(conn, h, slot), 0);
    const std::string chunk(3000, 'x');
    EXPECT_EQ(api.onBody(*slot, chunk.data(), chunk.size()), 0);
    EXPECT_EQ(api.onBody(*slot, chunk.data(), chunk.size()), 0);
    EXPECT_EQ(api.onBody(*slot, "}", 1), 0);
    EXPECT_EQ(api.onBodyComplete(conn, *slot), 0);
    const Answer a = written();
    EXPECT_EQ(a.status, 413u);
    EXPECT_EQ(a.body, R"({"error":"body too large"})");
}

class HttpApiSmallQueueTest : public HttpApiRequestTest {
protected:
    static Config small() {
        Config c = config();
        c.limits.send_queue_bytes = 1024;
        return c;
    }
    HttpApiSmallQueueTest() : HttpApiRequestTest(small()) {}
};

TEST_F(HttpApiSmallQueueTest, AMessageWhoseFrameNoSendQueueHoldsIsAnswered413) {
    const std::string body = R"({"channels":["a","b"],"data":")" + std::string(2000, 'x') + R"("})";
    EXPECT_EQ(post(kBroadcast, body), 0);
    const Answer a = written();
    EXPECT_EQ(a.status, 413u);
    EXPECT_EQ(a.body, R"({"error":")" + std::string(protocol::kTooLargeToDeliver) +
                          R"(: its frame would exceed limits.send_queue_bytes"})");
    EXPECT_EQ(w.metrics.too_large[metrics::MessageSource::Api].value(), 1);
    EXPECT_THAT(w.broker.published, IsEmpty());  // none of the channels gets it
}

TEST_F(HttpApiRequestTest, ABrokerThatCannotTakePublishesIsAnswered503AndEachChannelCounted) {
    w.broker.up = false;
    EXPECT_EQ(post(kBroadcast, R"({"channels":["a","b","c"],"data":1})"), 0);
    const Answer a = written();
    EXPECT_EQ(a.status, 503u);
    EXPECT_EQ(a.body, R"({"error":"broker unavailable"})");
    EXPECT_EQ(w.metrics.broker_publish_failures.value(), 3);
    EXPECT_THAT(w.broker.published, IsEmpty());
}

// ---- publishes, and the answer once the broker took them ----

TEST_F(HttpApiRequestTest, APublishGoesToTheBrokerAndIsAnswered200OnceAccepted) {
    EXPECT_EQ(post(kPublish, R"({"channel":"news","data":{ "n" : 1 }})"), 0);
    ASSERT_EQ(w.broker.published.size(), 1u);
    const auto& p = w.broker.published[0];
    EXPECT_EQ(p.channel, "news");
    EXPECT_EQ(p.data, R"({"n":1})");
    EXPECT_NE(p.ticket.session_id & HttpApi::kTicketBit, 0u);
    EXPECT_FALSE(p.ticket.has_request_id);
    EXPECT_EQ(w.metrics.broker_publishes.value(), 1);
    EXPECT_THAT(asks, IsEmpty());  // waits for the broker
    result(0, PublishStatus::Accepted);
    const Answer a = written();
    EXPECT_EQ(a.wsi, conn);
    EXPECT_EQ(a.status, 200u);
    EXPECT_EQ(a.body, R"({"ok":true,"channels":1})");
}

TEST_F(HttpApiRequestTest, ABroadcastPublishesOnEveryChannelAndWaitsForEveryResult) {
    EXPECT_EQ(post(kBroadcast, R"({"channels":["a","b:1","c"],"data":"hi"})"), 0);
    ASSERT_EQ(w.broker.published.size(), 3u);
    std::vector<std::string> channels;
    for (const auto& p : w.broker.published) {
        channels.push_back(p.channel);
        EXPECT_EQ(p.data, R"("hi")");
        EXPECT_EQ(p.ticket.session_id, w.broker.published[0].ticket.session_id);
    }
    EXPECT_THAT(channels, ElementsAre("a", "b:1", "c"));
    result(2, PublishStatus::Accepted);
    result(0, PublishStatus::Accepted);
    EXPECT_THAT(asks, IsEmpty());
    result(1, PublishStatus::Accepted);
    const Answer a = written();
    EXPECT_EQ(a.status, 200u);
    EXPECT_EQ(a.body, R"({"ok":true,"channels":3})");
}

TEST_F(HttpApiRequestTest, OneUnavailableResultMakesTheAnswer503OnceAllAreIn) {
    EXPECT_EQ(post(kBroadcast, R"({"channels":["a","b"],"data":1})"), 0);
    result(0, PublishStatus::Unavailable);
    EXPECT_THAT(asks, IsEmpty());  // still waits for the other
    result(1, PublishStatus::Accepted);
    const Answer a = written();
    EXPECT_EQ(a.status, 503u);
    EXPECT_EQ(a.body, R"({"error":"broker unavailable"})");
}

TEST_F(HttpApiRequestTest, ARejectedResultIsAnsweredAs503Too) {
    // The API does not tell a rejection from an outage: both answer 503 "broker unavailable".
    EXPECT_EQ(post(kPublish, kPublishBody), 0);
    result(0, PublishStatus::Rejected);
    const Answer a = written();
    EXPECT_EQ(a.status, 503u);
    EXPECT_EQ(a.body, R"({"error":"broker unavailable"})");
}

TEST_F(HttpApiRequestTest, TwoRequestsInFlightAreAnsweredEachOnItsOwnConnection) {
    EXPECT_EQ(post(kPublish, kPublishBody, kKey, &slot, conn), 0);
    EXPECT_EQ(post(kPublish, R"({"channel":"other","data":2})", kKey, &other, other_conn), 0);
    ASSERT_EQ(w.broker.published.size(), 2u);
    EXPECT_NE(w.broker.published[0].ticket.session_id, w.broker.published[1].ticket.session_id);
    result(1, PublishStatus::Unavailable);
    EXPECT_THAT(asks, ElementsAre(other_conn));
    EXPECT_EQ(api.onWriteable(other_conn, other), -1);
    result(0, PublishStatus::Accepted);
    EXPECT_THAT(asks, ElementsAre(other_conn, conn));
    EXPECT_EQ(api.onWriteable(conn, slot), -1);
    ASSERT_EQ(answers.size(), 2u);
    EXPECT_EQ(answers[0].wsi, other_conn);
    EXPECT_EQ(answers[0].status, 503u);
    EXPECT_EQ(answers[1].wsi, conn);
    EXPECT_EQ(answers[1].status, 200u);
}

TEST_F(HttpApiRequestTest, AClientGoneBeforeTheResultsGetsNothingWritten) {
    EXPECT_EQ(post(kBroadcast, R"({"channels":["a","b"],"data":1})"), 0);
    result(0, PublishStatus::Accepted);
    api.onClosed(slot);  // lws: CLOSED_HTTP
    EXPECT_EQ(slot, nullptr);
    result(1, PublishStatus::Accepted);  // the request is forgotten: nothing to answer
    EXPECT_THAT(asks, IsEmpty());
    EXPECT_THAT(answers, IsEmpty());
    EXPECT_EQ(api.onWriteable(conn, slot), 0);  // a late writable callback writes nothing
    EXPECT_THAT(answers, IsEmpty());
}

TEST_F(HttpApiRequestTest, AClientGoneAfterItsAnswerWasDecidedGetsNothingWritten) {
    EXPECT_EQ(post(kPublish, kPublishBody), 0);
    result(0, PublishStatus::Accepted);
    EXPECT_THAT(asks, ElementsAre(conn));
    api.onClosed(slot);
    EXPECT_EQ(slot, nullptr);
    EXPECT_EQ(api.onWriteable(conn, slot), 0);
    EXPECT_THAT(answers, IsEmpty());
}

TEST_F(HttpApiRequestTest, AWriteableCallbackBeforeTheAnswerIsDecidedWritesNothing) {
    EXPECT_EQ(post(kPublish, kPublishBody), 0);
    EXPECT_EQ(api.onWriteable(conn, slot), 0);
    EXPECT_NE(slot, nullptr);
    EXPECT_THAT(answers, IsEmpty());
    result(0, PublishStatus::Accepted);
    EXPECT_EQ(written().status, 200u);
}

// ---- POST /api/history, and the position of a publish on a channel with history ----

constexpr std::string_view kHistory = "/api/history";

Config historyConfig() {
    Config c = config();
    c.channels = {{"hist", 100, 60000}};
    c.history.max_limit = 10;
    return c;
}

class HttpApiHistoryTest : public HttpApiRequestTest {
protected:
    HttpApiHistoryTest() : HttpApiRequestTest(historyConfig()) {}
    // Answers read `i` with entries first..top.
    void answer(size_t i, uint64_t top, uint64_t first, std::string epoch = "e1") {
        HistoryAnswer a;
        a.top = {top, std::move(epoch)};
        for (uint64_t o = first; o != 0 && o <= top; ++o) {
            a.entries.push_back({o, std::to_string(o)});
        }
        w.history.onAnswer(w.broker.reads.at(i).request.token, std::move(a));
    }
};

TEST_F(HttpApiHistoryTest, TheNewestMessagesAndThePosition) {
    EXPECT_EQ(post(kHistory, R"({"channel":"hist","limit":2})"), 0);
    ASSERT_EQ(w.broker.reads.size(), 1u);
    const auto& r = w.broker.reads[0];
    EXPECT_EQ(r.channel, "hist");
    EXPECT_EQ(r.request.after, 0u);
    EXPECT_EQ(r.request.limit, 2u);
    EXPECT_TRUE(r.request.newest);
    EXPECT_EQ(r.request.policy.size, 100);
    EXPECT_THAT(asks, IsEmpty());  // waits for the broker
    answer(0, 5, 4);
    const Answer a = written();
    EXPECT_EQ(a.status, 200u);
    EXPECT_EQ(a.content_type, "application/json");
    EXPECT_EQ(a.body, R"({"messages":[{"offset":4,"data":4},{"offset":5,"data":5}],)"
                      R"("offset":5,"epoch":"e1"})");
}

TEST_F(HttpApiHistoryTest, WithSinceTheOldestAfterItAndNoneOfAnotherEpoch) {
    EXPECT_EQ(post(kHistory, R"({"channel":"hist","since":{"offset":3,"epoch":"e1"}})"), 0);
    ASSERT_EQ(w.broker.reads.size(), 1u);
    EXPECT_EQ(w.broker.reads[0].request.after, 3u);
    EXPECT_EQ(w.broker.reads[0].request.limit, 10u) << "history.max_limit without a limit";
    EXPECT_FALSE(w.broker.reads[0].request.newest);
    answer(0, 4, 4);
    EXPECT_EQ(written().body, R"({"messages":[{"offset":4,"data":4}],"offset":4,"epoch":"e1"})");

    answers.clear();
    asks.clear();
    EXPECT_EQ(post(kHistory, R"({"channel":"hist","since":{"offset":3,"epoch":"e0"}})"), 0);
    answer(1, 4, 4);
    EXPECT_EQ(written().body, R"({"messages":[],"offset":4,"epoch":"e1"})");
}

TEST_F(HttpApiHistoryTest, RefusalsAreAnsweredWithTheirStatusAndReadNothing) {
    struct Case {
        std::string_view body;
        std::string_view key;
        unsigned status;
        std::string_view error;
    };
    const Case cases[] = {
        {R"({"limit":2})", kKey, 400, "missing or invalid channel"},
        {R"({"channel":"hist","limit":0})", kKey, 400, "invalid limit"},
        {R"({"channel":"hist"})", "wrong-key", 401, "missing or wrong X-API-Key"},
        {R"({"channel":"news"})", kKey, 405, "no history on this channel"},
        {R"({"channel":"hist","limit":11})", kKey, 413, "limit over history.max_limit"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.body);
        answers.clear();
        asks.clear();
        EXPECT_EQ(post(kHistory, c.body, c.key), 0);
        const Answer a = written();
        EXPECT_EQ(a.status, c.status);
        EXPECT_THAT(a.body, HasSubstr(c.error));
    }
    EXPECT_THAT(w.broker.reads, IsEmpty());
}

TEST_F(HttpApiHistoryTest, ABrokerThatCannotReadIsAnswered503) {
    w.broker.up = false;
    EXPECT_EQ(post(kHistory, R"({"channel":"hist"})"), 0);
    EXPECT_EQ(written().status, 503u);
    EXPECT_THAT(w.broker.reads, IsEmpty());

    w.broker.up = true;
    answers.clear();
    asks.clear();
    EXPECT_EQ(post(kHistory, R"({"channel":"hist"})"), 0);
    ASSERT_EQ(w.broker.reads.size(), 1u);
    w.history.onAnswer(w.broker.reads[0].request.token, {HistoryStatus::Unavailable, {}, {}});
    const Answer a = written();
    EXPECT_EQ(a.status, 503u);
    EXPECT_EQ(a.body, R"({"error":"history unavailable"})");
}

TEST_F(HttpApiHistoryTest, AClientGoneBeforeTheAnswerCancelsItsRead) {
    EXPECT_EQ(post(kHistory, R"({"channel":"hist"})"), 0);
    ASSERT_EQ(w.history.inFlight(), 1u);
    api.onClosed(slot);
    answer(0, 1, 1);  // answered to nobody
    EXPECT_THAT(asks, IsEmpty());
    EXPECT_THAT(answers, IsEmpty());
    EXPECT_EQ(w.history.inFlight(), 0u);
}

TEST_F(HttpApiHistoryTest, APublishOnAChannelWithHistorySaysWhereItWent) {
    EXPECT_EQ(post(kPublish, R"({"channel":"hist","data":1})"), 0);
    ASSERT_EQ(w.broker.published.size(), 1u);
    api.onPublishResult(w.broker.published[0].ticket, PublishStatus::Accepted, 7, "e1");
    EXPECT_EQ(written().body, R"({"ok":true,"channels":1,"offset":7,"epoch":"e1"})");
    // A broadcast says nothing of positions: it has one per channel.
    answers.clear();
    asks.clear();
    EXPECT_EQ(post(kBroadcast, R"({"channels":["hist","news"],"data":1})"), 0);
    api.onPublishResult(w.broker.published[1].ticket, PublishStatus::Accepted, 8, "e1");
    api.onPublishResult(w.broker.published[2].ticket, PublishStatus::Accepted);
    EXPECT_EQ(written().body, R"({"ok":true,"channels":2})");
}

}  // namespace
}  // namespace wsrelay
