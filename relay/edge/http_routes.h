#pragma once

#include <libwebsockets.h>

#include <string>
#include <string_view>

#include "relay/edge/http_api.h"
#include "relay/http/http_answer.h"

namespace wsrelay {
class Worker;
}

// Plain HTTP on the relay's ports: /healthz, /readyz, /metrics, and refusals on the WebSocket
// path; with listen.internal_port set, each port answers only its own endpoints (http/ports.h).
namespace wsrelay::http {

// LWS_CALLBACK_HTTP: answers GET requests in one write, hands POSTs to the publish API (which
// keeps its state in `api`). Returns what the callback must return.
int serve(Worker& worker, lws* wsi, const char* uri, HttpApi::Request*& api);
// How the publish API answers on lws connections.
HttpApi::Io apiIo();
// LWS_CALLBACK_HTTP_CONFIRM_UPGRADE (`upgrade`: the Upgrade header lws read): 0 lets the upgrade
// proceed; >0 when a refusal was written.
int confirmUpgrade(Worker& worker, lws* wsi, const char* upgrade);
}  // namespace wsrelay::http
