#pragma once

// Reading a server frame back as a client would: the RFC 6455 header, then the payload.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "relay/protocol/frame.h"

namespace wsrelay::protocol {

struct DecodedFrame {
    bool fin = false;
    bool masked = false;
    uint8_t opcode = 0;
    size_t header_len = 0;
    uint64_t payload_len = 0;
    std::string_view payload;
    FramePtr frame;  // keeps `payload` alive
};

// Reads an RFC 6455 frame header the way a client would.
inline DecodedFrame decode(std::string_view bytes) {
    DecodedFrame f;
    EXPECT_GE(bytes.size(), 2u);
    const auto b0 = static_cast<uint8_t>(bytes[0]);
    const auto b1 = static_cast<uint8_t>(bytes[1]);
    f.fin = (b0 & 0x80) != 0;
    f.opcode = b0 & 0x0f;
    f.masked = (b1 & 0x80) != 0;
    const uint8_t len7 = b1 & 0x7f;
    if (len7 <= 125) {
        f.header_len = 2;
        f.payload_len = len7;
    } else if (len7 == 126) {
        f.header_len = 4;
        f.payload_len =
            (uint64_t{static_cast<uint8_t>(bytes[2])} << 8) | static_cast<uint8_t>(bytes[3]);
    } else {
        f.header_len = 10;
        for (int i = 0; i < 8; ++i) {
            f.payload_len = (f.payload_len << 8) | static_cast<uint8_t>(bytes[2 + i]);
        }
    }
    if (bytes.size() >= f.header_len) {
        f.payload = bytes.substr(f.header_len);
    }
    return f;
}

inline DecodedFrame decodeText(const FramePtr& frame) {
    EXPECT_TRUE(frame);
    DecodedFrame f = decode(frame->bytes());
    f.frame = frame;
    EXPECT_TRUE(f.fin);
    EXPECT_FALSE(f.masked);
    EXPECT_EQ(f.opcode, 0x1);
    EXPECT_EQ(f.payload_len, f.payload.size());
    EXPECT_EQ(frame->size(), f.header_len + f.payload.size());
    EXPECT_LE(frame->size(), frame->capacity());
    return f;
}

}  // namespace wsrelay::protocol
