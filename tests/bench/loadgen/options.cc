#include "options.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace wsrelay::loadgen {
namespace {

constexpr const char* kUsage = R"(usage: wsrelay_loadgen MODE [options]

modes:
  fanout     subscribers on channels, one publisher; reports delivery, loss, order and latency
  idle       N connections, each subscribed to its own channel, held open
  handshake  open and close connections as fast as possible

common:
  --url ws://IP:PORT/PATH   relay endpoint (repeatable: connections spread round-robin)
  --threads N               event-loop threads, each with its own epoll (default 1)
  --sources N               loopback source addresses 127.0.0.1..127.0.0.N (default 8)
  --timeout S               global deadline: report and exit non-zero after S s (default 60)
  --connect-concurrency N   connections opening at once (default 512)
  --relay-pid PID           also report that process's CPU (fanout) or RSS (idle)
  --header 'Name: value'    add a header to every upgrade request (repeatable), e.g. a JWT

fanout:
  --subscribers N  --channel NAME | --channels K  --rate MSGS_PER_S
  --duration S | --count M  --size BYTES  --publish-via client
  --drain-timeout S (default 5)  --allow-loss

idle:
  --connections N  --hold S (default: until SIGTERM or SIGINT)

handshake:
  --duration S  --concurrency C
)";

[[noreturn]] void usageError(const std::string& message) {
    std::fprintf(stderr, "wsrelay_loadgen: %s\n\n%s", message.c_str(), kUsage);
    std::exit(2);
}

template <typename T> T number(std::string_view flag, std::string_view text) {
    T value{};
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size()) {
        usageError("bad value for " + std::string(flag) + ": " + std::string(text));
    }
    return value;
}

} // namespace

Options parseOptions(int argc, char** argv) {
    Options o;
    if (argc < 2) usageError("missing mode");
    std::string_view mode = argv[1];
    if (mode == "fanout") {
        o.mode = Mode::Fanout;
    } else if (mode == "idle") {
        o.mode = Mode::Idle;
    } else if (mode == "handshake") {
        o.mode = Mode::Handshake;
    } else if (mode == "-h" || mode == "--help") {
        std::fputs(kUsage, stdout);
        std::exit(0);
    } else {
        usageError("unknown mode " + std::string(mode));
    }
    bool channel_set = false, channels_set = false;
    for (int i = 2; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string_view value;
        bool has_value = false;
        if (size_t eq = arg.find('='); eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_value = true;
        }
        auto next = [&]() -> std::string_view {
            if (has_value) return value;
            if (i + 1 >= argc) usageError("missing value for " + std::string(arg));
            return argv[++i];
        };
        if (arg == "--allow-loss") {
            o.allow_loss = true;
        } else if (arg == "--url") {
            o.urls.emplace_back(next());
        } else if (arg == "--threads") {
            o.threads = number<int>(arg, next());
        } else if (arg == "--sources") {
            o.sources = number<int>(arg, next());
        } else if (arg == "--timeout") {
            o.timeout_s = number<double>(arg, next());
        } else if (arg == "--connect-concurrency") {
            o.connect_concurrency = number<int>(arg, next());
        } else if (arg == "--header") {
            const std::string_view header = next();
            if (header.find(':') == std::string_view::npos ||
                header.find_first_of("\r\n") != std::string_view::npos) {
                usageError("--header needs 'Name: value'");
            }
            o.headers.append(header).append("\r\n");
        } else if (arg == "--relay-pid") {
            o.relay_pid = number<int>(arg, next());
        } else if (arg == "--subscribers") {
            o.subscribers = number<uint32_t>(arg, next());
        } else if (arg == "--channel") {
            o.channel = std::string(next());
            channel_set = true;
        } else if (arg == "--channels") {
            o.channels = number<uint32_t>(arg, next());
            channels_set = true;
        } else if (arg == "--rate") {
            o.rate = number<double>(arg, next());
        } else if (arg == "--duration") {
            o.duration_s = number<double>(arg, next());
        } else if (arg == "--count") {
            o.count = number<uint64_t>(arg, next());
        } else if (arg == "--size") {
            o.size = number<uint32_t>(arg, next());
        } else if (arg == "--publish-via") {
            o.publish_via = std::string(next());
        } else if (arg == "--drain-timeout") {
            o.drain_timeout_s = number<double>(arg, next());
        } else if (arg == "--connections") {
            o.connections = number<uint32_t>(arg, next());
        } else if (arg == "--hold") {
            o.hold_s = number<double>(arg, next());
        } else if (arg == "--concurrency") {
            o.concurrency = number<uint32_t>(arg, next());
        } else {
            usageError("unknown option " + std::string(arg));
        }
    }
    if (o.urls.empty()) usageError("--url is required");
    if (o.threads < 1 || o.threads > 64) usageError("--threads must be 1..64");
    if (o.sources < 1 || o.sources > 250) usageError("--sources must be 1..250");
    if (o.timeout_s <= 0) usageError("--timeout must be positive");
    if (o.connect_concurrency < 1) usageError("--connect-concurrency must be positive");
    if (channel_set && channels_set) usageError("--channel and --channels are exclusive");
    if (o.mode == Mode::Fanout) {
        if (o.subscribers < 1) usageError("--subscribers must be positive");
        if (o.channels < 1) usageError("--channels must be positive");
        if (o.rate <= 0) usageError("--rate must be positive");
        if (o.count == 0 && o.duration_s <= 0) usageError("fanout needs --count or --duration");
        if (o.count == 0) o.count = uint64_t(o.rate * o.duration_s + 0.5);
        if (o.publish_via != "client") {
            usageError("--publish-via: only 'client' is implemented (redis and http come later)");
        }
    }
    if (o.mode == Mode::Idle && o.connections < 1) usageError("--connections must be positive");
    if (o.mode == Mode::Handshake) {
        if (o.duration_s <= 0) usageError("handshake needs --duration");
        if (o.concurrency < 1) usageError("--concurrency must be positive");
    }
    return o;
}

} // namespace wsrelay::loadgen
