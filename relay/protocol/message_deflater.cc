#include "relay/protocol/message_deflater.h"

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "relay/protocol/protocol.h"

namespace wsrelay::protocol {
namespace {

// What a sync flush ends with (an empty stored block), and what a client appends again.
constexpr unsigned char kTail[4] = {0x00, 0x00, 0xff, 0xff};
constexpr size_t kMaxHeader = 10;
// FIN, RSV1 (this message is compressed), text.
constexpr uint8_t kDeflatedText = 0xC1;
// Raw DEFLATE (negative: no zlib header), with the 32 KiB window every client's inflater accepts.
constexpr int kWindowBits = -15;
// deflateReset clears the hash table before every message: memLevel 4's 2,048 entries are 4 KiB,
// memLevel 8's are 64 KiB (about 1 against 4 µs per message on the benchmark machine), and a
// message of a few KiB compresses the same with either.
constexpr int kMemLevel = 4;

// The payload of a server frame (unmasked): where it starts and how long it is.
struct Payload {
    size_t offset = 0;
    uint64_t len = 0;
};
Payload payloadOf(const Frame& frame) {
    const auto* b = reinterpret_cast<const unsigned char*>(frame.data());
    Payload p{2, b[1] & 0x7fu};
    if (p.len == 126) {
        p = {4, (uint64_t{b[2]} << 8) | b[3]};
    } else if (p.len == 127) {
        p = {10, 0};
        for (int i = 0; i < 8; ++i) p.len = (p.len << 8) | b[2 + i];
    }
    return p;
}

}  // namespace

struct MessageDeflater::Impl {
    z_stream z{};
};

MessageDeflater::MessageDeflater(int level, size_t min_payload_bytes)
    : impl_(std::make_unique<Impl>()), min_payload_bytes_(min_payload_bytes) {
    if (deflateInit2(&impl_->z, level, Z_DEFLATED, kWindowBits, kMemLevel, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        throw std::runtime_error("cannot set up zlib's deflate");
    }
}

MessageDeflater::~MessageDeflater() { deflateEnd(&impl_->z); }

MessageDeflater::Result MessageDeflater::compress(const Frame& plain) {
    Result r;
    const Payload payload = payloadOf(plain);
    if (payload.len == 0 || payload.len < min_payload_bytes_) return r;
    r.in_bytes = payload.len;

    // zlib writes behind room for the longest header. A compressed frame is only worth sending
    // when smaller than the plain one: that, plus the tail that comes off, is all the room given.
    const size_t capacity = plain.size() + sizeof kTail;
    FramePtr out(Frame::allocate(capacity));
    auto* dst = reinterpret_cast<unsigned char*>(out->data()) + kMaxHeader;
    const auto room = static_cast<uInt>(capacity - kMaxHeader);

    z_stream& z = impl_->z;
    if (deflateReset(&z) != Z_OK) return r;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data() + payload.offset));
    z.avail_in = static_cast<uInt>(payload.len);
    z.next_out = dst;
    z.avail_out = room;
    // No room left: the flush may be unfinished, and the result would not be smaller anyway.
    if (deflate(&z, Z_SYNC_FLUSH) != Z_OK || z.avail_in != 0 || z.avail_out == 0) return r;
    const size_t produced = room - z.avail_out;
    if (produced < sizeof kTail ||
        std::memcmp(dst + produced - sizeof kTail, kTail, sizeof kTail) != 0) {
        return r;
    }
    const size_t n = produced - sizeof kTail;
    r.out_bytes = n;
    const size_t header = frameHeaderSize(n);
    if (header + n >= plain.size()) return r;
    std::memmove(out->data() + header, dst, n);
    writeFrameHeader(out->data(), kDeflatedText, n);
    out->setSize(header + n);
    out->setEnteredMicros(plain.enteredMicros());
    r.frame = std::move(out);
    return r;
}

}  // namespace wsrelay::protocol
