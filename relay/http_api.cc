#include "relay/http_api.h"

#include <openssl/crypto.h>

#include <string>
#include <vector>

#include "relay/http_routes.h"
#include "relay/protocol.h"
#include "relay/worker.h"

namespace wsrelay {

namespace {
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kPublishPath = "/api/publish";
constexpr std::string_view kBroadcastPath = "/api/broadcast";

std::string errorBody(std::string_view reason) {
    return R"({"error":")" + std::string(reason) + R"("})";
}

// Constant time, so the key cannot be guessed byte by byte from response timings.
bool keyMatches(const std::string& expected, const std::string& given) {
    return expected.size() == given.size() &&
           CRYPTO_memcmp(expected.data(), given.data(), expected.size()) == 0;
}
}  // namespace

struct HttpApi::Request {
    bool broadcast = false;
    bool too_large = false;
    std::string body;
    uint64_t id = 0;
    size_t outstanding = 0;  // publishes the broker has not answered yet
    size_t channels = 0;
    bool failed = false;
    unsigned status = 0;  // nonzero once the response is decided
    std::string response;
};

HttpApi::HttpApi(Worker& worker) : worker_(worker) {}
HttpApi::~HttpApi() = default;

bool HttpApi::handles(std::string_view path) {
    return path == kPublishPath || path == kBroadcastPath;
}

int HttpApi::onRequest(lws* wsi, std::string_view path, Request*& slot) {
    const std::string& key = worker_.config().api.key;
    auto refuse = [wsi](unsigned status, std::string_view reason) {
        if (http::respond(wsi, status, kJson, errorBody(reason)) != 0) return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    };
    if (key.empty()) return refuse(403, "the HTTP API is off: set api.key");
    std::string given(256, '\0');
    int n = lws_hdr_custom_copy(wsi, given.data(), static_cast<int>(given.size()), "x-api-key:", 10);
    given.resize(n > 0 ? static_cast<size_t>(n) : 0);
    if (!keyMatches(key, given)) return refuse(401, "missing or wrong X-API-Key");
    slot = new Request();
    slot->broadcast = path == kBroadcastPath;
    return 0;
}

int HttpApi::onBody(Request& request, const char* data, size_t len) {
    const auto limit = static_cast<size_t>(worker_.config().websocket.max_message_bytes);
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
    lws_callback_on_writable(wsi);
    return 0;
}

int HttpApi::onBodyComplete(lws* wsi, Request& request) {
    if (request.too_large) return finish(wsi, request, 413, errorBody("body too large"));
    simdjson::dom::element root;
    if (parser_.parse(request.body).get(root) != simdjson::SUCCESS || !root.is_object()) {
        return finish(wsi, request, 400, errorBody("body must be a JSON object"));
    }
    simdjson::dom::element data;
    if (root["data"].get(data) != simdjson::SUCCESS) {
        return finish(wsi, request, 400, errorBody("missing data"));
    }
    std::vector<std::string_view> channels;
    const auto max_channel = static_cast<size_t>(worker_.config().limits.max_channel_bytes);
    if (request.broadcast) {
        simdjson::dom::array list;
        if (root["channels"].get(list) != simdjson::SUCCESS || list.size() == 0 ||
            list.size() > kMaxBroadcastChannels) {
            return finish(wsi, request, 400,
                          errorBody("channels must be an array of 1..1000 channel names"));
        }
        for (simdjson::dom::element e : list) {
            std::string_view name;
            if (e.get(name) != simdjson::SUCCESS || !protocol::validChannel(name, max_channel)) {
                return finish(wsi, request, 400, errorBody("invalid channel name"));
            }
            channels.push_back(name);
        }
    } else {
        std::string_view name;
        if (root["channel"].get(name) != simdjson::SUCCESS ||
            !protocol::validChannel(name, max_channel)) {
            return finish(wsi, request, 400, errorBody("missing or invalid channel"));
        }
        channels.push_back(name);
    }
    if (!worker_.broker().usable()) {
        worker_.metrics().broker_publish_failures.add(static_cast<int64_t>(channels.size()));
        return finish(wsi, request, 503, errorBody("broker unavailable"));
    }
    // Minified once; every channel gets the same bytes.
    const std::string payload = simdjson::minify(data);
    request.id = next_id_++;
    request.outstanding = channels.size();
    request.channels = channels.size();
    pending_[request.id] = {wsi, &request};
    for (std::string_view channel : channels) {
        worker_.publish(channel, payload, PublishTicket{kTicketBit | request.id, 0, false});
    }
    return 0;
}

void HttpApi::onPublishResult(const PublishTicket& ticket, PublishStatus status) {
    auto it = pending_.find(ticket.session_id & ~kTicketBit);
    if (it == pending_.end()) return;  // the client went away meanwhile
    auto [wsi, request] = it->second;
    if (status != PublishStatus::Accepted) request->failed = true;  // counted by the worker
    if (--request->outstanding > 0) return;
    pending_.erase(it);
    if (request->failed) {
        finish(wsi, *request, 503, errorBody("broker unavailable"));
    } else {
        finish(wsi, *request, 200,
               R"({"ok":true,"channels":)" + std::to_string(request->channels) + "}");
    }
}

int HttpApi::onWriteable(lws* wsi, Request*& slot) {
    if (slot == nullptr || slot->status == 0) return 0;
    int rc = http::respond(wsi, slot->status, kJson, slot->response);
    delete slot;
    slot = nullptr;
    if (rc != 0) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void HttpApi::onClosed(Request*& slot) {
    if (slot == nullptr) return;
    if (slot->id != 0) pending_.erase(slot->id);
    delete slot;
    slot = nullptr;
}

}  // namespace wsrelay
