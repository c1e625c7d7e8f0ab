// The benchmark floor: the least a WebSocket server can do to relay Redis pub/sub messages, so the
// CPU it spends per delivery is the cost of the kernel work every server shares
// (tests/bench/peers). One thread, one level-triggered epoll loop. GET /ws?channel=NAME subscribes
// the connection to NAME; one RESP connection SUBSCRIBEs the channels that have clients here; each
// message becomes one text frame, built once and send()-ed to each subscriber. Client frames are
// read and dropped (ping → pong, close → close). No JSON, no metrics, no server pings.
//
//   wsrelay_bench_floor --port 8080 --redis 127.0.0.1:6379

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wsrelay::floor {
namespace {

constexpr size_t kMaxHandshakeBytes = 8192;
// wsrelay's default limits.send_queue_bytes: a client that falls this far behind is closed.
constexpr size_t kMaxPendingBytes = 1 << 20;
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kMaxEvents = 256;
constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr uint64_t kListenerTag = UINT64_MAX;
constexpr uint64_t kRedisTag = UINT64_MAX - 1;

struct Connection {
    int fd = -1;
    bool upgraded = false;
    bool joined = false;
    bool dead = false;
    bool watching_out = false;
    std::string in;
    std::string out;
    size_t out_offset = 0;
    // Payload bytes of the current client data frame still to be discarded.
    uint64_t skip = 0;
    std::string channel;
    size_t slot = 0;  // index in the channel's subscriber list
};

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using ChannelMap =
    std::unordered_map<std::string, std::vector<Connection*>, StringHash, std::equal_to<>>;

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
        char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
        if (x != y) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Query values decoded as Node's URLSearchParams and Go's URL.Query() do.
std::string percentDecode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 &&
                   hexValue(s[i + 2]) >= 0) {
            out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string channelFromTarget(std::string_view target) {
    size_t q = target.find('?');
    if (target.substr(0, q) != "/ws" || q == std::string_view::npos) return {};
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        if (pair.starts_with("channel=")) return percentDecode(pair.substr(8));
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return {};
}

std::string acceptKey(std::string_view key) {
    std::string input(key);
    input += kWebSocketGuid;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<char*>(encoded), static_cast<size_t>(n));
}

void appendFrameHeader(uint8_t opcode, size_t length, std::string& out) {
    out += static_cast<char>(0x80 | opcode);
    if (length < 126) {
        out += static_cast<char>(length);
    } else if (length <= 0xffff) {
        out += static_cast<char>(126);
        out += static_cast<char>(length >> 8);
        out += static_cast<char>(length & 0xff);
    } else {
        out += static_cast<char>(127);
        for (int shift = 56; shift >= 0; shift -= 8) {
            out += static_cast<char>((static_cast<uint64_t>(length) >> shift) & 0xff);
        }
    }
}

void appendBulk(std::string_view s, std::string& out) {
    out += '$';
    out += std::to_string(s.size());
    out += "\r\n";
    out += s;
    out += "\r\n";
}

enum class Parse { Complete, Incomplete, Malformed };

// One RESP2 reply from the front of `buf`: a flat array of bulk strings and integers (what a
// subscribed connection receives), or an error. `consumed` is its length.
Parse parseReply(std::string_view buf, size_t& consumed, std::vector<std::string_view>& parts,
                 std::string_view& error) {
    parts.clear();
    error = {};
    size_t pos = 0;
    auto line = [&](std::string_view& out) {
        size_t end = buf.find("\r\n", pos);
        if (end == std::string_view::npos) return false;
        out = buf.substr(pos, end - pos);
        pos = end + 2;
        return true;
    };
    auto number = [](std::string_view s, long long& n) {
        if (s.empty()) return false;
        bool negative = s.front() == '-';
        if (negative) s.remove_prefix(1);
        if (s.empty() || s.size() > 18) return false;
        n = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return false;
            n = n * 10 + (c - '0');
        }
        if (negative) n = -n;
        return true;
    };
    std::string_view head;
    if (!line(head)) return Parse::Incomplete;
    if (head.empty()) return Parse::Malformed;
    if (head.front() == '-') {
        error = head.substr(1);
        consumed = pos;
        return Parse::Complete;
    }
    long long count = 0;
    if (head.front() != '*' || !number(head.substr(1), count) || count < 0) return Parse::Malformed;
    for (long long i = 0; i < count; ++i) {
        std::string_view element;
        if (!line(element)) return Parse::Incomplete;
        if (element.empty()) return Parse::Malformed;
        long long n = 0;
        if (!number(element.substr(1), n)) return Parse::Malformed;
        if (element.front() == ':') {
            parts.push_back(element.substr(1));
        } else if (element.front() == '$' && n >= 0) {
            if (buf.size() < pos + static_cast<size_t>(n) + 2) return Parse::Incomplete;
            parts.push_back(buf.substr(pos, static_cast<size_t>(n)));
            pos += static_cast<size_t>(n) + 2;
        } else {
            return Parse::Malformed;
        }
    }
    consumed = pos;
    return Parse::Complete;
}

