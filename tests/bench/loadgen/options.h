#pragma once

// Command line of wsrelay_loadgen: `wsrelay_loadgen MODE [--flag value]...` (see README.md).

#include <cstdint>
#include <string>
#include <vector>

namespace wsrelay::loadgen {

enum class Mode { Fanout, Chat, Idle, Handshake, SubscribeAck, Recovery };

// wsrelay: the relay's JSON protocol (subscribe op + ack, {"op":"message"} envelopes).
// Raw: the peers' contract: the channel is in the URL (?channel=NAME), subscribing is
// asynchronous and unacknowledged, frames carry the published bytes unchanged.
enum class Protocol { Wsrelay, Raw };

enum class PublishVia { Client, Redis, Http };

// subscribe-ack: Live: channels a keeper connection holds already, so the relay's worker has them;
// Fresh: a channel name nobody used before on every subscribe.
enum class ChannelPolicy { Live, Fresh };

struct Options {
    Mode mode = Mode::Fanout;
    Protocol protocol = Protocol::Wsrelay;
    std::vector<std::string> urls;
    int threads = 1;
    int sources = 8;                // loopback source addresses 127.0.0.1 .. 127.0.0.N
    double timeout_s = 60;          // global deadline, every mode
    int connect_concurrency = 512;  // connections being opened at once (fanout, chat, idle)
    std::vector<int> server_pids;   // their CPU (fanout, chat, handshake) or RSS (idle), summed
    std::string headers;  // --header lines, each ending in CRLF, added to every upgrade request

    // fanout and chat (subscribe-ack: --rate, --duration, --count, --channel)
    uint32_t subscribers = 100;  // fanout: --subscribers; chat: --clients
    std::string channel = "bench";
    uint32_t channels = 1;
    double rate = 1000;
    double duration_s = 0;
    uint64_t count = 0;  // 0: rate × duration
    uint32_t size = 64;
    bool words = false;    // --padding words: pad with text that compresses like JSON, not x's
    bool deflate = false;  // --deflate: offer permessage-deflate, inflate what comes compressed
    double drain_timeout_s = 5;  // after the last publish, how long to wait for stragglers
    bool allow_loss = false;
    bool warmup = false;  // default: on for raw, off for wsrelay
    double warmup_timeout_s = 10;

    // recovery (also --subscribers, --channels, --channel, --rate, --duration, --count, --redis)
    int drain_pid = 0;         // the relay sent SIGTERM mid-run (not the one of the first --url)
    double drain_after_s = 5;  // into the measured phase
    std::vector<std::string> spare_urls;  // relays that only take reconnects
    double reconnect_jitter_ms = 0;       // a drained subscriber waits up to this long, at random

    // fanout's publisher
    PublishVia publish_via = PublishVia::Client;
    std::string redis;        // HOST:PORT (recovery: read INFO commandstats there)
    std::string publish_url;  // http://HOST:PORT/PATH
    std::string api_key;
    int http_connections = 4;

    // idle (subscribe-ack: --connections, default 8)
    uint32_t connections = 1000;
    double hold_s = -1;  // < 0: until SIGTERM/SIGINT (or the timeout)

    // handshake
    uint32_t concurrency = 64;

    // subscribe-ack
    ChannelPolicy channel_policy = ChannelPolicy::Live;
    uint32_t live_channels = 8;  // held by the keeper; at most the relay's limits.max_subscriptions
    double gap_ms = 5;           // a connection rests this long after its last answer
};

const char* protocolName(Protocol p);
const char* publishViaName(PublishVia p);
const char* channelPolicyName(ChannelPolicy p);

// Parses argv; on error prints a message and the usage to stderr and exits with status 2.
Options parseOptions(int argc, char** argv);

}  // namespace wsrelay::loadgen
