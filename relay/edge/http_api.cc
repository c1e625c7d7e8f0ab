#include "relay/edge/http_api.h"

#include <ev.h>
#include <openssl/crypto.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "relay/edge/http_api_body.h"
#include "relay/edge/http_api_request.h"
#include "relay/fanout/channel_rules.h"
#include "relay/fanout/history_reads.h"
#include "relay/fanout/hub.h"
#include "relay/fanout/publisher.h"
#include "relay/protocol/protocol.h"
#include "relay/session/worker_context.h"

namespace wsrelay {

namespace {
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kBroadcastPath = "/api/broadcast";
constexpr std::string_view kHistoryPath = "/api/history";

// Constant time, so the key cannot be guessed byte by byte from response timings.
bool keyMatches(const std::string& expected, std::string_view given) {
    return expected.size() == given.size() &&
           CRYPTO_memcmp(expected.data(), given.data(), expected.size()) == 0;
}

enum class Framing { Ok, Chunked, NoLength, BadLength, TooLarge };

// How the request says where its body ends. lws 4.1.6 reads a request body by Content-Length
// only: it does not decode a chunked body, and without a Content-Length it expects 100 MB for a
// POST, so either request would sit unanswered until lws's 5 s timeout. Content-Length must be
// plain digits, as lws reads it with atoll(): "12abc", "-1" or a repeated header ("5,5") would make
// lws read another length than the one checked here.
Framing bodyFraming(const HttpApi::Head& head, size_t limit) {
    if (head.chunked) return Framing::Chunked;
    const std::string_view text = head.content_length;
    if (text.empty()) return Framing::NoLength;
    uint64_t length = 0;
    const char* const last = text.data() + text.size();
    const auto [end, ec] = std::from_chars(text.data(), last, length);
    if (end != last || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
        return Framing::BadLength;
    }
    if (ec == std::errc::result_out_of_range || length > limit) return Framing::TooLarge;
    return Framing::Ok;
}
}  // namespace

// Every path of the API: one line each.
const HttpApi::Route HttpApi::kRoutes[] = {
    {"/api/publish", &HttpApi::publish},
    {kBroadcastPath, &HttpApi::publish},
    {kHistoryPath, &HttpApi::readHistory},
    {"/api/disconnect", &HttpApi::fleetCommand},
    {"/api/subscribe", &HttpApi::fleetCommand},
    {"/api/unsubscribe", &HttpApi::fleetCommand},
    {"/api/channels", &HttpApi::fleetCommand},
    {"/api/channel", &HttpApi::fleetCommand},
    {"/api/batch", &HttpApi::batch},
    {"/api/presence", &HttpApi::readPresence},
    {"/api/presence_stats", &HttpApi::readPresence},
};

HttpApi::HttpApi(WorkerContext& ctx, Io io)
    : ctx_(ctx), io_(std::move(io)), fleet_api_(ctx),
      key_throttle_(ctx.config, ctx.shared.workers, ctx.metrics) {}
HttpApi::~HttpApi() = default;

const HttpApi::Route* HttpApi::route(std::string_view path) {
    for (const Route& r : kRoutes) {
        if (r.path == path) return &r;
    }
    return nullptr;
}

bool HttpApi::handles(std::string_view path) { return route(path) != nullptr; }
int HttpApi::onRequest(lws* wsi, const Head& head, Request*& slot) {
    // The body's framing first: a body that is not going to be read is refused at once; any
    // other refusal is answered once the body is read.
    const auto limit = static_cast<size_t>(ctx_.config.websocket.max_message_bytes);
    switch (bodyFraming(head, limit)) {
        case Framing::Ok: break;
        case Framing::Chunked:
            return io_.answer(
                wsi, 411, kJson,
                errorBody(
                    "Transfer-Encoding is not supported: send the body with a Content-Length"),
                0);
        case Framing::NoLength:
            return io_.answer(wsi, 411, kJson, errorBody("Content-Length required"), 0);
        case Framing::BadLength:
            return io_.answer(wsi, 400, kJson, errorBody("invalid Content-Length"), 0);
        case Framing::TooLarge: return io_.answer(wsi, 413, kJson, errorBody("body too large"), 0);
    }
    // A refusal waits for the body: lws 4.1.6, answered before a body it must then skip, can
    // take the next pipelined request for the body and loop on it forever (a POST with a wrong
    // key, then the rest of its body and another request in one packet, hung the worker). The
    // body is bounded above, so reading it costs an unauthenticated client no more than a
    // publish would.
    slot = new Request();
    slot->route = route(head.path);
    slot->broadcast = head.path == kBroadcastPath;
    slot->history = head.path == kHistoryPath;
    const std::string& key = ctx_.config.api.key;
    if (key.empty()) {
        slot->refused = 403;
        slot->refusal = "the HTTP API is off: set api.key";
        return 0;
    }
    // Too many wrong keys from this address: the key is not even compared.
    const double now = ev_now(ctx_.loop);
    if (const unsigned wait = key_throttle_.refusal(head.client, now); wait != 0) {
        slot->refused = 429;
        slot->refusal = "too many wrong X-API-Key attempts from this address";
        slot->retry_after_s = wait;
        return 0;
    }
    if (!keyMatches(key, head.api_key)) {
        key_throttle_.failed(head.client, now);
        slot->refused = 401;
        slot->refusal = "missing or wrong X-API-Key";
    }
    return 0;
}

int HttpApi::onBody(Request& request, const char* data, size_t len) {
    // lws hands over Content-Length bytes, which onRequest() checked against the limit; this only
    // guards the buffer should lws ever pass more.
    if (request.refused != 0) return 0;  // read and dropped
    const auto limit = static_cast<size_t>(ctx_.config.websocket.max_message_bytes);
    if (request.too_large || request.body.size() + len > limit) {
        request.too_large = true;  // keep reading, answer 413 at the end
        request.body.clear();
        return 0;
    }
    request.body.append(data, len);
    return 0;
}

int HttpApi::finish(lws* wsi, Request& request, unsigned status, std::string body) {
    request.status = status;
    request.response = std::move(body);
    io_.ask_writable(wsi);
    return 0;
}

int HttpApi::onBodyComplete(lws* wsi, Request& request) {
    if (request.refused != 0) {
        return finish(wsi, request, request.refused, errorBody(request.refusal));
    }
    if (request.too_large) return finish(wsi, request, 413, errorBody("body too large"));
    return (this->*request.route->handler)(wsi, request);
}

uint64_t HttpApi::park(lws* wsi, Request& request) {
    request.id = next_id_++;
    pending_[request.id] = {wsi, &request};
    return request.id;
}

void HttpApi::answerParked(uint64_t id, unsigned status, std::string body) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // the client went away meanwhile
    auto [wsi, request] = it->second;
    pending_.erase(it);
    finish(wsi, *request, status, std::move(body));
}

