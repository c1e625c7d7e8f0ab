#include "ws_codec.h"

#include <cstring>

namespace wsrelay::loadgen {
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

uint32_t rotl(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }

void sha1Block(uint32_t h[5], const uint8_t* block) {
    uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
        w[i] = uint32_t(block[4 * i]) << 24 | uint32_t(block[4 * i + 1]) << 16 |
               uint32_t(block[4 * i + 2]) << 8 | uint32_t(block[4 * i + 3]);
    }
    for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rotl(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool containsTokenIgnoreCase(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        size_t comma = list.find(',');
        if (equalsIgnoreCase(trim(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace

std::array<uint8_t, 20> sha1(std::string_view data) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t full = data.size() / 64;
    for (size_t i = 0; i < full; ++i) {
        sha1Block(h, reinterpret_cast<const uint8_t*>(data.data()) + 64 * i);
    }
    uint8_t tail[128] = {};
    size_t rest = data.size() - 64 * full;
    std::memcpy(tail, data.data() + 64 * full, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = uint64_t(data.size()) * 8;
    for (int i = 0; i < 8; ++i) tail[tail_len - 1 - i] = uint8_t(bits >> (8 * i));
    sha1Block(h, tail);
    if (tail_len == 128) sha1Block(h, tail + 64);
    std::array<uint8_t, 20> out{};
    for (int i = 0; i < 5; ++i) {
        for (int j = 0; j < 4; ++j) out[4 * i + j] = uint8_t(h[i] >> (24 - 8 * j));
    }
    return out;
}

std::string base64(const uint8_t* data, size_t len) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((len + 2) / 3 * 4);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = uint32_t(data[i]) << 16;
        if (i + 1 < len) v |= uint32_t(data[i + 1]) << 8;
        if (i + 2 < len) v |= data[i + 2];
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < len ? kAlphabet[(v >> 6) & 63] : '=';
        out += i + 2 < len ? kAlphabet[v & 63] : '=';
    }
    return out;
}

std::string acceptFor(std::string_view client_key) {
    std::string joined(client_key);
    joined += kGuid;
    auto digest = sha1(joined);
    return base64(digest.data(), digest.size());
}

std::string handshakeRequest(std::string_view host, std::string_view path, std::string_view key,
                             std::string_view extra_headers) {
    std::string req;
    req.reserve(192);
    req += "GET ";
    req += path;
    req += " HTTP/1.1\r\nHost: ";
    req += host;
    req += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
    req += key;
    req += "\r\nSec-WebSocket-Version: 13\r\n";
    req += extra_headers;
    req += "\r\n";
    return req;
}

ParseStatus parseHandshakeResponse(std::string_view buf, std::string_view expected_accept,
                                   size_t& consumed, std::string& error) {
    size_t end = buf.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (buf.size() > 16384) {
            error = "handshake response header too long";
            return ParseStatus::Failed;
        }
        return ParseStatus::Incomplete;
    }
    std::string_view head = buf.substr(0, end + 2);
    size_t eol = head.find("\r\n");
    std::string_view status = head.substr(0, eol);
    if (status.substr(0, 9) != "HTTP/1.1 " || status.substr(9, 3) != "101") {
        error = "handshake refused: " + std::string(status);
        return ParseStatus::Failed;
    }
    bool upgrade = false, connection = false, accept = false;
    head.remove_prefix(eol + 2);
    while (!head.empty()) {
        eol = head.find("\r\n");
        std::string_view line = head.substr(0, eol);
        head.remove_prefix(eol + 2);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view name = trim(line.substr(0, colon));
        std::string_view value = trim(line.substr(colon + 1));
        if (equalsIgnoreCase(name, "upgrade")) upgrade = equalsIgnoreCase(value, "websocket");
        if (equalsIgnoreCase(name, "connection")) {
            connection = containsTokenIgnoreCase(value, "upgrade");
        }
        if (equalsIgnoreCase(name, "sec-websocket-accept")) accept = value == expected_accept;
    }
    if (!upgrade || !connection || !accept) {
        error = !upgrade      ? "handshake without Upgrade: websocket"
                : !connection ? "handshake without Connection: upgrade"
                              : "handshake with a wrong Sec-WebSocket-Accept";
        return ParseStatus::Failed;
    }
    consumed = end + 4;
    return ParseStatus::Ok;
}

void appendClientFrame(std::string& out, Opcode opcode, std::string_view payload, uint32_t mask) {
    uint8_t header[14];
    size_t n = 0;
    header[n++] = uint8_t(0x80 | uint8_t(opcode));
    uint64_t len = payload.size();
    if (len < 126) {
        header[n++] = uint8_t(0x80 | len);
    } else if (len <= 0xFFFF) {
        header[n++] = 0x80 | 126;
        header[n++] = uint8_t(len >> 8);
        header[n++] = uint8_t(len);
    } else {
        header[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; --i) header[n++] = uint8_t(len >> (8 * i));
    }
    uint8_t key[4] = {uint8_t(mask >> 24), uint8_t(mask >> 16), uint8_t(mask >> 8), uint8_t(mask)};
    std::memcpy(header + n, key, 4);
    n += 4;
    size_t start = out.size();
    out.append(reinterpret_cast<const char*>(header), n);
    out.append(payload);
    char* p = out.data() + start + n;
    size_t i = 0;
    uint64_t key8;
    uint8_t rep[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    std::memcpy(&key8, rep, 8);
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        std::memcpy(&v, p + i, 8);
        v ^= key8;
        std::memcpy(p + i, &v, 8);
    }
    for (; i < len; ++i) p[i] = char(p[i] ^ key[i & 3]);
}

ParseStatus decodeFrameHeader(const uint8_t* data, size_t len, FrameHeader& out) {
    if (len < 2) return ParseStatus::Incomplete;
    if (data[0] & 0x30) return ParseStatus::Failed;  // RSV2, RSV3: no extension uses them
    out.fin = (data[0] & 0x80) != 0;
    out.rsv1 = (data[0] & 0x40) != 0;
    uint8_t op = data[0] & 0x0F;
    if (op > 0xA || (op > 0x2 && op < 0x8)) return ParseStatus::Failed;
    out.opcode = Opcode(op);
    out.masked = (data[1] & 0x80) != 0;
    uint64_t length = data[1] & 0x7F;
    size_t n = 2;
    if (length == 126) {
        if (len < 4) return ParseStatus::Incomplete;
        length = uint64_t(data[2]) << 8 | data[3];
        n = 4;
    } else if (length == 127) {
        if (len < 10) return ParseStatus::Incomplete;
        length = 0;
        for (int i = 0; i < 8; ++i) length = length << 8 | data[2 + i];
        n = 10;
        if (length >> 63) return ParseStatus::Failed;
    }
    if (op >= 0x8 && (!out.fin || length > 125)) return ParseStatus::Failed;
    if (out.masked) {
        if (len < n + 4) return ParseStatus::Incomplete;
        n += 4;
    }
    out.length = length;
    out.header_bytes = n;
    return ParseStatus::Ok;
}

}  // namespace wsrelay::loadgen
