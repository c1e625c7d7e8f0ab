#pragma once

#include <libwebsockets.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "relay/admission/address_limits.h"
#include "relay/admission/user_limit.h"
#include "relay/edge/http_api.h"
#include "relay/edge/lws_wire.h"
#include "relay/session/session.h"
#include "relay/session/worker_context.h"

// The libwebsockets side of a worker: the protocol table's callbacks, translating LWS_CALLBACK_*
// into Worker and Session calls. The lws context's user pointer is the Worker.
namespace wsrelay::edge {

// An established WebSocket connection: its session and the session's wire, in one allocation
// made by the worker. The wire comes first, so what a write reads of both shares the session's
// first cache lines: a write then costs no cache miss for the wire.
struct WebSocket {
    WebSocket(WorkerContext& ctx, lws* wsi, uint64_t id, std::unique_ptr<Identity> identity)
        : wire(wsi, lws_get_socket_fd(wsi), ctx.memory),
          session(ctx, wire, id, std::move(identity)) {}

    LwsWire wire;
    Session session;
    AddressSlot address_slot;  // its count under limits.connections_per_ip, released with it
    UserSlot user_slot;        // its entry under limits.max_connections_per_user, left with it
};

// Per-connection data lws allocates (zeroed) and frees for the relay protocol (HTTP and WebSocket
// alike).
struct ConnectionData {
    WebSocket* socket;      // from LWS_CALLBACK_ESTABLISHED until LWS_CALLBACK_CLOSED
    HttpApi::Request* api;  // an HTTP publish API request in flight on this connection
    bool origin_rejected;
    bool deflate;  // permessage-deflate was negotiated (LWS_CALLBACK_CONFIRM_EXTENSION_OKAY)
};

// Whether the relay takes a client's permessage-deflate offer (its Sec-WebSocket-Extensions
// header); a declined offer leaves the client with plain frames. Two kinds of offer lws 4.1.6
// would take and then fail:
// - server_max_window_bits: lws answers only the argument-less parameters, so the value RFC 7692
//   requires in the answer is missing, and a client may fail the connection;
// - server_no_context_takeover without client_no_context_takeover: lws then drops its inflater
//   after every client message, while the client goes on compressing against the earlier ones,
//   and the next such message fails to inflate (the connection is dropped, 1006).
bool deflateOfferAcceptable(std::string_view extensions_header);

int relayCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
int listenerCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);

}  // namespace wsrelay::edge
