#include "http_publish_sink.h"

#include <cctype>
#include <charconv>

#include "process_info.h"
#include "socket_util.h"

namespace wsrelay::loadgen {
namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(uint8_t(a[i])) != std::tolower(uint8_t(b[i]))) return false;
    }
    return true;
}

bool containsIgnoreCase(std::string_view haystack, std::string_view needle) {
    for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
        if (equalsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
    }
    return false;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

struct ResponseHead {
    int status = 0;
    bool has_length = false;
    uint64_t length = 0;
    bool chunked = false;
    bool close = false;
};

bool parseHead(std::string_view head, ResponseHead& out) {
    size_t eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    if (status_line.substr(0, 5) != "HTTP/" || status_line.size() < 12) return false;
    std::string_view code = status_line.substr(9, 3);
    auto [ptr, ec] = std::from_chars(code.data(), code.data() + 3, out.status);
    if (ec != std::errc() || ptr != code.data() + 3) return false;
    out.close = status_line.substr(0, 8) == "HTTP/1.0";
    while (eol != std::string_view::npos) {
        head.remove_prefix(eol + 2);
        eol = head.find("\r\n");
        std::string_view line = head.substr(0, eol);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view name = trim(line.substr(0, colon));
        std::string_view value = trim(line.substr(colon + 1));
        if (equalsIgnoreCase(name, "content-length")) {
            auto [p, e] = std::from_chars(value.data(), value.data() + value.size(), out.length);
            if (e != std::errc() || p != value.data() + value.size()) return false;
            out.has_length = true;
        } else if (equalsIgnoreCase(name, "transfer-encoding")) {
            out.chunked = containsIgnoreCase(value, "chunked");
        } else if (equalsIgnoreCase(name, "connection")) {
            if (containsIgnoreCase(value, "close")) out.close = true;
            if (containsIgnoreCase(value, "keep-alive")) out.close = false;
        }
    }
    return true;
}

// The end of a chunked body starting at `pos`, or npos while incomplete (or malformed: the
// connection's close then reports it).
size_t chunkedEnd(std::string_view data, size_t pos) {
    for (;;) {
        size_t eol = data.find("\r\n", pos);
        if (eol == std::string_view::npos) return std::string_view::npos;
        uint64_t size = 0;
        auto [ptr, ec] = std::from_chars(data.data() + pos, data.data() + eol, size, 16);
        if (ec != std::errc() || ptr == data.data() + pos) return std::string_view::npos;
        pos = eol + 2;
        if (size == 0) {
            if (data.substr(pos, 2) == "\r\n") return pos + 2;
            size_t end = data.find("\r\n\r\n", pos);
            return end == std::string_view::npos ? end : end + 4;
        }
        if (data.size() < pos + size + 2) return std::string_view::npos;
        pos += size + 2;
    }
}

}  // namespace

HttpPublishSink::HttpPublishSink(RunState& state, Poller& poller) : state_(state) {
    if (!parseUrl(state.options.publish_url, "http", addr_, authority_, path_, address_error_)) {
        address_error_ = "--publish-url: " + address_error_;
    }
    for (int i = 0; i < state.options.http_connections; ++i) {
        Slot slot;
        slot.conn = std::make_unique<TcpConnection>(poller, *this, uint32_t(i));
        slots_.push_back(std::move(slot));
    }
}

bool HttpPublishSink::connect(Slot& slot) {
    slot.busy = false;
    slot.opened = false;
    slot.reconnect = false;
    slot.until_close_status = 0;
    if (!slot.conn->start(addr_, sourceAddress(slot.conn->index(), state_.options.sources))) {
        state_.reportError("http publisher: " + slot.conn->error());
        state_.setup_failed = true;
        return false;
    }
    return true;
}

bool HttpPublishSink::start() {
    if (!address_error_.empty()) {
        state_.reportError(address_error_);
        return false;
    }
    for (Slot& slot : slots_) {
        if (!connect(slot)) return false;
    }
    return true;
}

bool HttpPublishSink::ready() const {
    for (const Slot& slot : slots_) {
        if (!slot.conn->open()) return false;
    }
    return true;
}

bool HttpPublishSink::canPublish() const {
    for (const Slot& slot : slots_) {
        if (slot.conn->open() && !slot.busy) return true;
    }
    return false;
}

