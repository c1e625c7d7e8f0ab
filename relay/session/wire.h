#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wsrelay {

// What a Session does to its client's connection: LwsWire (relay/edge/lws_wire.h) over an lws
// WebSocket; a recording fake in unit tests. Events come back the other way, through the edge
// (Session::onWriteable, onTimer, onReceive...), never from inside these calls.
class Wire {
public:
    enum class Write : uint8_t {
        Taken,  // every byte: sent now or kept by the wire, which sends it before anything else
        Held,   // nothing taken: bytes of an earlier write are still unsent; wait for onWriteable
        Gone,   // the connection failed; nothing more can be sent
    };

    // Bytes of complete WebSocket frames, in order. The one call per socket write: the hot path.
    virtual Write write(const char* data, size_t len) = 0;
    // Calls the session's onWriteable once the socket can take more.
    virtual void askWritable() = 0;
    // The connection's one timer (keepalive, drain): onTimer in `usecs`; replaces any earlier one.
    virtual void setTimer(int64_t usecs) = 0;
    // A close is under way: the connection is dropped if it has not closed within `seconds`.
    virtual void closeWithin(int seconds) = 0;
    // The code and reason of the close frame, sent when the session's callback returns -1.
    virtual void setCloseReason(int code, std::string_view reason) = 0;

protected:
    ~Wire() = default;  // never owned through a Wire
};

}  // namespace wsrelay
