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
// Writes a complete response with `Connection: close` and ends the connection: every
// connection on the port carries one request. The upgrade gate decides on that one request
// (docs/security.md), and Debian's lws 4.1.6 loops forever on a pipelined request with a body
// that it parses from bytes it already holds (a GET, then a POST in the same packet, hung the
// worker at 100 % CPU), so lws never gets to parse a second request. Returns what the lws
// callback must return (-1: lws sends what the socket did not take, then closes).
int answer(lws* wsi, unsigned status, std::string_view content_type, std::string_view body);

}  // namespace wsrelay::http
