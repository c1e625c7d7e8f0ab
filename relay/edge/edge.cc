#include "relay/edge/edge.h"

#include <new>
#include <string>
#include <string_view>

#include "relay/admission/upgrade_gate.h"
#include "relay/edge/http_routes.h"
#include "relay/edge/worker.h"
#include "relay/http/http_answer.h"
#include "relay/session/session.h"

namespace wsrelay::edge {
namespace {

Worker& workerOf(lws* wsi) { return *static_cast<Worker*>(lws_context_user(lws_get_context(wsi))); }

bool originAllowed(const Config& config, const std::string& origin) {
    const auto& allowed = config.websocket.allowed_origins;
    if (allowed.empty()) return true;
    for (const auto& a : allowed) {
        if (a == "*" || a == origin) return true;
    }
    return false;
}

}  // namespace

bool deflateOfferAcceptable(std::string_view extensions_header) {
    const auto has = [&](std::string_view p) {
        return extensions_header.find(p) != std::string_view::npos;
    };
    if (has("server_max_window_bits")) return false;
    return !has("server_no_context_takeover") || has("client_no_context_takeover");
}

int relayCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
    auto* conn = static_cast<ConnectionData*>(user);
    // Every connection lws had ends here, whatever state it reached (lws calls CLOSED_HTTP only
    // for established ones).
    if (reason == LWS_CALLBACK_WSI_DESTROY) {
        if (UpgradeGate* gate = workerOf(wsi).gateIfSetUp()) gate->destroyed(wsi);
        return 0;
    }
    if (reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE) {
        return http::confirmUpgrade(workerOf(wsi), wsi, static_cast<const char*>(in));
    }
    if (conn == nullptr) {
        // lws binds the per-connection data only once a request head is complete.
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
    switch (reason) {
        case LWS_CALLBACK_HTTP:
            if (workerOf(wsi).gate().onHttpRequest(wsi) < 0) return -1;
            return http::serve(workerOf(wsi), wsi, static_cast<const char*>(in), conn->api);

        case LWS_CALLBACK_HTTP_BODY:
            if (conn->api == nullptr) return 0;
            return workerOf(wsi).httpApi().onBody(*conn->api, static_cast<const char*>(in), len);

        case LWS_CALLBACK_HTTP_BODY_COMPLETION:
            if (conn->api == nullptr) return 0;
            return workerOf(wsi).httpApi().onBodyComplete(wsi, *conn->api);

        case LWS_CALLBACK_HTTP_WRITEABLE:
            return workerOf(wsi).httpApi().onWriteable(wsi, conn->api);

        case LWS_CALLBACK_CLOSED_HTTP: workerOf(wsi).httpApi().onClosed(conn->api); return 0;

        case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
            // Headers are only bound until the upgrade completes: decide on Origin now, act on it
            // once established so the browser gets a close code it can read (1008).
            conn->socket = nullptr;
            conn->origin_rejected =
                !originAllowed(workerOf(wsi).context().config, http::header(wsi, WSI_TOKEN_ORIGIN));
            return 0;

        case LWS_CALLBACK_CONFIRM_EXTENSION_OKAY: {
            // lws asks before it takes an extension the client offered (only permessage-deflate
            // is offered, with websocket.compression); 0 takes it. The relay compresses frames
            // itself: lws's deflater is never used (LwsWire writes raw frames only).
            if (std::string_view(static_cast<const char*>(in)) != "permessage-deflate") return 1;
            if (!deflateOfferAcceptable(http::header(wsi, WSI_TOKEN_EXTENSIONS))) return 1;
            conn->deflate = true;
            return 0;
        }

        case LWS_CALLBACK_ESTABLISHED: {
            conn->socket = workerOf(wsi).openSession(wsi, conn->origin_rejected, conn->deflate);
            return conn->socket != nullptr ? 0 : -1;
        }

        case LWS_CALLBACK_RECEIVE: {
            if (conn->socket == nullptr) return -1;
            Session::Piece piece;
            piece.binary = lws_frame_is_binary(wsi) != 0;
            piece.final = lws_is_final_fragment(wsi) != 0;
            piece.remaining = lws_remaining_packet_payload(wsi);
            return conn->socket->session.onReceive(static_cast<const char*>(in), len, piece);
        }

        case LWS_CALLBACK_SERVER_WRITEABLE:
            if (conn->socket == nullptr) return 0;
            conn->socket->wire.onWriteable();
            return conn->socket->session.onWriteable();

        case LWS_CALLBACK_TIMER:
            if (conn->socket != nullptr) return conn->socket->session.onTimer();
            return 0;

        case LWS_CALLBACK_RECEIVE_PONG:
            if (conn->socket != nullptr) conn->socket->session.onPong();
            return 0;

        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
            if (conn->socket != nullptr) {
                conn->socket->session.onPeerClose(static_cast<const unsigned char*>(in), len);
            }
            return 0;

        case LWS_CALLBACK_CLOSED:
            if (conn->socket != nullptr) {
                workerOf(wsi).closeSession(conn->socket);
                conn->socket = nullptr;
            }
            return 0;

        default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

int listenerCallback(lws* wsi, lws_callback_reasons reason, void*, void*, size_t) {
    if (reason == LWS_CALLBACK_RAW_RX_FILE)
        workerOf(wsi).onListenerReadable(lws_get_socket_fd(wsi));
    // lws binds an upgrade to the first protocol the client offers that it knows, and this one
    // has a name: a client offering it must not get a WebSocket no session owns.
    if (reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION) return 1;
    return 0;
}

}  // namespace wsrelay::edge