void HttpPublishSink::publish(uint32_t channel, std::string_view payload) {
    Slot* slot = nullptr;
    for (size_t i = 0; i < slots_.size() && slot == nullptr; ++i) {
        Slot& s = slots_[(cursor_ + i) % slots_.size()];
        if (s.conn->open() && !s.busy) slot = &s;
    }
    if (slot == nullptr) return;  // the publisher asks canPublish() first
    cursor_ = (slot->conn->index() + 1) % slots_.size();

    const std::string& name = state_.channel_names[channel];
    const bool raw = state_.options.protocol == Protocol::Raw;
    body_.clear();
    if (raw) {
        body_ += payload;
    } else {
        body_ += "{\"channel\":\"";
        body_ += name;
        body_ += "\",\"data\":";
        body_ += payload;
        body_ += '}';
    }
    request_.clear();
    request_ += "POST ";
    request_ += path_;
    if (raw) {
        request_ += path_.find('?') == std::string::npos ? '?' : '&';
        request_ += "channel=";
        request_ += name;
    }
    request_ += " HTTP/1.1\r\nHost: ";
    request_ += authority_;
    request_ += "\r\nContent-Type: application/json\r\nContent-Length: ";
    request_ += std::to_string(body_.size());
    if (!state_.options.api_key.empty()) {
        request_ += "\r\nX-API-Key: ";
        request_ += state_.options.api_key;
    }
    request_ += "\r\n\r\n";
    request_ += body_;
    slot->conn->queue(request_);
    slot->busy = true;
    ++outstanding_;
}

void HttpPublishSink::flush() {
    for (Slot& slot : slots_) {
        if (slot.reconnect) {
            connect(slot);
        } else if (slot.conn->open()) {
            slot.conn->flush();
        }
    }
}

void HttpPublishSink::onTcpOpen(TcpConnection& conn) { slots_[conn.index()].opened = true; }

void HttpPublishSink::answered(Slot& slot, int status, std::string_view head) {
    slot.busy = false;
    if (outstanding_ > 0) --outstanding_;
    if (status < 200 || status > 299) {
        ++failures_;
        state_.reportError("http publish answered " + std::string(head.substr(0, 200)));
    }
}

size_t HttpPublishSink::onTcpData(TcpConnection& conn, std::string_view data) {
    Slot& slot = slots_[conn.index()];
    size_t pos = 0;
    while (pos < data.size()) {
        if (!slot.busy || slot.until_close_status != 0) return data.size();  // nothing expected
        const size_t head_end = data.find("\r\n\r\n", pos);
        if (head_end == std::string_view::npos) break;
        const std::string_view head = data.substr(pos, head_end + 2 - pos);
        ResponseHead h;
        if (!parseHead(head, h)) {
            answered(slot, 0, head);
            conn.close();
            slot.reconnect = true;
            return 0;
        }
        size_t end = head_end + 4;
        const bool bodyless = h.status == 204 || h.status == 304 || h.status / 100 == 1;
        if (bodyless) {
            // no body
        } else if (h.chunked) {
            end = chunkedEnd(data, end);
            if (end == std::string_view::npos) break;
        } else if (h.has_length) {
            if (data.size() - end < h.length) break;
            end += size_t(h.length);
        } else {
            slot.until_close_status = h.status;
            return data.size();
        }
        if (h.status / 100 == 1) {
            pos = end;  // an interim answer: the real one follows
            continue;
        }
        answered(slot, h.status, head);
        pos = end;
        if (h.close) {
            conn.close();
            slot.reconnect = true;
            return 0;
        }
    }
    return pos;
}

void HttpPublishSink::onTcpClosed(TcpConnection& conn, std::string_view error) {
    Slot& slot = slots_[conn.index()];
    if (slot.until_close_status != 0) {
        answered(slot, slot.until_close_status, "(body ended by the close)");
    } else if (slot.busy) {
        answered(slot, 0, "nothing: the connection closed first");
    }
    if (!slot.opened) {
        state_.reportError("http publisher: " + std::string(error));
        state_.setup_failed = true;
        return;
    }
    slot.reconnect = true;
}

}  // namespace wsrelay::loadgen
