#pragma once

#include <libwebsockets.h>

#include <string>
#include <string_view>

// Reading a request's headers and writing whole HTTP answers on an lws connection: what the
// routes, the publish API and the upgrade gate share. Nothing here knows the relay's state.
namespace wsrelay::http {

// The value of header `token` of the request lws parsed on `wsi`; empty when absent.
std::string header(lws* wsi, lws_token_indexes token);
// Refuses an upgrade before it happens: {"error":E,"reason":R} with `status` (401 adds
// WWW-Authenticate) and connection: close. Returns what CONFIRM_UPGRADE must return.
int refuseUpgrade(lws* wsi, unsigned status, std::string_view error, std::string_view reason);
// The complete HTTP/1.1 refusal refuseUpgrade() writes, for sockets lws has not seen yet;
// `retry_after_s` nonzero adds Retry-After (a 429 or 503).
std::string refusalResponse(unsigned status, std::string_view error, std::string_view reason,
                            unsigned retry_after_s = 0);
// Writes a complete response with `Connection: close` and ends the connection: every
// connection on the port carries one request. The upgrade gate decides on that one request
// (docs/security.md), and Debian's lws 4.1.6 loops forever on a pipelined request with a body
// that it parses from bytes it already holds (a GET, then a POST in the same packet, hung the
// worker at 100 % CPU), so lws never gets to parse a second request. Returns what the lws
// callback must return (-1: lws sends what the socket did not take, then closes).
// `retry_after_s` nonzero adds Retry-After.
int answer(lws* wsi, unsigned status, std::string_view content_type, std::string_view body,
           unsigned retry_after_s = 0);

}  // namespace wsrelay::http