int HttpApi::publish(lws* wsi, Request& request) {
    const ApiBody body = parseApiBody(parser_, request.body, request.broadcast,
                                      static_cast<size_t>(ctx_.config.limits.max_channel_bytes));
    if (!body.ok()) return finish(wsi, request, 400, errorBody(body.error));
    const std::vector<std::string_view>& channels = body.channels;
    const std::string& payload = body.payload;
    for (std::string_view channel : channels) {
        if (!ctx_.publisher.admit(channel, payload, metrics::MessageSource::Api)) {
            return finish(wsi, request, 413,
                          errorBody(std::string(protocol::kTooLargeToDeliver) +
                                    ": its frame would exceed limits.send_queue_bytes"));
        }
    }
    if (ctx_.publisher.budgetFull(metrics::PublishEntry::Api)) {
        return finish(wsi, request, 503, errorBody(protocol::kMemoryBudgetFull));
    }
    if (!ctx_.publisher.usable()) {
        ctx_.metrics.broker_publish_failures.add(static_cast<int64_t>(channels.size()));
        return finish(wsi, request, 503, errorBody("broker unavailable"));
    }
    request.id = next_id_++;
    request.outstanding = channels.size();
    request.channels = channels.size();
    pending_[request.id] = {wsi, &request};
    for (std::string_view channel : channels) {
        ctx_.publisher.publish(channel, payload, PublishTicket{kTicketBit | request.id, 0, false});
    }
    return 0;
}

