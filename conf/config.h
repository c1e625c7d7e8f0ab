#pragma once

// Each configuration default is written once, here, as a member initialiser. The key table in
// conf/config_schema.cc declares every field (path, type, bounds, meaning) without a default and
// reads it from a default-constructed Config, so `wsrelay --help`, docs/config.md and the sample
// are checked against these values. The default lives here rather than in the table because it
// must have the field's own type (int, int64_t, an enum, a list), and a sub-struct built on its
// own (a Config::Auth in a test) must come with its defaults. tests/unit/config_loader_test.cc
// proves a default Config equals the configuration loaded from an empty document, and that each
// default is inside its key's bounds.

#include <cstdint>
#include <string>
#include <vector>

namespace wsrelay {

enum class SlowConsumerPolicy { Close, DropOldest };
enum class PerUserPolicy { Refuse, EvictOldest };
enum class BrokerType { Memory, Redis };
enum class LogLevel { Debug, Info, Warn, Error };
enum class TlsVersion { V1_2, V1_3 };
// Where a trusted proxy writes the client's address (limits.client_address_header).
enum class ClientAddressHeader { XForwardedFor, Forwarded };

// Plain values with their defaults; no yaml types leak past conf/.
struct Config {
    struct Listen {
        std::string host = "0.0.0.0";
        int port = 8080;
        // 0 = off. Else /metrics and /api/* answer only here, never on port (docs/config.md).
        int internal_port = 0;
        bool operator==(const Listen&) const = default;
    } listen;

    // Set cert_file and key_file: listen.port speaks TLS (wss:// and https://), docs/config.md.
    struct Tls {
        std::string cert_file;  // PEM: the certificate, then any intermediates
        std::string key_file;   // PEM: its private key
        TlsVersion min_version = TlsVersion::V1_2;
        std::string ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";  // TLS 1.2; 1.3 keeps OpenSSL's
        int reload_interval_ms = 10000;                       // 0 = never reloaded
        bool operator==(const Tls&) const = default;
    } tls;

    int workers = 0;  // 0 = one per core

    struct WebSocket {
        std::string path = "/ws";
        int64_t max_message_bytes = 65536;
        int ping_interval_ms = 25000;
        int pong_timeout_ms = 10000;
        std::vector<std::string> allowed_origins;  // empty = any
        int rx_buffer_bytes = 1024;
        int write_coalesce_ms = 2;  // 0 = every turn's frames leave at the end of that turn
        // permessage-deflate when the client offers it; smaller payloads are sent plain; zlib
        // level 1 (fastest) .. 9 (smallest).
        bool compression = true;
        int compression_min_bytes = 512;
        int compression_level = 1;
        bool operator==(const WebSocket&) const = default;
    } websocket;

    struct Limits {
        int max_connections = 0;                // 0 = derived from the open-file limit
        int max_pending_handshakes = 0;         // 0 = a quarter of the connection limit
        int max_pending_handshakes_per_ip = 0;  // 0 = no per-address bound
        int handshake_timeout_ms = 10000;
        int64_t send_queue_bytes = 1 << 20;
        int send_queue_messages = 1024;
        SlowConsumerPolicy slow_consumer = SlowConsumerPolicy::Close;
        int max_subscriptions = 128;
        int max_channel_bytes = 255;
        int max_bad_commands = 10;
        int socket_send_buffer_bytes = 0;  // 0 = the kernel's autotuning (up to tcp_wmem max)
        int64_t memory_budget_bytes = 0;   // 0 = limits.memory_budget_percent of the cgroup limit
        int memory_budget_percent = 50;
        // Per client address (docs/security.md "Per-address limits"); 0 turns each off.
        int handshakes_per_ip_per_second = 20;
        int handshakes_per_ip_burst = 100;
        int connections_per_ip = 1000;
        int api_key_failures_per_ip_per_minute = 10;
        bool per_ip_dry_run = false;
        std::vector<std::string> per_ip_exempt = {"127.0.0.0/8", "::1/128"};
        std::vector<std::string> trusted_proxies;  // empty = the TCP peer is the client
        ClientAddressHeader client_address_header = ClientAddressHeader::XForwardedFor;
        // Open connections per user across the fleet (docs/scaling.md "Per-user limit"); 0 = off.
        int max_connections_per_user = 0;
        PerUserPolicy per_user_policy = PerUserPolicy::Refuse;
        // Commands per second per connection and kind (docs/protocol.md "Rate limits"); 0 = off.
        struct Rate {
            int publish_per_second = 50;
            int subscribe_per_second = 100;  // × burst_seconds covers max_subscriptions at once
            int send_per_second = 50;
            int history_per_second = 10;
            int other_per_second = 20;  // refresh, and any command without a kind of its own
            int burst_seconds = 2;      // a bucket holds rate × burst_seconds commands
            int max_refusals = 100;     // refused in a row before the close with 4429; 0 = never
            bool dry_run = false;       // count what would be refused, refuse nothing
            bool operator==(const Rate&) const = default;
        } rate;
        bool operator==(const Limits&) const = default;
    } limits;

    struct Drain {
        int window_ms = 10000;
        bool operator==(const Drain&) const = default;
    } drain;

