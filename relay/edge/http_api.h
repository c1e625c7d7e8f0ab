#pragma once

#include <simdjson.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "adapters/broker.h"
#include "adapters/client_address.h"
#include "relay/admission/address_limits.h"
#include "relay/edge/http_api_presence.h"
#include "relay/fleet/fleet_api.h"

struct lws;

namespace wsrelay {

struct WorkerContext;

// POST /api/publish {"channel":C,"data":D} and POST /api/broadcast {"channels":[...],"data":D}
// for backends without a broker client: authorised by X-API-Key (api.key), published through the
// worker's broker so every instance delivers, answered once the broker took every message.
// POST /api/history {"channel":C,"limit":L,"since":{...}} reads a channel's history through the
// worker's HistoryReads. POST /api/disconnect, /api/subscribe, /api/unsubscribe, /api/channels,
// /api/channel and /api/batch act on the whole fleet through FleetApi (docs/api.md). Every path is
// one line of the route table (kRoutes in http_api.cc). One per worker, on its thread.
class HttpApi {
public:
    // Tickets of API publishes carry this bit in session_id so results find their request.
    static constexpr uint64_t kTicketBit = uint64_t{1} << 63;

    // What the API needs of a request head; the edge reads it from lws.
    struct Head {
        std::string_view path;
        std::string_view api_key;         // the X-API-Key value; empty when absent
        std::string_view content_length;  // the Content-Length text; empty when absent
        bool chunked = false;             // a Transfer-Encoding header came
        AddressKey client{};              // who the per-address limits know it as
    };
    // How the API answers on a connection, which it only holds as a handle: the edge passes lws's
    // (lws_callback_on_writable, http::answer), a unit test records.
    struct Io {
        // Asks for onWriteable on the connection.
        std::function<void(lws*)> ask_writable;
        // Writes a whole response and ends the connection; returns what the lws callback returns.
        std::function<int(lws*, unsigned status, std::string_view content_type,
                          std::string_view body, unsigned retry_after_s)>
            answer;
    };

    HttpApi(WorkerContext& ctx, Io io);
    ~HttpApi();

    // The state of one API request, kept in the connection's lws data while it is in flight.
    struct Request;

    static bool handles(std::string_view path);
    // LWS_CALLBACK_HTTP for a POST to an API path: checks the framing and the key; a refusal of
    // the framing is answered at once. Returns what the lws callback must return.
    int onRequest(lws* wsi, const Head& head, Request*& slot);
    int onBody(Request& request, const char* data, size_t len);
    int onBodyComplete(lws* wsi, Request& request);
    int onWriteable(lws* wsi, Request*& slot);
    void onClosed(Request*& slot);
    // An accepted publish of a channel with history says where it went (`offset`, `epoch`).
    void onPublishResult(const PublishTicket& ticket, PublishStatus status, uint64_t offset = 0,
                         std::string_view epoch = {});

    // What serves one path: reads request.body and answers through finish(), now or later (a
    // later answer parks the request first: park(), answerParked()).
    using Handler = int (HttpApi::*)(lws* wsi, Request& request);
    struct Route {
        std::string_view path;
        Handler handler;
    };

private:
    static const Route kRoutes[];
    static const Route* route(std::string_view path);
    int finish(lws* wsi, Request& request, unsigned status, std::string body);
    // Keeps the request until answerParked(id) (ignored once the client has gone); returns its id.
    uint64_t park(lws* wsi, Request& request);
    void answerParked(uint64_t id, unsigned status, std::string body);
    int publish(lws* wsi, Request& request);
    int readHistory(lws* wsi, Request& request);
    // http_api_fleet.cc: the fleet commands, one path each, and /api/batch.
    int fleetCommand(lws* wsi, Request& request);
    int batch(lws* wsi, Request& request);
    struct Batch;
    void runBatch(uint64_t id, std::shared_ptr<Batch> state);
    void answerHistory(uint64_t id, const std::optional<std::string>& since_epoch,
                       const HistoryAnswer& answer);
    // POST /api/presence and /api/presence_stats (http_api_presence.cc).
    int readPresence(lws* wsi, Request& request);

    WorkerContext& ctx_;
    const Io io_;
    simdjson::dom::parser parser_;
    FleetApi fleet_api_;
    ApiKeyThrottle key_throttle_;
    uint64_t next_id_ = 1;
    std::unordered_map<uint64_t, std::pair<lws*, Request*>> pending_;
};

}  // namespace wsrelay
