#include "relay/edge/http_routes.h"

#include <strings.h>

#include <string>
#include <vector>

#include "adapters/redis_payload.h"
#include "relay/admission/upgrade_gate.h"
#include "relay/edge/worker.h"
#include "relay/http/http_answer.h"
#include "relay/http/ports.h"

namespace wsrelay::http {
namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kPrometheus = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kNotFound = R"({"error":"not found"})";

bool isGet(lws* wsi) { return lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0; }

// Whether the port `wsi` came in on serves `endpoint` (listen.internal_port, http/ports.h).
bool servedHere(Worker& worker, lws* wsi, Endpoint endpoint) {
    return serves(worker.gate().portOf(wsi), endpoint,
                  worker.context().config.listen.internal_port != 0);
}

// A POST to the publish API: what HttpApi needs of its head, read from lws (the key as lws copies
// it: a value over 255 bytes reads as none).
int serveApi(Worker& worker, lws* wsi, std::string_view path, HttpApi::Request*& api) {
    std::string key(256, '\0');
    const int n =
        lws_hdr_custom_copy(wsi, key.data(), static_cast<int>(key.size()), "x-api-key:", 10);
    key.resize(n > 0 ? static_cast<size_t>(n) : 0);
    const std::string content_length = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    HttpApi::Head head;
    head.path = path;
    head.api_key = key;
    head.content_length = content_length;
    head.chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
    head.client = worker.gate().clientOf(wsi);
    return worker.httpApi().onRequest(wsi, head, api);
}

}  // namespace

HttpApi::Io apiIo() {
    return {[](lws* wsi) { lws_callback_on_writable(wsi); }, answer};
}

int serve(Worker& worker, lws* wsi, const char* uri, HttpApi::Request*& api) {
    std::string_view path = uri != nullptr ? uri : "";
    // Whatever the method: a path this port does not serve does not exist here.
    if (!servedHere(worker, wsi, endpointOf(path, worker.context().config.websocket.path))) {
        return answer(wsi, 404, kJson, kNotFound);
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0 && HttpApi::handles(path)) {
        return serveApi(worker, wsi, path, api);
    }
    if (!isGet(wsi)) return answer(wsi, 405, kJson, R"({"error":"method not allowed"})");
    if (path == "/healthz") return answer(wsi, 200, kJson, R"({"status":"ok"})");
    if (path == "/readyz") {
        std::string reason = worker.context().shared.notReadyReason();
        if (reason.empty()) return answer(wsi, 200, kJson, R"({"ready":true})");
        std::string body = R"({"ready":false,"reason":)";
        appendJsonString(reason, body);
        body += '}';
        return answer(wsi, 503, kJson, body);
    }
    if (path == "/metrics") {
        return answer(wsi, 200, kPrometheus, worker.context().shared.registry.render());
    }
    if (path == worker.context().config.websocket.path) {
        return answer(wsi, 426, kJson,
                      R"({"error":"this endpoint speaks WebSocket: send an Upgrade request"})");
    }
    return answer(wsi, 404, kJson, kNotFound);
}

int confirmUpgrade(Worker& worker, lws* wsi, const char* upgrade) {
    auto& m = worker.context().metrics;
    // lws 4.1.6 also offers h2c here, and upgrades to it when allowed.
    if (upgrade == nullptr || strcasecmp(upgrade, "websocket") != 0) {
        m.handshakes[metrics::HandshakeResult::BadRequest].add();
        return refuseUpgrade(wsi, 400, "bad request", "only the websocket upgrade is supported");
    }
    if (header(wsi, WSI_TOKEN_GET_URI) == worker.context().config.websocket.path) {
        if (servedHere(worker, wsi, Endpoint::WebSocket)) return worker.gate().confirm(wsi);
        m.handshakes[metrics::HandshakeResult::Path].add();
        return refuseUpgrade(wsi, 404, "not found", kNoWebSocketHere);
    }
    m.handshakes[metrics::HandshakeResult::Path].add();
    return refuseUpgrade(wsi, 404, "not found", "no WebSocket endpoint at this path");
}

}  // namespace wsrelay::http
