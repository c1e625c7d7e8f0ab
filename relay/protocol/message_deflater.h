#pragma once

#include <cstddef>
#include <memory>

#include "relay/protocol/frame.h"

namespace wsrelay::protocol {

// permessage-deflate (RFC 7692) for server frames: one per worker, used by the hub to build a
// message's compressed frame once for every subscriber that negotiated the extension.
//
// Each message is compressed on its own: the stream is reset before every message, so none refers
// to an earlier one. That is what server_no_context_takeover asks for, and it is valid whatever
// the handshake said: a client whose inflater keeps its context is just never sent a reference
// into it. The output ends with a sync flush, never a final block, so such an inflater goes on
// after it.
class MessageDeflater {
public:
    // `level`: zlib's 1 (fastest) .. 9 (smallest). Payloads under `min_payload_bytes` are not
    // compressed. Throws std::runtime_error when zlib cannot be set up (startup only).
    MessageDeflater(int level, size_t min_payload_bytes);
    ~MessageDeflater();
    MessageDeflater(const MessageDeflater&) = delete;
    MessageDeflater& operator=(const MessageDeflater&) = delete;

    struct Result {
        FramePtr frame;        // the compressed frame, or null (see compress)
        size_t in_bytes = 0;   // payload bytes given to zlib; 0 when under the minimum
        size_t out_bytes = 0;  // what zlib gave back, without the 4-byte tail; 0 when it failed
    };
    // The compressed variant of `plain`, a complete single-frame text message as encode*() builds
    // it: its payload as raw DEFLATE with the 00 00 ff ff tail removed (RFC 7692 7.2.1), under a
    // header with FIN, RSV1 and the text opcode, and `plain`'s entry time. No frame when the
    // payload is under the minimum, when the compressed frame would not be smaller than `plain`,
    // or when zlib fails: the client then gets `plain`.
    Result compress(const Frame& plain);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    size_t min_payload_bytes_;
};

}  // namespace wsrelay::protocol
