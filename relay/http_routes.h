#pragma once

#include <libwebsockets.h>

#include <string>
#include <string_view>

#include "relay/http_api.h"

namespace wsrelay {
class Worker;
}

// Plain HTTP on the relay's port: /healthz, /readyz, /metrics, and refusals on the WebSocket path.
namespace wsrelay::http {

// LWS_CALLBACK_HTTP: answers GET requests in one write, hands POSTs to the publish API (which
// keeps its state in `api`). Returns what the callback must return.
int serve(Worker& worker, lws* wsi, const char* uri, HttpApi::Request*& api);
// LWS_CALLBACK_HTTP_CONFIRM_UPGRADE (`upgrade`: the Upgrade header lws read): 0 lets the upgrade
// proceed; >0 when a refusal was written.
int confirmUpgrade(Worker& worker, lws* wsi, const char* upgrade);
// Refuses an upgrade before it happens: {"error":E,"reason":R} with `status` (401 adds
// WWW-Authenticate) and connection: close. Returns what CONFIRM_UPGRADE must return.
int refuseUpgrade(lws* wsi, unsigned status, std::string_view error, std::string_view reason);
// The complete HTTP/1.1 refusal refuseUpgrade() writes, for sockets lws has not seen yet.
std::string refusalResponse(unsigned status, std::string_view error, std::string_view reason);
// Writes a complete HTTP/1.1 response (with `Connection: close` when `close`). Returns 0, or -1
// when the connection must close.
int respond(lws* wsi, unsigned status, std::string_view content_type, std::string_view body,
            bool close);
// Writes a complete response and ends the request: the connection stays open for the next one,
// unless the upgrade gate reads request heads (then every connection carries one request, and
// the answer says Connection: close; lws sends what it holds before closing). Returns what the
// lws callback must return.
int answer(Worker& worker, lws* wsi, unsigned status, std::string_view content_type,
           std::string_view body);
// Writes a complete response with `Connection: close`, for a request whose body is not to be
// read. Returns -1: what the lws callback returns to close the connection once it is written.
int respondAndClose(lws* wsi, unsigned status, std::string_view content_type,
                    std::string_view body);

}  // namespace wsrelay::http