class FloorServer {
public:
    bool start(uint16_t port, const std::string& redis_host, const std::string& redis_port);
    void run();

private:
    void acceptAll();
    void onClientEvent(Connection& c, uint32_t events);
    void readClient(Connection& c);
    bool handshake(Connection& c);
    void discardFrames(Connection& c);
    void readRedis();
    void onRedisMessage(std::string_view channel, std::string_view payload);
    void sendBytes(Connection& c, std::string_view bytes);
    void flush(Connection& c);
    void watchOut(Connection& c, bool on);
    void markDead(Connection& c);
    void closeDead();
    void join(Connection& c);
    void leave(Connection& c);
    void redisCommand(std::string_view verb, std::string_view channel);
    void flushRedis();

    int epoll_ = -1;
    int listener_ = -1;
    bool listener_paused_ = false;
    int redis_ = -1;
    bool redis_watching_out_ = false;
    std::string redis_in_;
    std::string redis_out_;
    std::vector<std::unique_ptr<Connection>> by_fd_;
    std::vector<Connection*> dead_;
    ChannelMap channels_;
    std::string frame_;
    std::vector<std::string_view> parts_;
    char scratch_[kReadChunk];
};

bool FloorServer::start(uint16_t port, const std::string& redis_host,
                        const std::string& redis_port) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (epoll_ < 0 || listener_ < 0) return false;
    int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listener_, 4096) != 0) {
        std::fprintf(stderr, "floor: cannot listen on 127.0.0.1:%u: %s\n", port,
                     std::strerror(errno));
        return false;
    }

    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(redis_host.c_str(), redis_port.c_str(), &hints, &found) != 0 || !found) {
        std::fprintf(stderr, "floor: cannot resolve %s\n", redis_host.c_str());
        return false;
    }
    redis_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool connected = redis_ >= 0 && connect(redis_, found->ai_addr, found->ai_addrlen) == 0;
    freeaddrinfo(found);
    if (!connected) {
        std::fprintf(stderr, "floor: cannot connect to redis %s:%s: %s\n", redis_host.c_str(),
                     redis_port.c_str(), std::strerror(errno));
        return false;
    }
    fcntl(redis_, F_SETFL, fcntl(redis_, F_GETFL) | O_NONBLOCK);
    setsockopt(redis_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenerTag;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, listener_, &ev);
    ev.data.u64 = kRedisTag;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, redis_, &ev);
    std::fprintf(stderr, "floor: listening on 127.0.0.1:%u\n", port);
    return true;
}

void FloorServer::run() {
    epoll_event events[kMaxEvents];
    for (;;) {
        int n = epoll_wait(epoll_, events, kMaxEvents, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            std::perror("floor: epoll_wait");
            std::exit(1);
        }
        for (int i = 0; i < n; ++i) {
            uint64_t tag = events[i].data.u64;
            if (tag == kListenerTag) {
                acceptAll();
            } else if (tag == kRedisTag) {
                if (events[i].events & EPOLLOUT) flushRedis();
                if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readRedis();
            } else if (tag < by_fd_.size() && by_fd_[tag] && !by_fd_[tag]->dead) {
                onClientEvent(*by_fd_[tag], events[i].events);
            }
        }
        // Closing only here keeps a descriptor from being reused while this batch still names it.
        closeDead();
    }
}

void FloorServer::acceptAll() {
    for (;;) {
        int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE) {
                // Level-triggered, the listener would wake the loop forever: it rests until a
                // connection closes.
                epoll_ctl(epoll_, EPOLL_CTL_DEL, listener_, nullptr);
                listener_paused_ = true;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                std::perror("floor: accept");
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (static_cast<size_t>(fd) >= by_fd_.size()) by_fd_.resize(static_cast<size_t>(fd) + 1);
        auto c = std::make_unique<Connection>();
        c->fd = fd;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = static_cast<uint64_t>(fd);
        if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            continue;
        }
        by_fd_[static_cast<size_t>(fd)] = std::move(c);
    }
}

void FloorServer::onClientEvent(Connection& c, uint32_t events) {
    if (events & EPOLLERR) {
        markDead(c);
        return;
    }
    if (events & EPOLLOUT) flush(c);
    if (!c.dead && (events & (EPOLLIN | EPOLLHUP))) readClient(c);
}

