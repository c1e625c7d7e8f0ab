#include "options.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "ws_connection.h"

namespace wsrelay::loadgen {
namespace {

constexpr const char* kUsage = R"(usage: wsrelay_loadgen MODE [options]

modes:
  fanout     subscribers on channels, one publisher; reports delivery, loss, order and latency
  chat       N clients on K channels, each publishing on its own channel; same report
  idle       N connections, each subscribed to its own channel, held open
  handshake  open and close connections as fast as possible
  subscribe-ack  subscribe, time until the ack, unsubscribe, again; reports ack latency
  recovery   subscribers on channels with history; one relay is drained mid-run and its
             subscribers reconnect elsewhere and recover; reports loss, duplicates, time to recover

common:
  --url ws://IP:PORT/PATH   server endpoint (repeatable: connections spread round-robin)
  --protocol wsrelay|raw    wsrelay: subscribe op + ack, {"op":"message"} frames (default);
                            raw: ?channel=NAME in the URL, no ack, frames = published bytes
  --threads N               event-loop threads, each with its own epoll (default 1)
  --sources N               loopback source addresses 127.0.0.1..127.0.0.N (default 8)
  --timeout S               global deadline: report and exit non-zero after S s (default 60)
  --connect-concurrency N   connections opening at once (default 512)
  --server-pid PID          report the CPU (fanout, chat, handshake, subscribe-ack) or RSS (idle)
                            of the server, summed over every PID given (repeatable);
                            --relay-pid is an alias
  --header 'Name: value'    add a header to every upgrade request (repeatable), e.g. a JWT
  --deflate                 offer permessage-deflate (as browsers do) and inflate compressed
                            messages with zlib; what the load generator sends stays plain

fanout:
  --subscribers N  --channel NAME | --channels K  --rate MSGS_PER_S
  --duration S | --count M  --size BYTES  --drain-timeout S (default 5)  --allow-loss
  --padding x|words         pad the payload with x's (default) or with words and numbers that
                            compress about as well as JSON does (for --deflate runs)
  --publish-via client|redis|http (default client)
  --redis HOST:PORT                   with --publish-via redis
  --publish-url http://IP:PORT/PATH   with --publish-via http
  --api-key KEY                       X-API-Key of the relay's HTTP API (protocol wsrelay)
  --http-connections N                keep-alive connections for http (default 4)

chat:
  --clients N  --channels K (default 1)  [--channel BASE]  --rate MSGS_PER_S (in total)
  --duration S | --count M  --size BYTES  --drain-timeout S  --allow-loss

fanout and chat:
  --warmup | --no-warmup    publish {"w":1} on every channel every 50 ms until every
                            subscriber got one (default: on for raw, off for wsrelay)
  --warmup-timeout S        give up (outcome failed) after S s (default 10)

idle:
  --connections N  --hold S (default: until SIGTERM or SIGINT)

handshake:
  --duration S  --concurrency C

recovery (protocol wsrelay; publishes via client, to the first --url):
  --subscribers N  --channels K  [--channel BASE (default hist)]  --rate MSGS_PER_S (in total)
  --duration S | --count M  --size BYTES  --drain-timeout S (default 5)  --allow-loss
  --drain-pid PID           the relay to send SIGTERM (any --url but the first; required)
  --drain-after S           seconds into the publishing when it gets SIGTERM (default 5)
  --spare-url URL           a relay that only takes reconnects (repeatable)
  --reconnect-jitter-ms J   a drained subscriber waits a random 0..J ms to reconnect (default 0)
  --redis HOST:PORT         read INFO commandstats there before the drain and after the last
                            recovery (history reads served)

subscribe-ack (protocol wsrelay; each connection has one command in flight at a time):
  --channels live|fresh     live: a keeper connection per URL first subscribes to the live
                            channels, so the relay's worker holds them (give the relay one worker);
                            fresh: a new channel name on every subscribe (default live)
  --live-channels K         channels the keeper holds, at most limits.max_subscriptions (default 8)
  --connections N (default 8)  --rate SUBSCRIBES_PER_S (in total; 0: back to back, default 1000)
  --duration S | --count M (the first reached ends the run)  [--channel BASE]
  --gap-ms G                a connection rests G ms after its last answer before it subscribes
                            again, so the relay's websocket.write_coalesce_ms window (default 2)
                            has closed and does not hold the ack back (default 5)
)";

[[noreturn]] void usageError(const std::string& message) {
    std::fprintf(stderr, "wsrelay_loadgen: %s\n\n%s", message.c_str(), kUsage);
    std::exit(2);
}

template <typename T>
T number(std::string_view flag, std::string_view text) {
    T value{};
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size()) {
        usageError("bad value for " + std::string(flag) + ": " + std::string(text));
    }
    return value;
}

}  // namespace

const char* protocolName(Protocol p) { return p == Protocol::Raw ? "raw" : "wsrelay"; }

const char* channelPolicyName(ChannelPolicy p) {
    return p == ChannelPolicy::Fresh ? "fresh" : "live";
}