    struct Broker {
        BrokerType type = BrokerType::Memory;
        struct Redis {
            std::string url = "redis://127.0.0.1:6379/0";
            std::string prefix;  // prepended to client channel names to get Redis channel names
            int reconnect_min_ms = 100;
            int reconnect_max_ms = 5000;
            int probe_interval_ms = 1000;  // 0 = off
            int probe_timeout_ms = 3000;
            bool timestamps = true;  // stamp publishes with their entry time (delivery latency)
            std::vector<std::string> cluster;  // seed host:port; empty = not a Redis Cluster
            int cluster_refresh_ms = 30000;    // CLUSTER SLOTS reload period; 0 = off
            struct Sentinel {
                std::string master;              // empty = no Sentinel
                std::vector<std::string> addrs;  // host:port of the sentinels
                std::string user;                // AUTH user for the sentinels; empty = default
                std::string password;            // AUTH to the sentinels; empty = none
                bool tls = false;  // the sentinels speak TLS (with broker.redis.tls.*)
                bool operator==(const Sentinel&) const = default;
            } sentinel;
            // TLS to Redis: a rediss:// url (every data node), broker.redis.sentinel.tls.
            struct Tls {
                std::string ca_file;    // empty = the system's CAs
                std::string cert_file;  // client certificate; with key_file
                std::string key_file;
                std::string server_name;  // SNI and the name verified; empty = the host
                bool operator==(const Tls&) const = default;
            } tls;
            bool operator==(const Redis&) const = default;
        } redis;
        bool operator==(const Broker&) const = default;
    } broker;

    // Options per channel name pattern (docs/config.md "channels"): a top-level list, the first
    // entry whose pattern matches a channel decides; a channel no entry matches has the defaults.
    struct Channel {
        std::string pattern;              // an exact channel name, or a prefix followed by one *
        int history_size = 0;             // messages kept; 0 = no history
        int64_t history_ttl_ms = 600000;  // the history expires this long after the last publish
        bool presence = false;            // who is subscribed is kept fleet-wide (presence.*)
        bool join_leave = false;          // with presence: join/leave frames to the subscribers
        bool operator==(const Channel&) const = default;
    };
    std::vector<Channel> channels;

    struct History {
        int max_recover = 300;         // most messages one recovery delivers; more: not recovered
        int max_limit = 1000;          // the largest "limit" of a history read
        int max_reads_in_flight = 32;  // per worker; more wait their turn
        bool operator==(const History&) const = default;
    } history;

    // The fleet's control channels (docs/scaling.md "The fleet").
    struct Fleet {
        int command_timeout_ms = 1000;    // how long a fleet command waits for every worker
        int max_pending_commands = 1024;  // per worker: fleet commands waiting for answers
        bool operator==(const Fleet&) const = default;
    } fleet;

    // Channels with `presence: true` (docs/scaling.md "Presence").
    struct Presence {
        int64_t ttl_ms = 25000;            // a member not refreshed for this long is gone
        int64_t refresh_ms = 10000;        // each worker refreshes its members this often
        int max_join_leave_members = 100;  // above it no join/leave frames; 0 = never
        int max_members = 1000;            // most members one presence answer lists
        bool operator==(const Presence&) const = default;
    } presence;

    struct Api {
        std::string key;  // empty = the HTTP publish API is disabled
        bool operator==(const Api&) const = default;
    } api;

    // The instance's lease and connection registry (fleet.lease_*, docs/scaling.md "Leases").
    struct Lease {
        int ttl_ms = 15000;   // an instance not renewing for this long is reaped
        int renew_ms = 5000;  // renewal and reaping period
        bool operator==(const Lease&) const = default;
    } lease;

    struct Auth {
        bool enabled = false;
        struct Jwt {
            std::string secret;
            std::string public_key_file;
            std::string jwks_url;  // http://, https:// or file://
            // CAs for an https:// jwks_url; empty = the system's
            std::string jwks_ca_file;
            int jwks_refresh_ms = 300000;
            int jwks_min_refresh_ms = 5000;
            std::vector<std::string> algorithms;  // empty = every algorithm the keys support
            std::string issuer;                   // empty = not checked
            std::vector<std::string> audience;    // empty = not checked
            int leeway_ms = 0;
            bool require_exp = true;
            bool allow_query_token = false;  // URLs end up in access logs (docs/auth.md)
            std::string user_claim = "sub";
            std::string subscribe_claim = "channels";
            std::string publish_claim = "publish";
            std::string info_claim = "info";  // presence's client-visible info; empty = none
            bool operator==(const Jwt&) const = default;
        } jwt;
        struct Permissions {
            std::vector<std::string> subscribe;  // patterns; {sub} = the user id
            std::vector<std::string> publish;
            std::vector<std::string> auto_subscribe;  // exact channels, subscribed at connect
            bool operator==(const Permissions&) const = default;
        } permissions;
        int expiry_warning_ms = 60000;
        bool operator==(const Auth&) const = default;
    } auth;

    struct Hook {
        std::string url;  // empty = no hook
        // CAs for an https:// url; empty = the system's
        std::string ca_file;
        std::vector<std::string> events = {"connect", "subscribe", "message", "disconnect"};
        // How long a channel stays empty fleet-wide before its vacated event (docs/hook.md)
        int vacated_delay_ms = 5000;
        int timeout_ms = 5000;
        int max_in_flight = 1024;  // per instance, split between workers
        int64_t max_queued_bytes_per_connection = 1 << 20;
        int64_t max_queued_bytes = int64_t{64} << 20;  // per instance, split between workers
        int max_connections = 16;                      // per worker
        int retries = 1;
        std::vector<std::string> forward_headers = {"cookie", "user-agent", "x-forwarded-for",
                                                    "origin"};
        std::string secret;
        std::vector<std::string> routes;  // "pattern=broker|hook|both"
        bool operator==(const Hook&) const = default;
    } hook;

    struct Log {
        LogLevel level = LogLevel::Info;
        bool operator==(const Log&) const = default;
    } log;

    // Member-wise, every field (each sub-struct compares the same way).
    bool operator==(const Config&) const = default;
};

}  // namespace wsrelay
