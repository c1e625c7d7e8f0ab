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

// The same text every time (a fixed seed): only the measured fields differ between messages.
std::string wordPadding(size_t n) {
    static const char* const kWords[] = {"price", "volume", "symbol", "AAPL",   "MSFT", "bid",
                                         "ask",   "status", "open",   "closed", "true", "null"};
    std::string s;
    uint32_t x = 12345;
    while (s.size() < n) {
        x = x * 1103515245u + 12345u;
        s += kWords[(x >> 16) % 12];
        s += ' ';
        s += std::to_string((x >> 8) % 100000);
        s += ' ';
    }
    s.resize(n);
    return s;
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
    if (pad_.size() < pad) pad_ = words_ ? wordPadding(pad) : std::string(pad, 'x');
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
    constexpr std::string_view kChannel = R"("channel":")";
    size_t at = frame.find(kChannel);
    if (at == std::string_view::npos) return d;
    size_t pos = at + kChannel.size();
    if (frame.substr(pos, channel.size()) != channel ||
        frame.substr(pos + channel.size(), 1) != "\"") {
        return d;
    }
    pos += channel.size() + 1;
    // The relay writes its fields in one order: the position (channels with history) between the
    // channel and the data. Read where they are expected, with a search from here as the fallback.
    uint64_t offset = 0;
    std::string_view epoch;
    constexpr std::string_view kOffset = R"(,"offset":)";
    constexpr std::string_view kEpoch = R"(,"epoch":")";
    if (frame.substr(pos, kOffset.size()) == kOffset) {
        const char* first = frame.data() + pos + kOffset.size();
        auto [ptr, ec] = std::from_chars(first, frame.data() + frame.size(), offset);
        if (ec != std::errc()) return d;
        pos = size_t(ptr - frame.data());
        if (frame.substr(pos, kEpoch.size()) == kEpoch) {
            const size_t start = pos + kEpoch.size();
            const size_t end = frame.find('"', start);
            if (end == std::string_view::npos) return d;
            epoch = frame.substr(start, end - start);
            pos = end + 1;
        }
    }
    constexpr std::string_view kData = R"(,"data":)";
    size_t data;
    if (frame.substr(pos, kData.size()) == kData) {
        data = pos + kData.size();
    } else {
        data = frame.find(kData.substr(1), pos);
        if (data == std::string_view::npos) return d;
        data += kData.size() - 1;
    }
    d = classifyPayload(frame.substr(data), with_sender);
    d.offset = offset;
    d.epoch = epoch;
    return d;
}

}  // namespace wsrelay::loadgen
