#include "message_format.h"

#include <charconv>
#include <cstdio>

namespace wsrelay::loadgen {
namespace {

bool parseNumberAfter(std::string_view text, std::string_view key, size_t from, uint64_t& value,
                      size_t& end) {
    size_t at = text.find(key, from);
    if (at == std::string_view::npos) return false;
    const char* first = text.data() + at + key.size();
    auto [ptr, ec] = std::from_chars(first, text.data() + text.size(), value);
    if (ec != std::errc()) return false;
    end = size_t(ptr - text.data());
    return true;
}

Delivery classifyPayload(std::string_view payload, bool with_sender) {
    Delivery d;
    if (payload.substr(0, kWarmupPayload.size()) == kWarmupPayload) {
        d.kind = Delivery::Kind::Warmup;
        return d;
    }
    size_t end = 0;
    if (!parseNumberAfter(payload, "\"s\":", 0, d.seq, end) ||
        !parseNumberAfter(payload, "\"t\":", end, d.sent_ns, end) ||
        (with_sender && !parseNumberAfter(payload, "\"f\":", end, d.sender, end))) {
        return d;
    }
    d.kind = Delivery::Kind::Measured;
    return d;
}

}  // namespace

void PayloadWriter::append(std::string& out, uint64_t seq, uint64_t sent_ns, int64_t sender) {
    char head[96];
    int n = sender < 0
                ? std::snprintf(head, sizeof head, "{\"s\":%llu,\"t\":%llu,\"p\":\"",
                                static_cast<unsigned long long>(seq),
                                static_cast<unsigned long long>(sent_ns))
                : std::snprintf(head, sizeof head, "{\"s\":%llu,\"t\":%llu,\"f\":%lld,\"p\":\"",
                                static_cast<unsigned long long>(seq),
                                static_cast<unsigned long long>(sent_ns),
                                static_cast<long long>(sender));
    const size_t base = size_t(n) + 2;  // + "\"}"
    const size_t pad = size_ > base ? size_ - base : 0;
    if (pad_.size() < pad) pad_.assign(pad, 'x');
    out.append(head, size_t(n));
    out.append(pad_, 0, pad);
    out += "\"}";
}

Delivery classifyFrame(std::string_view frame, Protocol protocol, std::string_view channel,
                       bool with_sender) {
    if (protocol == Protocol::Raw) return classifyPayload(frame, with_sender);
    Delivery d;
    if (frame.find("\"op\":\"message\"") == std::string_view::npos) {
        d.kind = frame.find("\"op\":\"error\"") != std::string_view::npos
                     ? Delivery::Kind::ErrorFrame
                     : Delivery::Kind::Control;
        return d;
    }
    size_t at = frame.find("\"channel\":\"");
    if (at == std::string_view::npos || frame.substr(at + 11, channel.size()) != channel ||
        frame.substr(at + 11 + channel.size(), 1) != "\"") {
        return d;
    }
    size_t data = frame.find("\"data\":");
    if (data == std::string_view::npos) return d;
    return classifyPayload(frame.substr(data + 7), with_sender);
}

}  // namespace wsrelay::loadgen
