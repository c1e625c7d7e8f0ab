#pragma once

#include <libwebsockets.h>

#include "relay/edge/http_api.h"

namespace wsrelay {
class Session;
}

// The libwebsockets side of a worker: the protocol table's callbacks, translating LWS_CALLBACK_*
// into Worker and Session calls. The lws context's user pointer is the Worker.
namespace wsrelay::edge {

// Per-connection data lws allocates for the relay protocol (HTTP and WebSocket alike).
struct ConnectionData {
    Session* session;
    HttpApi::Request* api;  // an HTTP publish API request in flight on this connection
    bool origin_rejected;
};

int relayCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
int listenerCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);

}  // namespace wsrelay::edge