void FloorServer::readClient(Connection& c) {
    ssize_t n = recv(c.fd, scratch_, sizeof scratch_, 0);
    if (n == 0) {
        markDead(c);
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) markDead(c);
        return;
    }
    c.in.append(scratch_, static_cast<size_t>(n));
    if (!c.upgraded && !handshake(c)) return;
    discardFrames(c);
}

// False until the request is complete and answered (or refused).
bool FloorServer::handshake(Connection& c) {
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
        if (c.in.size() > kMaxHandshakeBytes) markDead(c);
        return false;
    }
    std::string_view request(c.in.data(), end + 2);
    size_t line_end = request.find("\r\n");
    std::string_view request_line = request.substr(0, line_end);
    std::string channel;
    if (request_line.starts_with("GET ")) {
        std::string_view target = request_line.substr(4);
        target = target.substr(0, target.find(' '));
        channel = channelFromTarget(target);
    }
    std::string_view key;
    size_t pos = line_end + 2;
    while (pos < request.size()) {
        size_t next = request.find("\r\n", pos);
        std::string_view header = request.substr(pos, next - pos);
        pos = next + 2;
        size_t colon = header.find(':');
        if (colon != std::string_view::npos &&
            equalsIgnoreCase(trim(header.substr(0, colon)), "sec-websocket-key")) {
            key = trim(header.substr(colon + 1));
        }
    }
    if (channel.empty() || key.empty()) {
        sendBytes(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        markDead(c);
        return false;
    }
    std::string response =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ";
    response += acceptKey(key);
    response += "\r\n\r\n";
    c.in.erase(0, end + 4);
    c.upgraded = true;
    c.channel = std::move(channel);
    sendBytes(c, response);
    if (c.dead) return false;
    join(c);
    return true;
}

void FloorServer::discardFrames(Connection& c) {
    std::string_view buf = c.in;
    size_t pos = 0;
    while (!c.dead) {
        if (c.skip > 0) {
            uint64_t take = std::min<uint64_t>(c.skip, buf.size() - pos);
            if (take == 0) break;
            pos += static_cast<size_t>(take);
            c.skip -= take;
            continue;
        }
        size_t avail = buf.size() - pos;
        if (avail < 2) break;
        auto byte = [&](size_t i) { return static_cast<uint8_t>(buf[pos + i]); };
        uint8_t opcode = byte(0) & 0x0f;
        bool masked = (byte(1) & 0x80) != 0;
        uint64_t length = byte(1) & 0x7f;
        size_t header = 2 + (length == 126 ? 2 : length == 127 ? 8 : 0) + (masked ? 4 : 0);
        if (avail < header) break;
        if (length == 126) {
            length = (uint64_t{byte(2)} << 8) | byte(3);
        } else if (length == 127) {
            length = 0;
            for (size_t i = 0; i < 8; ++i) length = (length << 8) | byte(2 + i);
            if (length >> 63) {
                markDead(c);
                break;
            }
        }
        if (opcode < 8) {
            pos += header;
            c.skip = length;
            continue;
        }
        if (length > 125) {
            markDead(c);
            break;
        }
        if (avail < header + length) break;
        std::string payload(buf.substr(pos + header, static_cast<size_t>(length)));
        if (masked) {
            const char* mask = buf.data() + pos + header - 4;
            for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= mask[i % 4];
        }
        pos += header + static_cast<size_t>(length);
        if (opcode == 0x8) {
            std::string reply;
            appendFrameHeader(0x8, std::min<size_t>(payload.size(), 2), reply);
            reply.append(payload, 0, std::min<size_t>(payload.size(), 2));
            sendBytes(c, reply);
            markDead(c);
        } else if (opcode == 0x9) {
            std::string reply;
            appendFrameHeader(0xA, payload.size(), reply);
            reply += payload;
            sendBytes(c, reply);
        }
    }
    if (!c.dead) c.in.erase(0, pos);
}

void FloorServer::readRedis() {
    ssize_t n = recv(redis_, scratch_, sizeof scratch_, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        std::fprintf(stderr, "floor: redis connection lost\n");
        std::exit(1);
    }
    if (n < 0) return;
    redis_in_.append(scratch_, static_cast<size_t>(n));
    std::string_view buf = redis_in_;
    size_t pos = 0;
    for (;;) {
        size_t consumed = 0;
        std::string_view error;
        Parse result = parseReply(buf.substr(pos), consumed, parts_, error);
        if (result == Parse::Incomplete) break;
        if (result == Parse::Malformed || !error.empty()) {
            std::fprintf(stderr, "floor: redis: %.*s\n", static_cast<int>(error.size()),
                         error.empty() ? "malformed reply" : error.data());
            std::exit(1);
        }
        pos += consumed;
        if (parts_.size() == 3 && parts_[0] == "message") onRedisMessage(parts_[1], parts_[2]);
    }
    redis_in_.erase(0, pos);
}

