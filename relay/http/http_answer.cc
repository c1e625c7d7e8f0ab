#include "relay/http/http_answer.h"

#include <string>
#include <vector>

#include "adapters/redis_payload.h"

namespace wsrelay::http {
namespace {

const char* statusText(unsigned status) {
    switch (status) {
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 411: return "Length Required";
        case 413: return "Payload Too Large";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 503: return "Service Unavailable";
        default: return "Error";
    }
}

int writeResponse(lws* wsi, unsigned status, std::string_view content_type, std::string_view body,
                  unsigned retry_after_s) {
    std::vector<unsigned char> buf(LWS_PRE + 512 + body.size());
    unsigned char* start = buf.data() + LWS_PRE;
    unsigned char* p = start;
    unsigned char* end = buf.data() + buf.size();
    std::string length = std::to_string(body.size());
    const std::string retry_after = std::to_string(retry_after_s);
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
        (retry_after_s != 0 &&
         lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_RETRY_AFTER,
                                      reinterpret_cast<const unsigned char*>(retry_after.data()),
                                      static_cast<int>(retry_after.size()), &p, end)) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                     reinterpret_cast<const unsigned char*>("close"), 5, &p, end) ||
        (status == 426 && lws_add_http_header_by_token(
                              wsi, WSI_TOKEN_UPGRADE,
                              reinterpret_cast<const unsigned char*>("websocket"), 9, &p, end)) ||
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

std::string header(lws* wsi, lws_token_indexes token) {
    const int n = lws_hdr_total_length(wsi, token);
    if (n <= 0) return {};
    std::string value(static_cast<size_t>(n) + 1, '\0');
    if (lws_hdr_copy(wsi, value.data(), n + 1, token) < 0) return {};
    value.resize(static_cast<size_t>(n));
    return value;
}

int answer(lws* wsi, unsigned status, std::string_view content_type, std::string_view body,
           unsigned retry_after_s) {
    writeResponse(wsi, status, content_type, body, retry_after_s);
    return -1;  // lws sends what the socket did not take before it closes
}

std::string refusalResponse(unsigned status, std::string_view error, std::string_view reason,
                            unsigned retry_after_s) {
    // The reason may be the app's deny message: escaped, and cut to a sensible length.
    constexpr size_t kMaxReason = 256;
    std::string body = R"({"error":)";
    appendJsonString(error, body);
    body += R"(,"reason":)";
    if (reason.size() > kMaxReason) {
        size_t n = kMaxReason;
        while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
        reason = reason.substr(0, n);
    }
    appendJsonString(reason, body);
    body += '}';
    std::string response =
        "HTTP/1.1 " + std::to_string(status) + " " + statusText(status) +
        "\r\ncontent-type: application/json\r\ncontent-length: " + std::to_string(body.size()) +
        "\r\ncache-control: no-store\r\n";
    if (status == 401) response += "www-authenticate: Bearer error=\"invalid_token\"\r\n";
    if (retry_after_s != 0) response += "retry-after: " + std::to_string(retry_after_s) + "\r\n";
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
