#pragma once

#include <cstdint>

#include "relay/common/memory_budget.h"
#include "relay/session/wire.h"

struct lws;

namespace wsrelay {

// A Session's Wire over an lws WebSocket connection, allocated with its session (edge::WebSocket)
// when the connection is established. What it hands lws (the part of a write the kernel did not
// take) counts against the memory budget until lws has written it.
class LwsWire final : public Wire {
public:
    // `fd` is `wsi`'s socket, kept so a write need not read it from the wsi.
    LwsWire(lws* wsi, int fd, MemoryCredit& memory) : wsi_(wsi), memory_(memory), fd_(fd) {}
    ~LwsWire() { memory_.sub(held_); }
    LwsWire(const LwsWire&) = delete;
    LwsWire& operator=(const LwsWire&) = delete;

    // The connection is writeable (lws calls back once it has written what it held).
    void onWriteable() {
        if (held_ != 0) settle();
    }

    // Wire
    Write write(const char* data, size_t len) override;
    void askWritable() override;
    void setTimer(int64_t usecs) override;
    void closeWithin(int seconds) override;
    void setCloseReason(int code, std::string_view reason) override;

private:
    // Uncounts what lws held once it has none left.
    void settle();

    lws* wsi_;
    MemoryCredit& memory_;
    int fd_;
    uint32_t held_ = 0;  // handed to lws and counted; at most one write (<= 1 GiB)
};

}  // namespace wsrelay
