#include "relay/edge/lws_wire.h"

#include <libwebsockets.h>
#include <sys/socket.h>

#include <cerrno>

namespace wsrelay {

Wire::Write LwsWire::write(const char* data, size_t len) {
    // Writing outside lws's WRITEABLE callback is safe only while lws holds no unsent bytes.
    if (lws_partial_buffered(wsi_)) return Write::Held;
    if (held_ != 0) {  // lws has written what it held
        memory_.sub(held_);
        held_ = 0;
    }
    // Straight to the socket: for raw bytes lws_write adds only its extension hook and bookkeeping
    // on the way to the same send(), and touches several more cache lines of the wsi. What the
    // kernel does not take goes to lws_write (LWS_WRITE_RAW never modifies the buffer, so a shared
    // frame can be passed as is): lws keeps it and writes it before anything else, its own pongs
    // and close frames included, so the stream stays whole, and calls back once it is flushed.
    ssize_t sent = ::send(fd_, data, len, MSG_NOSIGNAL);
    if (sent < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Write::Gone;
        sent = 0;
    }
    const auto taken = static_cast<size_t>(sent);
    if (taken < len) {
        if (lws_write(wsi_, reinterpret_cast<unsigned char*>(const_cast<char*>(data + taken)),
                      len - taken, LWS_WRITE_RAW) < 0) {
            return Write::Gone;
        }
        // lws copied what its own send() did not take; counted whole (it may have sent some).
        if (lws_partial_buffered(wsi_)) {
            held_ = static_cast<uint32_t>(len - taken);
            memory_.add(held_);
        }
    }
    return Write::Taken;
}

void LwsWire::settle() {
    if (lws_partial_buffered(wsi_)) return;
    memory_.sub(held_);
    held_ = 0;
}

void LwsWire::askWritable() { lws_callback_on_writable(wsi_); }

void LwsWire::setTimer(int64_t usecs) { lws_set_timer_usecs(wsi_, usecs); }

void LwsWire::closeWithin(int seconds) {
    lws_set_timeout(wsi_, PENDING_TIMEOUT_CLOSE_SEND, seconds);
}

void LwsWire::setCloseReason(int code, std::string_view reason) {
    lws_close_reason(wsi_, static_cast<lws_close_status>(code),
                     reinterpret_cast<unsigned char*>(const_cast<char*>(reason.data())),
                     reason.size());
}

}  // namespace wsrelay
