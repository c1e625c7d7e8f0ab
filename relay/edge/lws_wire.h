#pragma once

#include "relay/session/wire.h"

struct lws;

namespace wsrelay {

// A Session's Wire over an lws WebSocket connection. It lives in the connection's lws data (no
// allocation of its own) and is built when the connection is established.
class LwsWire final : public Wire {
public:
    // `fd` is `wsi`'s socket, kept so a write need not read it from the wsi.
    LwsWire(lws* wsi, int fd) : wsi_(wsi), fd_(fd) {}

    // Wire
    Write write(const char* data, size_t len) override;
    void askWritable() override;
    void setTimer(int64_t usecs) override;
    void closeWithin(int seconds) override;
    void setCloseReason(int code, std::string_view reason) override;

private:
    lws* wsi_;
    int fd_;
};

}  // namespace wsrelay