void FloorServer::onRedisMessage(std::string_view channel, std::string_view payload) {
    auto it = channels_.find(channel);
    if (it == channels_.end()) return;
    frame_.clear();
    appendFrameHeader(0x1, payload.size(), frame_);
    frame_ += payload;
    for (Connection* c : it->second) sendBytes(*c, frame_);
}

// Writes now when nothing is queued; otherwise, or for what the socket did not take, queues.
void FloorServer::sendBytes(Connection& c, std::string_view bytes) {
    if (c.dead) return;
    if (c.out.size() == c.out_offset) {
        ssize_t n = send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                markDead(c);
                return;
            }
            n = 0;
        }
        bytes.remove_prefix(static_cast<size_t>(n));
        if (bytes.empty()) return;
    }
    if (c.out.size() - c.out_offset + bytes.size() > kMaxPendingBytes) {
        markDead(c);
        return;
    }
    c.out += bytes;
    watchOut(c, true);
}

void FloorServer::flush(Connection& c) {
    while (c.out_offset < c.out.size()) {
        ssize_t n =
            send(c.fd, c.out.data() + c.out_offset, c.out.size() - c.out_offset, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) markDead(c);
            return;
        }
        c.out_offset += static_cast<size_t>(n);
    }
    c.out.clear();
    c.out_offset = 0;
    watchOut(c, false);
}

void FloorServer::watchOut(Connection& c, bool on) {
    if (c.watching_out == on) return;
    c.watching_out = on;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u64 = static_cast<uint64_t>(c.fd);
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
}

void FloorServer::markDead(Connection& c) {
    if (c.dead) return;
    c.dead = true;
    dead_.push_back(&c);
}

void FloorServer::closeDead() {
    for (Connection* c : dead_) {
        if (c->joined) leave(*c);
        int fd = c->fd;
        close(fd);
        by_fd_[static_cast<size_t>(fd)].reset();
    }
    if (!dead_.empty() && listener_paused_) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kListenerTag;
        epoll_ctl(epoll_, EPOLL_CTL_ADD, listener_, &ev);
        listener_paused_ = false;
    }
    dead_.clear();
}

void FloorServer::join(Connection& c) {
    auto [it, inserted] = channels_.try_emplace(c.channel);
    if (inserted) redisCommand("SUBSCRIBE", c.channel);
    c.slot = it->second.size();
    c.joined = true;
    it->second.push_back(&c);
}

void FloorServer::leave(Connection& c) {
    auto it = channels_.find(c.channel);
    if (it == channels_.end()) return;
    std::vector<Connection*>& subscribers = it->second;
    Connection* moved = subscribers.back();
    subscribers[c.slot] = moved;
    moved->slot = c.slot;
    subscribers.pop_back();
    if (subscribers.empty()) {
        redisCommand("UNSUBSCRIBE", c.channel);
        channels_.erase(it);
    }
}

void FloorServer::redisCommand(std::string_view verb, std::string_view channel) {
    redis_out_ += "*2\r\n";
    appendBulk(verb, redis_out_);
    appendBulk(channel, redis_out_);
    if (!redis_watching_out_) flushRedis();
}

void FloorServer::flushRedis() {
    while (!redis_out_.empty()) {
        ssize_t n = send(redis_, redis_out_.data(), redis_out_.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            std::fprintf(stderr, "floor: redis connection lost\n");
            std::exit(1);
        }
        redis_out_.erase(0, static_cast<size_t>(n));
    }
    bool want = !redis_out_.empty();
    if (want == redis_watching_out_) return;
    redis_watching_out_ = want;
    epoll_event ev{};
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
    ev.data.u64 = kRedisTag;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, redis_, &ev);
}

int usage() {
    std::fprintf(stderr, "usage: wsrelay_bench_floor --port PORT --redis HOST:PORT\n");
    return 2;
}

}  // namespace
}  // namespace wsrelay::floor

int main(int argc, char** argv) {
    using namespace wsrelay::floor;
    long port = 8080;
    std::string redis = "127.0.0.1:6379";
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (i + 1 >= argc) return usage();
        if (arg == "--port") {
            char* end = nullptr;
            port = std::strtol(argv[++i], &end, 10);
            if (*end != '\0' || port <= 0 || port > 65535) return usage();
        } else if (arg == "--redis") {
            redis = argv[++i];
        } else {
            return usage();
        }
    }
    size_t colon = redis.rfind(':');
    if (colon == std::string::npos) return usage();

    std::signal(SIGPIPE, SIG_IGN);
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    FloorServer server;
    if (!server.start(static_cast<uint16_t>(port), redis.substr(0, colon),
                      redis.substr(colon + 1))) {
        return 1;
    }
    server.run();
}