void HttpApi::onPublishResult(const PublishTicket& ticket, PublishStatus status, uint64_t offset,
                              std::string_view epoch) {
    auto it = pending_.find(ticket.session_id & ~kTicketBit);
    if (it == pending_.end()) return;  // the client went away meanwhile
    auto [wsi, request] = it->second;
    if (status != PublishStatus::Accepted) request->failed = true;  // counted by the worker
    if (!request->broadcast && offset != 0) {
        request->offset = offset;
        request->epoch = epoch;
    }
    if (--request->outstanding > 0) return;
    pending_.erase(it);
    if (request->failed) {
        finish(wsi, *request, 503, errorBody("broker unavailable"));
        return;
    }
    std::string body = R"({"ok":true,"channels":)" + std::to_string(request->channels);
    if (request->offset != 0) {
        body += R"(,"offset":)" + std::to_string(request->offset) + R"(,"epoch":")" +
                request->epoch + '"';
    }
    finish(wsi, *request, 200, body + "}");
}

int HttpApi::readHistory(lws* wsi, Request& request) {
    const ApiHistoryBody body = parseHistoryBody(
        parser_, request.body, static_cast<size_t>(ctx_.config.limits.max_channel_bytes));
    if (!body.ok()) return finish(wsi, request, 400, errorBody(body.error));
    HistoryQuery query =
        historyQuery(ctx_.channels.history(body.channel),
                     static_cast<uint64_t>(ctx_.config.history.max_limit), body.limit, body.since);
    if (query.refusal == HistoryQuery::Refusal::NoHistory) {
        return finish(wsi, request, 405, errorBody(protocol::kNoHistory));
    }
    if (query.refusal == HistoryQuery::Refusal::LimitOverMax) {
        return finish(wsi, request, 413, errorBody(protocol::kLimitOverMax));
    }
    if (!ctx_.publisher.usable()) return finish(wsi, request, 503, errorBody("broker unavailable"));
    request.id = next_id_++;
    pending_[request.id] = {wsi, &request};
    const uint64_t id = request.id;
    ctx_.history->read(
        body.channel, query.request,
        [this, id, since_epoch = std::move(query.since_epoch)](uint64_t, HistoryAnswer&& answer) {
            answerHistory(id, since_epoch, answer);
        },
        kTicketBit | id);
    return 0;
}

void HttpApi::answerHistory(uint64_t id, const std::optional<std::string>& since_epoch,
                            const HistoryAnswer& answer) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    auto [wsi, request] = it->second;
    pending_.erase(it);
    if (answer.status != HistoryStatus::Ok) {
        finish(wsi, *request, 503, errorBody(protocol::kHistoryUnavailable));
        return;
    }
    const std::vector<protocol::HistoryItem> items = historyItems(answer, since_epoch);
    std::string body;
    protocol::appendHistoryBody(items, {answer.top.offset, answer.top.epoch}, body);
    finish(wsi, *request, 200, std::move(body));
}

int HttpApi::onWriteable(lws* wsi, Request*& slot) {
    if (slot == nullptr || slot->status == 0) return 0;
    const unsigned status = slot->status;
    const unsigned retry_after_s = slot->retry_after_s;
    const std::string response = std::move(slot->response);
    delete slot;
    slot = nullptr;
    return io_.answer(wsi, status, kJson, response, retry_after_s);
}

void HttpApi::onClosed(Request*& slot) {
    if (slot == nullptr) return;
    if (slot->id != 0) {
        pending_.erase(slot->id);
        if (slot->history) ctx_.history->cancelOwner(kTicketBit | slot->id);
    }
    delete slot;
    slot = nullptr;
}

}  // namespace wsrelay