const char* publishViaName(PublishVia p) {
    switch (p) {
        case PublishVia::Client: return "client";
        case PublishVia::Redis: return "redis";
        case PublishVia::Http: return "http";
    }
    return "?";
}

Options parseOptions(int argc, char** argv) {
    Options o;
    if (argc < 2) usageError("missing mode");
    std::string_view mode = argv[1];
    if (mode == "fanout") {
        o.mode = Mode::Fanout;
    } else if (mode == "chat") {
        o.mode = Mode::Chat;
    } else if (mode == "idle") {
        o.mode = Mode::Idle;
    } else if (mode == "handshake") {
        o.mode = Mode::Handshake;
    } else if (mode == "subscribe-ack") {
        o.mode = Mode::SubscribeAck;
    } else if (mode == "recovery") {
        o.mode = Mode::Recovery;
    } else if (mode == "-h" || mode == "--help") {
        std::fputs(kUsage, stdout);
        std::exit(0);
    } else {
        usageError("unknown mode " + std::string(mode));
    }
    bool channel_set = false, channels_set = false;
    bool subscribers_set = false, clients_set = false, connections_set = false;
    bool rate_set = false;
    int warmup = -1;  // -1: the protocol's default
    std::string protocol = "wsrelay", publish_via = "client";
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
        } else if (arg == "--deflate") {
            o.deflate = true;
            o.headers.append(kDeflateOffer);
        } else if (arg == "--padding") {
            const std::string_view kind = next();
            if (kind != "x" && kind != "words") usageError("--padding is x or words");
            o.words = kind == "words";
        } else if (arg == "--warmup") {
            warmup = 1;
        } else if (arg == "--no-warmup") {
            warmup = 0;
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
        } else if (arg == "--server-pid" || arg == "--relay-pid") {
            const int pid = number<int>(arg, next());
            if (pid <= 0) usageError(std::string(arg) + " must be positive");
            o.server_pids.push_back(pid);
        } else if (arg == "--protocol") {
            protocol = std::string(next());
        } else if (arg == "--subscribers") {
            o.subscribers = number<uint32_t>(arg, next());
            subscribers_set = true;
        } else if (arg == "--clients") {
            o.subscribers = number<uint32_t>(arg, next());
            clients_set = true;
        } else if (arg == "--channel") {
            o.channel = std::string(next());
            channel_set = true;
        } else if (arg == "--channels" && o.mode == Mode::SubscribeAck) {
            const std::string_view policy = next();
            if (policy == "live") {
                o.channel_policy = ChannelPolicy::Live;
            } else if (policy == "fresh") {
                o.channel_policy = ChannelPolicy::Fresh;
            } else {
                usageError("--channels must be live or fresh for subscribe-ack");
            }
        } else if (arg == "--channels") {
            o.channels = number<uint32_t>(arg, next());
            channels_set = true;
        } else if (arg == "--live-channels") {
            o.live_channels = number<uint32_t>(arg, next());
        } else if (arg == "--gap-ms") {
            o.gap_ms = number<double>(arg, next());
        } else if (arg == "--rate") {
            o.rate = number<double>(arg, next());
            rate_set = true;
        } else if (arg == "--duration") {
            o.duration_s = number<double>(arg, next());
        } else if (arg == "--count") {
            o.count = number<uint64_t>(arg, next());
        } else if (arg == "--size") {
            o.size = number<uint32_t>(arg, next());
        } else if (arg == "--publish-via") {
            publish_via = std::string(next());
        } else if (arg == "--redis") {
            o.redis = std::string(next());
        } else if (arg == "--publish-url") {
            o.publish_url = std::string(next());
        } else if (arg == "--api-key") {
            o.api_key = std::string(next());
            if (o.api_key.find_first_of("\r\n") != std::string::npos) {
                usageError("--api-key must not contain line breaks");
            }
        } else if (arg == "--http-connections") {
            o.http_connections = number<int>(arg, next());
        } else if (arg == "--warmup-timeout") {
            o.warmup_timeout_s = number<double>(arg, next());
        } else if (arg == "--drain-timeout") {
            o.drain_timeout_s = number<double>(arg, next());
        } else if (arg == "--connections") {
            o.connections = number<uint32_t>(arg, next());
            connections_set = true;
        } else if (arg == "--hold") {
            o.hold_s = number<double>(arg, next());
        } else if (arg == "--drain-pid") {
            o.drain_pid = number<int>(arg, next());
            if (o.drain_pid <= 0) usageError("--drain-pid must be positive");
        } else if (arg == "--drain-after") {
            o.drain_after_s = number<double>(arg, next());
        } else if (arg == "--spare-url") {
            o.spare_urls.emplace_back(next());
        } else if (arg == "--reconnect-jitter-ms") {
            o.reconnect_jitter_ms = number<double>(arg, next());
        } else if (arg == "--concurrency") {
            o.concurrency = number<uint32_t>(arg, next());
        } else {
            usageError("unknown option " + std::string(arg));
        }
    }
    if (o.urls.empty()) usageError("--url is required");
    if (protocol == "wsrelay") {
        o.protocol = Protocol::Wsrelay;
    } else if (protocol == "raw") {
        o.protocol = Protocol::Raw;
    } else {
        usageError("--protocol must be wsrelay or raw");
    }
    if (publish_via == "client") {
        o.publish_via = PublishVia::Client;
    } else if (publish_via == "redis") {
        o.publish_via = PublishVia::Redis;
    } else if (publish_via == "http") {
        o.publish_via = PublishVia::Http;
    } else {
        usageError("--publish-via must be client, redis or http");
    }
    o.warmup = warmup < 0 ? o.protocol == Protocol::Raw : warmup == 1;
    if (o.threads < 1 || o.threads > 64) usageError("--threads must be 1..64");
    if (o.sources < 1 || o.sources > 250) usageError("--sources must be 1..250");
    if (o.timeout_s <= 0) usageError("--timeout must be positive");
    if (o.connect_concurrency < 1) usageError("--connect-concurrency must be positive");
    if (channel_set && channels_set && o.mode == Mode::Fanout) {
        usageError("--channel and --channels are exclusive");
    }
    if (subscribers_set && o.mode != Mode::Fanout && o.mode != Mode::Recovery) {
        usageError("--subscribers is for fanout and recovery");
    }
    if (clients_set && o.mode != Mode::Chat) usageError("--clients is for chat");
    if (o.mode == Mode::Fanout || o.mode == Mode::Chat || o.mode == Mode::Recovery) {
        if (o.subscribers < 1) usageError("--subscribers/--clients must be positive");
        if (o.channels < 1) usageError("--channels must be positive");
        if (o.rate <= 0) usageError("--rate must be positive");
        if (o.count == 0 && o.duration_s <= 0) usageError("--count or --duration is required");
        if (o.count == 0) o.count = uint64_t(o.rate * o.duration_s + 0.5);
        if (o.warmup_timeout_s <= 0) usageError("--warmup-timeout must be positive");
    }
    if (o.mode == Mode::Chat) {
        if (o.channels > o.subscribers) usageError("chat needs --channels <= --clients");
        if (o.publish_via != PublishVia::Client) usageError("chat publishes via client only");
    }
    if (o.mode == Mode::Fanout) {
        if (o.publish_via == PublishVia::Redis && o.redis.empty()) {
            usageError("--publish-via redis needs --redis HOST:PORT");
        }
        if (o.publish_via == PublishVia::Http) {
            if (o.publish_url.empty()) usageError("--publish-via http needs --publish-url URL");
            if (o.protocol == Protocol::Wsrelay && o.api_key.empty()) {
                usageError("--publish-via http with --protocol wsrelay needs --api-key");
            }
            if (o.http_connections < 1 || o.http_connections > 64) {
                usageError("--http-connections must be 1..64");
            }
        }
    }
    if (o.mode == Mode::Recovery) {
        if (o.protocol != Protocol::Wsrelay) usageError("recovery needs --protocol wsrelay");
        if (o.publish_via != PublishVia::Client) usageError("recovery publishes via client only");
        if (!channel_set) o.channel = "hist";
        if (o.drain_pid == 0) usageError("recovery needs --drain-pid");
        if (o.urls.size() + o.spare_urls.size() < 2) {
            usageError("recovery needs a relay to reconnect to: a second --url or a --spare-url");
        }
        if (o.drain_after_s < 0 || o.drain_after_s * o.rate >= double(o.count)) {
            usageError("--drain-after must fall within the publishing (--count / --rate)");
        }
        if (o.reconnect_jitter_ms < 0) usageError("--reconnect-jitter-ms must not be negative");
    } else if (o.drain_pid != 0 || !o.spare_urls.empty()) {
        usageError("--drain-pid and --spare-url are for recovery");
    }
    if (o.mode == Mode::Idle && o.connections < 1) usageError("--connections must be positive");
    if (o.mode == Mode::Handshake) {
        if (o.duration_s <= 0) usageError("handshake needs --duration");
        if (o.concurrency < 1) usageError("--concurrency must be positive");
    }
    if (o.mode == Mode::SubscribeAck) {
        if (o.protocol != Protocol::Wsrelay) usageError("subscribe-ack needs --protocol wsrelay");
        if (!connections_set) o.connections = 8;
        if (o.connections < 1) usageError("--connections must be positive");
        if (!rate_set) o.rate = 1000;
        if (o.rate < 0) usageError("--rate must not be negative");
        if (o.count == 0 && o.duration_s <= 0) usageError("--count or --duration is required");
        if (o.gap_ms < 0) usageError("--gap-ms must not be negative");
        if (o.live_channels < 1 || o.live_channels > 100000) {
            usageError("--live-channels must be 1..100000");
        }
    }
    return o;
}

}  // namespace wsrelay::loadgen
