#include "adapters/base64url.h"

#include <array>
#include <cstdint>

namespace wsrelay {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr uint8_t kInvalid = 0xff;

constexpr std::array<uint8_t, 256> makeDecodeTable() {
    std::array<uint8_t, 256> table{};
    for (auto& v : table) v = kInvalid;
    for (uint8_t i = 0; i < 64; ++i) table[static_cast<uint8_t>(kAlphabet[i])] = i;
    return table;
}
constexpr std::array<uint8_t, 256> kDecode = makeDecodeTable();

uint32_t sextet(char c) { return kDecode[static_cast<uint8_t>(c)]; }

}  // namespace

bool base64UrlDecode(std::string_view in, std::string& out, bool allow_padding) {
    out.clear();
    if (allow_padding && in.size() % 4 == 0 && !in.empty()) {
        if (in.back() == '=') in.remove_suffix(1);
        if (in.back() == '=') in.remove_suffix(1);
    }
    const size_t tail = in.size() % 4;
    if (tail == 1) return false;
    out.resize(in.size() / 4 * 3 + (tail == 0 ? 0 : tail - 1));
    auto* dst = reinterpret_cast<unsigned char*>(out.data());
    size_t i = 0;
    for (; i + 4 <= in.size(); i += 4) {
        const uint32_t a = sextet(in[i]), b = sextet(in[i + 1]), c = sextet(in[i + 2]),
                       d = sextet(in[i + 3]);
        if ((a | b | c | d) > 63) return false;
        const uint32_t v = a << 18 | b << 12 | c << 6 | d;
        *dst++ = static_cast<unsigned char>(v >> 16);
        *dst++ = static_cast<unsigned char>(v >> 8);
        *dst++ = static_cast<unsigned char>(v);
    }
    if (tail == 2) {
        const uint32_t a = sextet(in[i]), b = sextet(in[i + 1]);
        if ((a | b) > 63 || (b & 0x0f) != 0) return false;
        *dst++ = static_cast<unsigned char>(a << 2 | b >> 4);
    } else if (tail == 3) {
        const uint32_t a = sextet(in[i]), b = sextet(in[i + 1]), c = sextet(in[i + 2]);
        if ((a | b | c) > 63 || (c & 0x03) != 0) return false;
        *dst++ = static_cast<unsigned char>(a << 2 | b >> 4);
        *dst++ = static_cast<unsigned char>((b & 0x0f) << 4 | c >> 2);
    }
    return true;
}

std::string base64UrlEncode(std::string_view in) {
    std::string out;
    out.reserve((in.size() * 4 + 2) / 3);
    const auto* src = reinterpret_cast<const unsigned char*>(in.data());
    size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const uint32_t v = uint32_t{src[i]} << 16 | uint32_t{src[i + 1]} << 8 | src[i + 2];
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    const size_t rest = in.size() - i;
    if (rest == 1) {
        const uint32_t v = uint32_t{src[i]} << 16;
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
    } else if (rest == 2) {
        const uint32_t v = uint32_t{src[i]} << 16 | uint32_t{src[i + 1]} << 8;
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
    }
    return out;
}

}  // namespace wsrelay
