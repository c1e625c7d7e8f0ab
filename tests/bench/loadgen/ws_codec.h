#pragma once

// The client side of RFC 6455 the load generator needs: the opening handshake (with its own
// SHA-1 and base64, so the tool links nothing but libc/libstdc++) and the frame codec. Client
// frames are always masked; server frames of any length are decoded.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsrelay::loadgen {

std::array<uint8_t, 20> sha1(std::string_view data);
std::string base64(const uint8_t* data, size_t len);

// base64(SHA-1(key + RFC 6455 GUID)): what the server must send in Sec-WebSocket-Accept.
std::string acceptFor(std::string_view client_key);

std::string handshakeRequest(std::string_view host, std::string_view path, std::string_view key,
                             std::string_view extra_headers = {});

enum class ParseStatus { Incomplete, Ok, Failed };

// Checks an HTTP response for a 101 with the expected accept value. On Ok, `consumed` is the
// length of the header block (frames may follow it in the same buffer); on Failed, `error` says
// why.
ParseStatus parseHandshakeResponse(std::string_view buf, std::string_view expected_accept,
                                   size_t& consumed, std::string& error);

enum class Opcode : uint8_t {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
};

// Appends one complete masked frame (FIN set) to `out`.
void appendClientFrame(std::string& out, Opcode opcode, std::string_view payload, uint32_t mask);

struct FrameHeader {
    bool fin = false;
    bool rsv1 = false;  // permessage-deflate: the message is compressed
    Opcode opcode = Opcode::Text;
    bool masked = false;
    uint64_t length = 0;
    size_t header_bytes = 0;
};

// Ok when the whole header is in `data`; Failed on RSV2/RSV3, unknown opcodes, or control
// frames that are fragmented or longer than 125 bytes. RSV1 is reported (the caller refuses it
// unless permessage-deflate was negotiated).
ParseStatus decodeFrameHeader(const uint8_t* data, size_t len, FrameHeader& out);

}  // namespace wsrelay::loadgen
