#include "adapters/redis_payload.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace wsrelay {
namespace {

// Length of the valid UTF-8 sequence at p (n bytes available), 0 if it is not one.
size_t utf8Length(const unsigned char* p, size_t n) {
    const unsigned char c = p[0];
    if (c < 0x80) return 1;
    auto cont = [&](size_t i, unsigned char lo, unsigned char hi) {
        return i < n && p[i] >= lo && p[i] <= hi;
    };
    if (c >= 0xC2 && c <= 0xDF) return cont(1, 0x80, 0xBF) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
        const unsigned char hi = c == 0xED ? 0x9F : 0xBF;  // no UTF-16 surrogates
        return cont(1, lo, hi) && cont(2, 0x80, 0xBF) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
        const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;  // nothing above U+10FFFF
        return cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
    }
    return 0;
}

}  // namespace

void appendStamp(int64_t entered_us, std::string& out) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, entered_us).ptr;
    out += kStampMark;
    out.append(digits, end);
    out += kStampMark;
}

int64_t takeStamp(std::string_view& payload) {
    // Longest stamp: RS, 19 digits, RS.
    if (payload.size() < 3 || payload[0] != kStampMark) return 0;
    const size_t close = payload.find(kStampMark, 1);
    if (close == std::string_view::npos || close > 20) return 0;
    int64_t us = 0;
    const char* first = payload.data() + 1;
    const char* last = payload.data() + close;
    const auto [ptr, ec] = std::from_chars(first, last, us);
    if (ec != std::errc() || ptr != last || us <= 0) return 0;
    payload.remove_prefix(close + 1);
    return us;
}

void appendPosition(uint64_t offset, std::string_view epoch, std::string& out) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, offset).ptr;
    out += kPositionMark;
    out.append(digits, end);
    out += kPositionMark;
    out.append(epoch);
    out += kPositionMark;
}

bool isEpoch(std::string_view epoch) {
    if (epoch.empty() || epoch.size() > 32) return false;
    for (const char c : epoch) {
        const bool alnum =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum) return false;
    }
    return true;
}

uint64_t takePosition(std::string_view& payload, std::string_view& epoch) {
    // Longest envelope: US, 16 digits, US, 32 characters, US.
    if (payload.size() < 5 || payload[0] != kPositionMark) return 0;
    const size_t second = payload.substr(0, 18).find(kPositionMark, 1);
    if (second == std::string_view::npos) return 0;
    uint64_t offset = 0;
    const char* first = payload.data() + 1;
    const char* last = payload.data() + second;
    const auto [ptr, ec] = std::from_chars(first, last, offset);
    if (ec != std::errc() || ptr != last || offset == 0 || offset > (uint64_t{1} << 53) - 1) {
        return 0;
    }
    // Searched within the longest epoch only, so a payload that merely starts alike costs little.
    const size_t length = payload.substr(second + 1, 33).find(kPositionMark);
    if (length == std::string_view::npos) return 0;
    const std::string_view text = payload.substr(second + 1, length);
    if (!isEpoch(text)) return 0;
    epoch = text;
    payload.remove_prefix(second + 1 + length + 1);
    return offset;
}

void appendJsonString(std::string_view payload, std::string& out) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.reserve(out.size() + payload.size() + 2);
    out += '"';
    const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
    const size_t n = payload.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
        } else if (c < 0x20) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
            ++i;
        } else if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
        } else if (const size_t len = utf8Length(p + i, n - i); len > 0) {
            out.append(payload.data() + i, len);
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    out += '"';
}

std::string_view RedisPayload::toJson(std::string_view payload) {
    if (isJson(payload)) return payload;
    wrapped_.clear();
    appendJsonString(payload, wrapped_);
    return wrapped_;
}

bool RedisPayload::isJson(std::string_view payload) {
    // simdjson reads up to SIMDJSON_PADDING bytes past the input.
    const size_t need = payload.size() + simdjson::SIMDJSON_PADDING;
    if (padded_capacity_ < need) {
        padded_capacity_ = std::max(need, padded_capacity_ * 2);
        padded_ = std::make_unique<char[]>(padded_capacity_);
    }
    std::memcpy(padded_.get(), payload.data(), payload.size());
    std::memset(padded_.get() + payload.size(), 0, simdjson::SIMDJSON_PADDING);
    return parser_.parse(padded_.get(), payload.size(), false).error() == simdjson::SUCCESS;
}

}  // namespace wsrelay
