#include "relay/http_routes.h"

#include <string>
#include <vector>

#include "relay/worker.h"

namespace wsrelay::http {
namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kPrometheus = "text/plain; version=0.0.4; charset=utf-8";

const char* statusText(unsigned status) {
    switch (status) {
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 503: return "Service Unavailable";
        default: return "Error";
    }
}

bool isGet(lws* wsi) { return lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0; }

// Finishes the HTTP transaction; keep-alive connections stay open for the next request.
int complete(lws* wsi, int rc) {
    if (rc != 0) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int writeResponse(lws* wsi, unsigned status, std::string_view content_type, std::string_view body,
                  bool close) {
    std::vector<unsigned char> buf(LWS_PRE + 512 + body.size());
    unsigned char* start = buf.data() + LWS_PRE;
    unsigned char* p = start;
    unsigned char* end = buf.data() + buf.size();
    std::string length = std::to_string(body.size());
    if (lws_add_http_header_status(wsi, status, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     reinterpret_cast<const unsigned char*>(content_type.data()),
                                     static_cast<int>(content_type.size()), &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                     reinterpret_cast<const unsigned char*>(length.data()),
                                     static_cast<int>(length.size()), &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     reinterpret_cast<const unsigned char*>("no-store"), 8, &p,
                                     end) ||
        (status == 426 &&
         lws_add_http_header_by_token(wsi, WSI_TOKEN_UPGRADE,
                                      reinterpret_cast<const unsigned char*>("websocket"), 9, &p,
                                      end)) ||
        (close &&
         lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                      reinterpret_cast<const unsigned char*>("close"), 5, &p,
                                      end)) ||
        lws_finalize_http_header(wsi, &p, end)) {
        return -1;
    }
    // HTTP/1: headers and body leave in one write (lws allows one write per event).
    std::copy(body.begin(), body.end(), p);
    p += body.size();
    int n = static_cast<int>(p - start);
    return lws_write(wsi, start, static_cast<size_t>(n), LWS_WRITE_HTTP) == n ? 0 : -1;
}

}  // namespace

int respond(lws* wsi, unsigned status, std::string_view content_type, std::string_view body) {
    return writeResponse(wsi, status, content_type, body, false);
}

int respondAndClose(lws* wsi, unsigned status, std::string_view content_type,
                    std::string_view body) {
    // lws writes what the socket does not take before it closes (LRS_FLUSHING_BEFORE_CLOSE).
    writeResponse(wsi, status, content_type, body, true);
    return -1;
}

int serve(Worker& worker, lws* wsi, const char* uri, HttpApi::Request*& api) {
    std::string_view path = uri != nullptr ? uri : "";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0 && HttpApi::handles(path)) {
        return worker.httpApi().onRequest(wsi, path, api);
    }
    if (!isGet(wsi)) {
        return complete(wsi, respond(wsi, 405, kJson, R"({"error":"method not allowed"})"));
    }
    if (path == "/healthz") return complete(wsi, respond(wsi, 200, kJson, R"({"status":"ok"})"));
    if (path == "/readyz") {
        std::string reason = worker.shared().notReadyReason();
        if (reason.empty()) return complete(wsi, respond(wsi, 200, kJson, R"({"ready":true})"));
        return complete(wsi, respond(wsi, 503, kJson,
                                     R"({"ready":false,"reason":")" + reason + R"("})"));
    }
    if (path == "/metrics") {
        return complete(wsi, respond(wsi, 200, kPrometheus, worker.shared().registry.render()));
    }
    if (path == worker.config().websocket.path) {
        return complete(wsi, respond(wsi, 426, kJson,
                                     R"({"error":"this endpoint speaks WebSocket: send an Upgrade request"})"));
    }
    return complete(wsi, respond(wsi, 404, kJson, R"({"error":"not found"})"));
}

int confirmUpgrade(Worker& worker, lws* wsi) {
    char uri[256];
    int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    if (n >= 0 && std::string_view(uri, static_cast<size_t>(n)) == worker.config().websocket.path) {
        return worker.gate().confirm(wsi);
    }
    worker.metrics().handshakes[static_cast<size_t>(metrics::HandshakeResult::Path)].add();
    return refuseUpgrade(wsi, 404, "not found", "no WebSocket endpoint at this path");
}

std::string refusalResponse(unsigned status, std::string_view error, std::string_view reason) {
    const std::string body =
        R"({"error":")" + std::string(error) + R"(","reason":")" + std::string(reason) + "\"}";
    std::string response = "HTTP/1.1 " + std::to_string(status) + " " + statusText(status) +
                           "\r\ncontent-type: application/json\r\ncontent-length: " +
                           std::to_string(body.size()) + "\r\ncache-control: no-store\r\n";
    if (status == 401) response += "www-authenticate: Bearer error=\"invalid_token\"\r\n";
    response += "connection: close\r\n\r\n" + body;
    return response;
}

int refuseUpgrade(lws* wsi, unsigned status, std::string_view error, std::string_view reason) {
    // Written by hand: at this point lws has not recorded the request's HTTP version and would
    // answer "HTTP/1.0", which WebSocket clients refuse to parse.
    const std::string response = refusalResponse(status, error, reason);
    std::vector<unsigned char> buf(LWS_PRE + response.size());
    std::copy(response.begin(), response.end(), buf.begin() + LWS_PRE);
    const int len = static_cast<int>(response.size());
    if (lws_write(wsi, buf.data() + LWS_PRE, response.size(), LWS_WRITE_HTTP) != len) return -1;
    return 1;
}

}  // namespace wsrelay::http
