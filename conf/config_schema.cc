// Each configuration key is declared here once: path, type, bounds, meaning, and how it reaches
// its field of Config. Its default is written once too, but not here: it is the member
// initialiser in conf/config.h, and a key's `default_value` is read from a default-constructed
// Config when this table is built. The struct wins over the table because the default has to
// have the field's own type (int, int64_t, an enum, a list), sub-structs such as Config::Auth
// are built on their own and must come with their defaults, and Config stays a plain aggregate
// that needs no table to construct. tests/unit/config_loader_test.cc proves a default Config
// equals the configuration loaded from an empty document, key by key.
#include "conf/config_schema.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <type_traits>
#include <utility>

#include "adapters/client_address.h"
#include "adapters/hook_event.h"
#include "adapters/jwks_file_url.h"
#include "adapters/redis_url.h"
#include "adapters/tls_files.h"
#include "relay/tls/credentials.h"

namespace wsrelay {
namespace {

template <typename E, size_t N>
using EnumNames = std::array<std::pair<std::string_view, E>, N>;

constexpr EnumNames<SlowConsumerPolicy, 2> kSlowConsumerNames = {{
    {"close", SlowConsumerPolicy::Close},
    {"drop_oldest", SlowConsumerPolicy::DropOldest},
}};
constexpr EnumNames<PerUserPolicy, 2> kPerUserPolicyNames = {{
    {"refuse", PerUserPolicy::Refuse},
    {"evict_oldest", PerUserPolicy::EvictOldest},
}};
constexpr EnumNames<BrokerType, 2> kBrokerNames = {{
    {"memory", BrokerType::Memory},
    {"redis", BrokerType::Redis},
}};
constexpr EnumNames<TlsVersion, 2> kTlsVersionNames = {{
    {"1.2", TlsVersion::V1_2},
    {"1.3", TlsVersion::V1_3},
}};
constexpr EnumNames<ClientAddressHeader, 2> kClientAddressHeaderNames = {{
    {"x-forwarded-for", ClientAddressHeader::XForwardedFor},
    {"forwarded", ClientAddressHeader::Forwarded},
}};
constexpr EnumNames<LogLevel, 4> kLogLevelNames = {{
    {"debug", LogLevel::Debug},
    {"info", LogLevel::Info},
    {"warn", LogLevel::Warn},
    {"error", LogLevel::Error},
}};

// A key or a field as declared, with how it reaches its place in a `Target`: Config for a key of
// the table, the entry struct (Config::Channel) for a field of an EntryList key. One builder per
// type serves both, so a field is declared exactly as a key is.
template <typename Target>
struct Declared {
    ConfigKey key;
    std::function<void(Target&, const ConfigValue&)> store;
    std::function<ConfigValue(const Target&)> read;
};

ConfigKey tableKey(Declared<Config> declared) {
    declared.key.store = std::move(declared.store);
    declared.key.read = std::move(declared.read);
    return std::move(declared.key);
}

// `access` is a generic lambda returning a reference to the field, so one expression serves both
// store (Target&) and read (const Target&); the field's own type decides Int or Int64.
template <typename Target, typename Access>
Declared<Target> declareNumber(std::string path, int64_t min, int64_t max, std::string meaning,
                               Access access, bool zero_allowed = false) {
    using Field = std::remove_cvref_t<decltype(access(std::declval<Target&>()))>;
    static_assert(std::is_same_v<Field, int> || std::is_same_v<Field, int64_t>);
    Declared<Target> d;
    d.key.path = std::move(path);
    d.key.type = std::is_same_v<Field, int> ? ConfigType::Int : ConfigType::Int64;
    d.key.min = min;
    d.key.max = max;
    d.key.zero_allowed = zero_allowed;
    d.key.meaning = std::move(meaning);
    d.store = [access](Target& t, const ConfigValue& v) {
        access(t) = static_cast<Field>(std::get<int64_t>(v));
    };
    d.read = [access](const Target& t) { return ConfigValue{static_cast<int64_t>(access(t))}; };
    return d;
}

template <typename Target, typename Access>
Declared<Target> declareString(std::string path, std::string (*check)(std::string_view),
                               std::string constraint, std::string meaning, Access access) {
    Declared<Target> d;
    d.key.path = std::move(path);
    d.key.type = ConfigType::String;
    d.key.check = check;
    d.key.constraint = std::move(constraint);
    d.key.meaning = std::move(meaning);
    d.store = [access](Target& t, const ConfigValue& v) { access(t) = std::get<std::string>(v); };
    d.read = [access](const Target& t) { return ConfigValue{access(t)}; };
    return d;
}

template <typename Target, typename Access>
Declared<Target> declareBool(std::string path, std::string meaning, Access access) {
    Declared<Target> d;
    d.key.path = std::move(path);
    d.key.type = ConfigType::Bool;
    d.key.meaning = std::move(meaning);
    d.store = [access](Target& t, const ConfigValue& v) { access(t) = std::get<bool>(v); };
    d.read = [access](const Target& t) { return ConfigValue{access(t)}; };
    return d;
}

template <typename Target, typename Access>
Declared<Target> declareList(std::string path, std::string (*check)(std::string_view),
                             std::string constraint, std::string meaning, Access access) {
    Declared<Target> d;
    d.key.path = std::move(path);
    d.key.type = ConfigType::StringList;
    d.key.check = check;
    d.key.constraint = std::move(constraint);
    d.key.meaning = std::move(meaning);
    d.store = [access](Target& t, const ConfigValue& v) {
        access(t) = std::get<std::vector<std::string>>(v);
    };
    d.read = [access](const Target& t) { return ConfigValue{access(t)}; };
    return d;
}

template <typename Target, typename E, size_t N, typename Access>
Declared<Target> declareEnum(std::string path, const EnumNames<E, N>& names, std::string meaning,
                             Access access) {
    auto nameOf = [names](E value) {
        for (const auto& [name, e] : names) {
            if (e == value) return std::string(name);
        }
        return std::string();
    };
    Declared<Target> d;
    d.key.path = std::move(path);
    d.key.type = ConfigType::Enum;
    for (const auto& entry : names) d.key.allowed.emplace_back(entry.first);
    d.key.meaning = std::move(meaning);
    d.store = [access, names](Target& t, const ConfigValue& v) {
        for (const auto& [name, e] : names) {
            if (name == std::get<std::string>(v)) access(t) = e;
        }
    };
    d.read = [access, nameOf](const Target& t) { return ConfigValue{nameOf(access(t))}; };
    return d;
}

// The keys of the table: the builders above, for Config.
template <typename Access>
ConfigKey numberKey(std::string path, int64_t min, int64_t max, std::string meaning, Access access,
                    bool zero_allowed = false) {
    return tableKey(
        declareNumber<Config>(std::move(path), min, max, std::move(meaning), access, zero_allowed));
}

template <typename Access>
ConfigKey stringKey(std::string path, std::string (*check)(std::string_view),
                    std::string constraint, std::string meaning, Access access) {
    return tableKey(declareString<Config>(std::move(path), check, std::move(constraint),
                                          std::move(meaning), access));
}

template <typename Access>
ConfigKey boolKey(std::string path, std::string meaning, Access access) {
    return tableKey(declareBool<Config>(std::move(path), std::move(meaning), access));
}

template <typename Access>
ConfigKey listKey(std::string path, std::string (*check)(std::string_view), std::string constraint,
                  std::string meaning, Access access) {
    return tableKey(declareList<Config>(std::move(path), check, std::move(constraint),
                                        std::move(meaning), access));
}

template <typename E, size_t N, typename Access>
ConfigKey enumKey(std::string path, const EnumNames<E, N>& names, std::string meaning,
                  Access access) {
    return tableKey(declareEnum<Config>(std::move(path), names, std::move(meaning), access));
}

// A list of entries of type Entry (access(config) is the std::vector<Entry>), each a mapping of
// `fields`. A field's default is read from a default-constructed Entry; an entry as ConfigEntry
// holds every field, so storing one sets each field of a new Entry.
template <typename Entry, typename Access>
ConfigKey entryListKey(std::string path, std::vector<Declared<Entry>> fields, std::string meaning,
                       Access access) {
    const Entry defaults{};
    ConfigKey key;
    key.path = std::move(path);
    key.type = ConfigType::EntryList;
    key.meaning = std::move(meaning);
    for (Declared<Entry>& field : fields) {
        field.key.default_value = field.read(defaults);
        key.fields.push_back(field.key);
    }
    key.store = [access, fields](Config& c, const ConfigValue& v) {
        std::vector<Entry>& list = access(c);
        list.clear();
        for (const ConfigEntry& entry : std::get<std::vector<ConfigEntry>>(v)) {
            Entry& out = list.emplace_back();
            for (const auto& [name, value] : entry.fields) {
                for (const Declared<Entry>& field : fields) {
                    if (field.key.path == name) field.store(out, value);
                }
            }
        }
    };
    key.read = [access, fields](const Config& c) {
        std::vector<ConfigEntry> out;
        for (const Entry& entry : access(c)) {
            ConfigEntry& converted = out.emplace_back();
            for (const Declared<Entry>& field : fields) {
                converted.fields.emplace_back(field.key.path, field.read(entry));
            }
        }
        return ConfigValue{std::move(out)};
    };
    return key;
}

template <typename Target>
Declared<Target> required(Declared<Target> field) {
    field.key.required = true;
    return field;
}

template <typename Target>
Declared<Target> unique(Declared<Target> field) {
    field.key.unique = true;
    return field;
}

// Echoes user input in a message, cut short so a huge value cannot flood the output.
std::string quoted(std::string_view text) {
    constexpr size_t kMax = 64;
    if (text.size() <= kMax) return "'" + std::string(text) + "'";
    return "'" + std::string(text.substr(0, kMax)) + "...'";
}

bool hasSpace(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

std::string checkHost(std::string_view host) {
    if (host.empty()) return "must not be empty";
    if (hasSpace(host)) return "must not contain whitespace";
    return "";
}

std::string checkPath(std::string_view path) {
    if (path.empty() || path.front() != '/') {
        return "'" + std::string(path) + "' must start with '/'";
    }
    if (hasSpace(path) || path.find_first_of("?#") != std::string_view::npos) {
        return "'" + std::string(path) + "' must be a plain path (no whitespace, '?' or '#')";
    }
    return "";
}

// Browsers send Origin as scheme://host[:port], lower case, no path: anything else never matches.
std::string checkOrigin(std::string_view origin) {
    if (origin == "*") return "";
    const std::string bad = "'" + std::string(origin) + "' ";
    const size_t sep = origin.find("://");
    if (sep == std::string_view::npos || sep == 0) {
        return bad + "is not an origin (expected * or scheme://host[:port])";
    }
    const std::string_view scheme = origin.substr(0, sep);
    const std::string_view authority = origin.substr(sep + 3);
    const bool scheme_ok =
        std::islower(static_cast<unsigned char>(scheme.front())) &&
        std::all_of(scheme.begin(), scheme.end(), [](unsigned char c) {
            return std::islower(c) || std::isdigit(c) || c == '+' || c == '-' || c == '.';
        });
    if (!scheme_ok || authority.empty() || hasSpace(authority) ||
        authority.find_first_of("/?#") != std::string_view::npos) {
        return bad + "is not an origin (expected * or scheme://host[:port], no path)";
    }
    if (std::any_of(authority.begin(), authority.end(),
                    [](unsigned char c) { return std::isupper(c); })) {
        return bad + "must be lower case, as browsers send it";
    }
    return "";
}

// The parser the Redis broker connects with (adapters/redis_url.h); it never echoes a password.
std::string checkRedisUrl(std::string_view url) { return parseRedisUrl(url).error; }

std::string checkJwksUrl(std::string_view url) {
    if (url.empty()) return "";
    if (hasSpace(url)) return "must not contain whitespace";
    if (!url.starts_with("http://") && !url.starts_with("https://") &&
        !url.starts_with("file://")) {
        return "must start with http://, https:// or file://";
    }
    std::string path;
    std::string error;
    if (url.starts_with("file://") && !jwt::pathOfFileUrl(url, path, error)) return error;
    return "";
}

std::string checkAlgorithm(std::string_view alg) {
    constexpr std::array<std::string_view, 9> kNames = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                                        "RS512", "ES256", "ES384", "EdDSA"};
    if (std::find(kNames.begin(), kNames.end(), alg) != kNames.end()) return "";
    return "'" + std::string(alg) +
           "' is not one of HS256, HS384, HS512, RS256, RS384, RS512, "
           "ES256, ES384, EdDSA";
}

std::string checkClaimName(std::string_view name) {
    if (name.empty()) return "must not be empty";
    if (hasSpace(name)) return "must not contain whitespace";
    return "";
}

// The characters of a channel name (relay/protocol validChannel; tests/unit/channel_rules_test.cc
// checks the two agree).
bool isChannelChar(unsigned char c) {
    return std::isalnum(c) ||
           std::string_view("_-:./@=+,#!~$").find(static_cast<char>(c)) != std::string_view::npos;
}

// A channel pattern: channel characters, {sub} anywhere, and an optional trailing '*'.
std::string checkChannelPattern(std::string_view pattern) {
    std::string_view rest = pattern;
    if (rest.ends_with('*')) rest.remove_suffix(1);
    if (rest.empty() && pattern.empty()) return "must not be empty";
    for (size_t i = 0; i < rest.size(); ++i) {
        if (rest.substr(i).starts_with("{sub}")) {
            i += 4;
            continue;
        }
        if (isChannelChar(static_cast<unsigned char>(rest[i]))) continue;
        return "'" + std::string(pattern) +
               "' is not a channel pattern (channel characters, "
               "{sub}, and an optional trailing *)";
    }
    return "";
}

// A `channels` entry's pattern: a channel name, or one followed by a single * (a prefix), or a
// lone * for every channel. Its length is checked against limits.max_channel_bytes by a rule.
std::string checkChannelsPattern(std::string_view pattern) {
    if (pattern.empty()) return "must not be empty";
    std::string_view name = pattern;
    if (name.ends_with('*')) name.remove_suffix(1);
    const bool valid = std::all_of(name.begin(), name.end(), [](char c) {
        return isChannelChar(static_cast<unsigned char>(c));
    });
    if (valid) return "";
    return quoted(pattern) +
           " is not a channel name, or one followed by a single * (channel characters: letters, "
           "digits and _-:./@=+,#!~$)";
}

std::string checkAutoSubscribe(std::string_view channel) {
    if (channel.find('*') != std::string_view::npos) {
        return "'" + std::string(channel) + "' must be an exact channel (no *)";
    }
    return checkChannelPattern(channel);
}

std::string checkHookUrl(std::string_view url) {
    if (url.empty()) return "";
    if (hasSpace(url)) return "must not contain whitespace";
    if (!url.starts_with("http://") && !url.starts_with("https://")) {
        return "must start with http:// or https://";
    }
    return "";
}

std::string checkHookEvent(std::string_view event) {
    std::string names;
    for (const char* name : kHookEventNames) {
        if (event == name) return "";
        names += names.empty() ? "" : ", ";
        names += name;
    }
    return "'" + std::string(event) + "' is not one of " + names;
}

// Header names as lws knows them: lower case, no spaces or colons.
std::string checkHeaderName(std::string_view name) {
    if (name.empty()) return "must not be empty";
    for (char c : name) {
        if (!(std::islower(static_cast<unsigned char>(c)) ||
              std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
            return "'" + std::string(name) + "' must be a lower-case header name";
        }
    }
    return "";
}

std::string checkRoute(std::string_view route) {
    const size_t eq = route.rfind('=');
    if (eq == std::string_view::npos) {
        return "'" + std::string(route) + "' is not pattern=target (target: broker, hook, both)";
    }
    const std::string_view target = route.substr(eq + 1);
    if (target != "broker" && target != "hook" && target != "both") {
        return "'" + std::string(route) + "': the target must be broker, hook or both";
    }
    if (route.substr(0, eq).find("{sub}") != std::string_view::npos) {
        return "'" + std::string(route) + "': {sub} is not supported in routes";
    }
    return checkChannelPattern(route.substr(0, eq));
}

std::string checkCiphers(std::string_view ciphers) {
    if (ciphers.empty()) return "must not be empty";
    return tls::checkCipherList(ciphers);
}

// The parser the Cluster and Sentinel clients connect with (adapters/redis_url.h).
std::string checkHostPort(std::string_view text) {
    ClusterNode node;
    std::string error;
    return parseHostPort(text, node, error) ? "" : error;
}

// PEM files, read as OpenSSL and libcurl will read them at startup (adapters/tls_files.h).
std::string checkCertificates(std::string_view path) { return checkPemCertificates(path); }
std::string checkPrivateKey(std::string_view path) { return checkPemPrivateKey(path); }

// A server name as a certificate carries it: a host name or an IP address.
std::string checkServerName(std::string_view name) {
    if (hasSpace(name) || name.find_first_of("/:@[]") != std::string_view::npos) {
        return quoted(name) + " is not a host name or IP address";
    }
    return "";
}

// The only place a key is declared; its default is not written here but read from a
// default-constructed Config (see the top of this file). The documentation must match
// (tests/unit/config_docs_test.cc).
std::vector<ConfigKey> buildTable() {
    std::vector<ConfigKey> keys;
    keys.push_back(stringKey(
        "listen.host", checkHost, "non-empty",
        "Address to bind: an IP literal or host name; 0.0.0.0 = every IPv4 interface.",
        [](auto& c) -> auto& { return c.listen.host; }));
    keys.push_back(numberKey(
        "listen.port", 1, 65535, "TCP port for WebSocket upgrades and the HTTP endpoints.",
        [](auto& c) -> auto& { return c.listen.port; }));
    keys.push_back(numberKey(
        "listen.internal_port", 1, 65535,
        "Second TCP port, plain HTTP, that alone serves /metrics and /api/*; 0 = off (both on "
        "listen.port).",
        [](auto& c) -> auto& { return c.listen.internal_port; }, /*zero_allowed=*/true));
    keys.push_back(stringKey(
        "tls.cert_file", nullptr, "a file path",
        "PEM certificate (then intermediates) for wss:// and https:// on listen.port; with "
        "tls.key_file. Empty = plain ws://. Reloaded when it changes.",
        [](auto& c) -> auto& { return c.tls.cert_file; }));
    keys.push_back(stringKey(
        "tls.key_file", nullptr, "a file path",
        "PEM private key of tls.cert_file (unencrypted). Reloaded when it changes.",
        [](auto& c) -> auto& { return c.tls.key_file; }));
    keys.push_back(enumKey(
        "tls.min_version", kTlsVersionNames, "Lowest TLS version accepted from clients.",
        [](auto& c) -> auto& { return c.tls.min_version; }));
    keys.push_back(stringKey(
        "tls.ciphers", checkCiphers, "an OpenSSL cipher list",
        "Cipher list for TLS 1.2, in the server's order of preference; TLS 1.3 keeps OpenSSL's "
        "suites.",
        [](auto& c) -> auto& { return c.tls.ciphers; }));
    keys.push_back(numberKey(
        "tls.reload_interval_ms", 100, 3600000,
        "How often the certificate and key files are checked for a change (symlinks followed); "
        "0 = never reloaded.",
        [](auto& c) -> auto& { return c.tls.reload_interval_ms; }, /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "workers", 0, 64,
        "Worker threads, each with its own event loop and listening socket; 0 = one per usable "
        "CPU.",
        [](auto& c) -> auto& { return c.workers; }));
    keys.push_back(stringKey(
        "websocket.path", checkPath, "starts with /", "HTTP path that accepts WebSocket upgrades.",
        [](auto& c) -> auto& { return c.websocket.path; }));
    keys.push_back(numberKey(
        "websocket.max_message_bytes", 128, 16777216,
        "Largest message accepted from a client, and largest HTTP API body; a bigger message "
        "closes the connection with 1009. At most limits.send_queue_bytes - 10.",
        [](auto& c) -> auto& { return c.websocket.max_message_bytes; }));
    keys.push_back(numberKey(
        "websocket.ping_interval_ms", 1000, 3600000,
        "Interval between server pings to each client; 0 = no pings.",
        [](auto& c) -> auto& { return c.websocket.ping_interval_ms; }, /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "websocket.pong_timeout_ms", 100, 600000,
        "Time a client has to answer a ping before it is closed with 4002.",
        [](auto& c) -> auto& { return c.websocket.pong_timeout_ms; }));
    keys.push_back(listKey(
        "websocket.allowed_origins", checkOrigin, "* or scheme://host[:port]",
        "Allowed Origin headers: exact (https://app.example.com) or *; "
        "empty = any; others get 1008.",
        [](auto& c) -> auto& { return c.websocket.allowed_origins; }));
    keys.push_back(numberKey(
        "websocket.rx_buffer_bytes", 128, 65536,
        "libwebsockets receive buffer per connection: the main per-connection memory cost.",
        [](auto& c) -> auto& { return c.websocket.rx_buffer_bytes; }));
    keys.push_back(numberKey(
        "websocket.write_coalesce_ms", 0, 1000,
        "Least time between two writes to one socket: frames that come sooner wait and leave "
        "together; 0 = no wait.",
        [](auto& c) -> auto& { return c.websocket.write_coalesce_ms; }));
    keys.push_back(boolKey(
        "websocket.compression",
        "Offer permessage-deflate to clients that ask for it: each message is compressed once per "
        "worker and its frame shared by every subscriber that negotiated it.",
        [](auto& c) -> auto& { return c.websocket.compression; }));
    keys.push_back(numberKey(
        "websocket.compression_min_bytes", 0, 16777216,
        "Messages whose payload is smaller are sent uncompressed; so is one that would not come "
        "out smaller.",
        [](auto& c) -> auto& { return c.websocket.compression_min_bytes; }));
    keys.push_back(numberKey(
        "websocket.compression_level", 1, 9,
        "zlib compression level: 1 is the fastest, 9 the smallest.",
        [](auto& c) -> auto& { return c.websocket.compression_level; }));
    keys.push_back(numberKey(
        "limits.max_connections", 0, 10000000,
        "Open connections per instance before new ones get 1013; 0 = what the open-file limit "
        "allows, up to 65,536. The relay sets its soft open-file limit to this plus a quarter "
        "plus its own descriptors.",
        [](auto& c) -> auto& { return c.limits.max_connections; }));
    keys.push_back(numberKey(
        "limits.max_pending_handshakes", 1, 10000000,
        "Accepted connections per instance that are not WebSocket sessions yet (request head "
        "being read, waiting for the connect hook, upgrade under way, plain HTTP); over it the "
        "oldest is closed to make room. 0 = a quarter of the connection limit (the descriptors "
        "the relay keeps above it), at least 16.",
        [](auto& c) -> auto& { return c.limits.max_pending_handshakes; }, /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.max_pending_handshakes_per_ip", 1, 10000000,
        "Of those, how many one client address may hold; a new one over it is closed at once. "
        "0 = no per-address bound (behind a proxy every client has the proxy's address).",
        [](auto& c) -> auto& { return c.limits.max_pending_handshakes_per_ip; },
        /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.handshake_timeout_ms", 100, 600000,
        "A connection that has not finished its request head, or its upgrade, or an HTTP "
        "request, this long after it began is closed.",
        [](auto& c) -> auto& { return c.limits.handshake_timeout_ms; }));
    keys.push_back(numberKey(
        "limits.send_queue_bytes", 1024, 1073741824,
        "Bytes queued for one client before limits.slow_consumer applies; a message whose frame "
        "is larger is refused where it enters the relay.",
        [](auto& c) -> auto& { return c.limits.send_queue_bytes; }));
    keys.push_back(numberKey(
        "limits.send_queue_messages", 1, 1000000,
        "Messages queued for one client before limits.slow_consumer applies.",
        [](auto& c) -> auto& { return c.limits.send_queue_messages; }));
    keys.push_back(enumKey(
        "limits.slow_consumer", kSlowConsumerNames,
        "When a send queue is full: close the connection (4001) or drop its oldest messages.",
        [](auto& c) -> auto& { return c.limits.slow_consumer; }));
    keys.push_back(numberKey(
        "limits.max_subscriptions", 1, 100000,
        "Channels one connection may be subscribed to at once.",
        [](auto& c) -> auto& { return c.limits.max_subscriptions; }));
    keys.push_back(numberKey(
        "limits.max_channel_bytes", 1, 1024, "Longest channel name, in bytes.",
        [](auto& c) -> auto& { return c.limits.max_channel_bytes; }));
    keys.push_back(numberKey(
        "limits.max_bad_commands", 1, 1000000,
        "Malformed or unknown commands a connection may send before it is closed with 4500.",
        [](auto& c) -> auto& { return c.limits.max_bad_commands; }));
    keys.push_back(numberKey(
        "limits.socket_send_buffer_bytes", 4096, 67108864,
        "Kernel send buffer per client socket (SO_SNDBUF); 0 = kernel autotuning.",
        [](auto& c) -> auto& { return c.limits.socket_send_buffer_bytes; },
        /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.memory_budget_bytes", 1048576, 1099511627776,
        "Bytes queued in the whole process (send and hook queues, partial messages) before "
        "publishes get 503 and the largest stalled send queues are closed with 4001; 0 = from the "
        "cgroup memory limit, none without one.",
        [](auto& c) -> auto& { return c.limits.memory_budget_bytes; }, /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.memory_budget_percent", 1, 100,
        "With limits.memory_budget_bytes 0: the budget as a percentage of the container's "
        "memory limit (cgroup v2 memory.max or v1 memory.limit_in_bytes).",
        [](auto& c) -> auto& { return c.limits.memory_budget_percent; }));
    keys.push_back(numberKey(
        "limits.handshakes_per_ip_per_second", 1, 1000000,
        "New connections one client address may open per second, once its burst is spent; over "
        "it a connection gets 429 with Retry-After before its request is read. Split across "
        "workers. 0 = off.",
        [](auto& c) -> auto& { return c.limits.handshakes_per_ip_per_second; },
        /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.handshakes_per_ip_burst", 1, 1000000,
        "New connections one client address may open at once before "
        "limits.handshakes_per_ip_per_second applies.",
        [](auto& c) -> auto& { return c.limits.handshakes_per_ip_burst; }));
    keys.push_back(numberKey(
        "limits.connections_per_ip", 1, 10000000,
        "Open connections (WebSocket, HTTP, handshakes under way) one client address may hold "
        "across all workers; one more gets 429 with Retry-After before its request is read. "
        "0 = off.",
        [](auto& c) -> auto& { return c.limits.connections_per_ip; }, /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.max_connections_per_user", 1, 1000000,
        "Open connections one user (the JWT's user, or the connect hook's) may hold across the "
        "whole fleet, checked before the upgrade; limits.per_user_policy says what one more "
        "gets. Connections without a user are not counted. 0 = off.",
        [](auto& c) -> auto& { return c.limits.max_connections_per_user; },
        /*zero_allowed=*/true));
    keys.push_back(enumKey(
        "limits.per_user_policy", kPerUserPolicyNames,
        "A user at limits.max_connections_per_user opens one more: refuse it (HTTP 429 before "
        "the upgrade), or admit it and close the user's oldest connection, wherever it is, with "
        "4501.",
        [](auto& c) -> auto& { return c.limits.per_user_policy; }));
    keys.push_back(numberKey(
        "limits.api_key_failures_per_ip_per_minute", 1, 1000000,
        "Wrong or missing X-API-Key attempts one client address may make per minute (split "
        "across workers); past it the HTTP API answers 429 with Retry-After without checking "
        "the key. 0 = off.",
        [](auto& c) -> auto& { return c.limits.api_key_failures_per_ip_per_minute; },
        /*zero_allowed=*/true));
    keys.push_back(boolKey(
        "limits.per_ip_dry_run",
        "Count what the per-address limits would refuse (wsrelay_ip_limited_total "
        "result=dry_run) without refusing it.",
        [](auto& c) -> auto& { return c.limits.per_ip_dry_run; }));
    keys.push_back(listKey(
        "limits.per_ip_exempt", checkCidr, "address or CIDR",
        "Client addresses no per-address limit applies to: the app's own backends and probes.",
        [](auto& c) -> auto& { return c.limits.per_ip_exempt; }));
    keys.push_back(listKey(
        "limits.trusted_proxies", checkCidr, "address or CIDR",
        "Proxies whose limits.client_address_header is believed: a connection from one is "
        "limited under the client address it reports, checked once its request head is read. "
        "Empty = the TCP peer is the client.",
        [](auto& c) -> auto& { return c.limits.trusted_proxies; }));
    keys.push_back(enumKey(
        "limits.client_address_header", kClientAddressHeaderNames,
        "The header the trusted proxies append the client to: its rightmost address that is "
        "not a trusted proxy is the client. Only the one the proxy maintains: the other is the "
        "client's to forge.",
        [](auto& c) -> auto& { return c.limits.client_address_header; }));
    keys.push_back(numberKey(
        "limits.rate.publish_per_second", 1, 1000000,
        "Publish commands per second one connection may send (a token bucket of this times "
        "limits.rate.burst_seconds); over it a publish gets error 429. 0 = no limit.",
        [](auto& c) -> auto& { return c.limits.rate.publish_per_second; }, /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.rate.subscribe_per_second", 1, 1000000,
        "Subscribe commands per second per connection, as for publish. 0 = no limit.",
        [](auto& c) -> auto& { return c.limits.rate.subscribe_per_second; },
        /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.rate.send_per_second", 1, 1000000,
        "Send commands per second per connection, as for publish. 0 = no limit.",
        [](auto& c) -> auto& { return c.limits.rate.send_per_second; }, /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.rate.history_per_second", 1, 1000000,
        "History commands per second per connection, as for publish. 0 = no limit.",
        [](auto& c) -> auto& { return c.limits.rate.history_per_second; }, /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.rate.other_per_second", 1, 1000000,
        "Other commands (refresh) per second per connection, as for publish; unsubscribe and "
        "ping are never limited. 0 = no limit.",
        [](auto& c) -> auto& { return c.limits.rate.other_per_second; }, /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "limits.rate.burst_seconds", 1, 3600,
        "Seconds of each limits.rate bucket: a connection that was quiet may send rate times "
        "this at once.",
        [](auto& c) -> auto& { return c.limits.rate.burst_seconds; }));
    keys.push_back(numberKey(
        "limits.rate.max_refusals", 1, 1000000,
        "Commands refused with 429 in a row (an admitted one resets the count) before the "
        "connection is closed with 4429. 0 = never close.",
        [](auto& c) -> auto& { return c.limits.rate.max_refusals; }, /*zero_allowed=*/true));
    keys.push_back(boolKey(
        "limits.rate.dry_run",
        "Run commands over their limits.rate anyway, only counting them (result dry_run of "
        "wsrelay_rate_limited_total): for rolling limits out.",
        [](auto& c) -> auto& { return c.limits.rate.dry_run; }));
    keys.push_back(numberKey(
        "drain.window_ms", 0, 3600000,
        "On shutdown, 1001 closes are spread over this window to avoid a reconnect storm; "
        "0 = at once.",
        [](auto& c) -> auto& { return c.drain.window_ms; }));
    keys.push_back(enumKey(
        "broker.type", kBrokerNames, "Message broker: memory (this instance only) or redis.",
        [](auto& c) -> auto& { return c.broker.type; }));
    keys.push_back(stringKey(
        "broker.redis.url", checkRedisUrl, "redis://[user:password@]host[:port][/db]",
        "Redis server for broker.type redis; user and password are percent-encoded.",
        [](auto& c) -> auto& { return c.broker.redis.url; }));
    keys.push_back(stringKey(
        "broker.redis.prefix", nullptr, "any",
        "Prepended to each channel name to get the Redis channel name (app: makes chat app:chat).",
        [](auto& c) -> auto& { return c.broker.redis.prefix; }));
    keys.push_back(numberKey(
        "broker.redis.reconnect_min_ms", 1, 600000,
        "Shortest wait before reconnecting to Redis; waits double per failure, with full jitter.",
        [](auto& c) -> auto& { return c.broker.redis.reconnect_min_ms; }));
    keys.push_back(numberKey(
        "broker.redis.reconnect_max_ms", 1, 600000,
        "Longest wait before reconnecting to Redis; at least broker.redis.reconnect_min_ms.",
        [](auto& c) -> auto& { return c.broker.redis.reconnect_max_ms; }));
    keys.push_back(numberKey(
        "broker.redis.probe_interval_ms", 10, 3600000,
        "Interval between delivery probes through Redis pub/sub; 0 = no probes.",
        [](auto& c) -> auto& { return c.broker.redis.probe_interval_ms; }, /*zero_allowed=*/true));
    keys.push_back(numberKey(
        "broker.redis.probe_timeout_ms", 10, 3600000,
        "A probe, or connecting to Redis, taking longer than this drops the connections and "
        "reconnects.",
        [](auto& c) -> auto& { return c.broker.redis.probe_timeout_ms; }));
    keys.push_back(boolKey(
        "broker.redis.timestamps",
        "Stamp what the relay publishes to Redis with its entry time (delivery latency metric); "
        "relays strip it, other Redis readers must too.",
        [](auto& c) -> auto& { return c.broker.redis.timestamps; }));
    keys.push_back(listKey(
        "broker.redis.cluster", checkHostPort, "host:port",
        "Redis Cluster seed nodes (sharded pub/sub on each channel's slot owner); "
        "empty = not a cluster.",
        [](auto& c) -> auto& { return c.broker.redis.cluster; }));
    keys.push_back(numberKey(
        "broker.redis.cluster_refresh_ms", 100, 3600000,
        "Interval between CLUSTER SLOTS reloads in Cluster mode, moving subscriptions whose slot "
        "moved; 0 = only on a MOVED or a server-side unsubscribe.",
        [](auto& c) -> auto& { return c.broker.redis.cluster_refresh_ms; }, /*zero_allowed=*/true));
    keys.push_back(stringKey(
        "broker.redis.sentinel.master", nullptr, "any",
        "Master name that Redis Sentinel monitors; the broker finds and follows it; "
        "empty = no Sentinel.",
        [](auto& c) -> auto& { return c.broker.redis.sentinel.master; }));
    keys.push_back(listKey(
        "broker.redis.sentinel.addrs", checkHostPort, "host:port",
        "Sentinels to ask for broker.redis.sentinel.master, in order.",
        [](auto& c) -> auto& { return c.broker.redis.sentinel.addrs; }));
    keys.push_back(stringKey(
        "broker.redis.sentinel.user", nullptr, "any",
        "ACL user the relay authenticates as to the sentinels; empty = the default user.",
        [](auto& c) -> auto& { return c.broker.redis.sentinel.user; }));
    keys.push_back(stringKey(
        "broker.redis.sentinel.password", nullptr, "any",
        "Password of the sentinels (their requirepass); empty = sentinels without AUTH.",
        [](auto& c) -> auto& { return c.broker.redis.sentinel.password; }));
    keys.push_back(boolKey(
        "broker.redis.sentinel.tls",
        "The sentinels speak TLS, with the broker.redis.tls.* files (the master's scheme is the "
        "url's).",
        [](auto& c) -> auto& { return c.broker.redis.sentinel.tls; }));
    keys.push_back(stringKey(
        "broker.redis.tls.ca_file", checkCertificates, "a PEM file of certificates",
        "CAs that Redis's certificate must chain to (rediss://); empty = the system's CAs.",
        [](auto& c) -> auto& { return c.broker.redis.tls.ca_file; }));
    keys.push_back(stringKey(
        "broker.redis.tls.cert_file", checkCertificates, "a PEM file of certificates",
        "Client certificate (chain) the relay shows Redis (tls-auth-clients); empty = none.",
        [](auto& c) -> auto& { return c.broker.redis.tls.cert_file; }));
    keys.push_back(stringKey(
        "broker.redis.tls.key_file", checkPrivateKey, "a PEM private key file",
        "Private key of broker.redis.tls.cert_file, not encrypted.",
        [](auto& c) -> auto& { return c.broker.redis.tls.key_file; }));
    keys.push_back(stringKey(
        "broker.redis.tls.server_name", checkServerName, "host name or IP address",
        "Name sent as SNI and checked in Redis's certificate; empty = the host connected to.",
        [](auto& c) -> auto& { return c.broker.redis.tls.server_name; }));
    keys.push_back(entryListKey<Config::Channel>(
        "channels",
        {unique(required(declareString<Config::Channel>(
             "pattern", checkChannelsPattern, "channel name, or one ending in *",
             "Channels the entry is for: an exact channel name, or a prefix followed by * (any "
             "rest, none included); * alone matches every channel.",
             [](auto& e) -> auto& { return e.pattern; }))),
         declareNumber<Config::Channel>(
             "history_size", 0, 100000,
             "Messages of each matching channel kept for recovery and history reads; 0 = no "
             "history.",
             [](auto& e) -> auto& { return e.history_size; }),
         declareNumber<Config::Channel>(
             "history_ttl_ms", 1000, 2592000000,
             "A channel's history (its messages and epoch) expires this long after its last "
             "publish.",
             [](auto& e) -> auto& { return e.history_ttl_ms; }),
         declareBool<Config::Channel>(
             "presence",
             "Keep who is subscribed to each matching channel, fleet-wide (the presence command, "
             "POST /api/presence).",
             [](auto& e) -> auto& { return e.presence; }),
         declareBool<Config::Channel>(
             "join_leave",
             "With presence: tell each matching channel's subscribers who joins and leaves, while "
             "it has at most presence.max_join_leave_members members.",
             [](auto& e) -> auto& { return e.join_leave; })},
        "Options by channel name pattern; the first entry whose pattern matches a channel decides; "
        "a channel no entry matches has no history and no presence.",
        [](auto& c) -> auto& { return c.channels; }));
    keys.push_back(numberKey(
        "history.max_recover", 1, 100000,
        "Most messages one recovery delivers (a subscribe with since, or a worker after a broker "
        "outage); more missed = not recovered.",
        [](auto& c) -> auto& { return c.history.max_recover; }));
    keys.push_back(numberKey(
        "history.max_limit", 1, 100000,
        "Largest limit of one history read (the history command, POST /api/history), and the "
        "limit of a read that gives none.",
        [](auto& c) -> auto& { return c.history.max_limit; }));
    keys.push_back(numberKey(
        "history.max_reads_in_flight", 1, 10000,
        "History reads one worker has under way at the broker at once; more wait their turn.",
        [](auto& c) -> auto& { return c.history.max_reads_in_flight; }));
    keys.push_back(numberKey(
        "fleet.command_timeout_ms", 10, 60000,
        "How long a server API command waits for the answers of the workers it reached.",
        [](auto& c) -> auto& { return c.fleet.command_timeout_ms; }));
    keys.push_back(numberKey(
        "fleet.max_pending_commands", 1, 100000,
        "Fleet commands one worker has waiting for answers at once; more are refused with 503.",
        [](auto& c) -> auto& { return c.fleet.max_pending_commands; }));
    keys.push_back(numberKey(
        "presence.ttl_ms", 1000, 3600000,
        "A presence member its relay stopped refreshing (the relay died) is gone this long after "
        "its last refresh.",
        [](auto& c) -> auto& { return c.presence.ttl_ms; }));
    keys.push_back(numberKey(
        "presence.refresh_ms", 100, 3600000,
        "Each worker refreshes the presence of its connections this often, one call per channel.",
        [](auto& c) -> auto& { return c.presence.refresh_ms; }));
    keys.push_back(numberKey(
        "presence.max_join_leave_members", 0, 1000000,
        "A channel with join_leave sends join/leave frames only while it has at most this many "
        "members; 0 = never.",
        [](auto& c) -> auto& { return c.presence.max_join_leave_members; }));
    keys.push_back(numberKey(
        "presence.max_members", 1, 100000,
        "Most members one presence answer lists (the presence command, POST /api/presence); "
        "more are cut, and the answer says so.",
        [](auto& c) -> auto& { return c.presence.max_members; }));
    keys.push_back(numberKey(
        "fleet.lease_ttl_ms", 1000, 600000,
        "An instance whose lease in Redis was not renewed for this long (killed, frozen, cut off) "
        "is reaped by another: the app gets a disconnect event with reason instance_lost for "
        "each of its connections (Redis broker and hook disconnect events only).",
        [](auto& c) -> auto& { return c.lease.ttl_ms; }));
    keys.push_back(numberKey(
        "fleet.lease_renew_ms", 100, 300000,
        "How often an instance renews its lease and looks for expired ones; less than "
        "fleet.lease_ttl_ms. A lost instance is reported within lease_ttl_ms + lease_renew_ms.",
        [](auto& c) -> auto& { return c.lease.renew_ms; }));
    keys.push_back(stringKey(
        "api.key", nullptr, "any",
        "Key that every POST /api/... endpoint requires in X-API-Key; empty = API off.",
        [](auto& c) -> auto& { return c.api.key; }));
    keys.push_back(boolKey(
        "auth.enabled",
        "Require a JWT at the WebSocket handshake (docs/auth.md); false logs a warning at start.",
        [](auto& c) -> auto& { return c.auth.enabled; }));
    keys.push_back(stringKey(
        "auth.jwt.secret", nullptr, "any",
        "HMAC secret that verifies HS256/HS384/HS512 tokens; empty = no HMAC key.",
        [](auto& c) -> auto& { return c.auth.jwt.secret; }));
    keys.push_back(stringKey(
        "auth.jwt.public_key_file", nullptr, "a file path",
        "PEM file with one or more public keys (RSA, EC P-256/P-384, Ed25519) or certificates.",
        [](auto& c) -> auto& { return c.auth.jwt.public_key_file; }));
    keys.push_back(stringKey(
        "auth.jwt.jwks_url", checkJwksUrl, "http://, https:// or file:// URL",
        "JWK Set to verify tokens with, fetched at start and refreshed; empty = none.",
        [](auto& c) -> auto& { return c.auth.jwt.jwks_url; }));
    keys.push_back(stringKey(
        "auth.jwt.jwks_ca_file", checkCertificates, "a PEM file of certificates",
        "CAs an https:// auth.jwt.jwks_url's certificate must chain to; empty = the system's CAs.",
        [](auto& c) -> auto& { return c.auth.jwt.jwks_ca_file; }));
    keys.push_back(numberKey(
        "auth.jwt.jwks_refresh_ms", 1000, 86400000,
        "Interval between two fetches of auth.jwt.jwks_url.",
        [](auto& c) -> auto& { return c.auth.jwt.jwks_refresh_ms; }));
    keys.push_back(numberKey(
        "auth.jwt.jwks_min_refresh_ms", 100, 3600000,
        "Least time between two JWKS fetches caused by tokens with an unknown kid.",
        [](auto& c) -> auto& { return c.auth.jwt.jwks_min_refresh_ms; }));
    keys.push_back(listKey(
        "auth.jwt.algorithms", checkAlgorithm, "HS256 ... ES384, EdDSA",
        "Accepted token algorithms; empty = every algorithm the configured keys support.",
        [](auto& c) -> auto& { return c.auth.jwt.algorithms; }));
    keys.push_back(stringKey(
        "auth.jwt.issuer", nullptr, "any", "Required iss claim; empty = not checked.",
        [](auto& c) -> auto& { return c.auth.jwt.issuer; }));
    keys.push_back(listKey(
        "auth.jwt.audience", nullptr, "any",
        "The aud claim must contain one of these; empty = not checked.",
        [](auto& c) -> auto& { return c.auth.jwt.audience; }));
    keys.push_back(numberKey(
        "auth.jwt.leeway_ms", 0, 600000, "Clock skew allowed when checking exp and nbf.",
        [](auto& c) -> auto& { return c.auth.jwt.leeway_ms; }));
    keys.push_back(boolKey(
        "auth.jwt.require_exp",
        "Refuse tokens without an exp claim; false accepts them, and they never expire.",
        [](auto& c) -> auto& { return c.auth.jwt.require_exp; }));
    keys.push_back(boolKey(
        "auth.jwt.allow_query_token",
        "Also accept the token as ?token= in the upgrade URL (URLs end up in access logs).",
        [](auto& c) -> auto& { return c.auth.jwt.allow_query_token; }));
    keys.push_back(stringKey(
        "auth.jwt.user_claim", checkClaimName, "non-empty",
        "Claim that holds the user id (a string or an integer).",
        [](auto& c) -> auto& { return c.auth.jwt.user_claim; }));
    keys.push_back(stringKey(
        "auth.jwt.subscribe_claim", checkClaimName, "non-empty",
        "Claim listing the channel patterns the user may subscribe to.",
        [](auto& c) -> auto& { return c.auth.jwt.subscribe_claim; }));
    keys.push_back(stringKey(
        "auth.jwt.publish_claim", checkClaimName, "non-empty",
        "Claim listing the channel patterns the user may publish to.",
        [](auto& c) -> auto& { return c.auth.jwt.publish_claim; }));
    keys.push_back(stringKey(
        "auth.jwt.info_claim", nullptr, "any; empty = none",
        "Claim whose JSON value is the connection's info in presence (at most 1024 bytes "
        "minified, else the token is refused); absent = null.",
        [](auto& c) -> auto& { return c.auth.jwt.info_claim; }));
    keys.push_back(listKey(
        "auth.permissions.subscribe", checkChannelPattern, "channel pattern",
        "Channel patterns every authenticated user may subscribe to; {sub} = the user id.",
        [](auto& c) -> auto& { return c.auth.permissions.subscribe; }));
    keys.push_back(listKey(
        "auth.permissions.publish", checkChannelPattern, "channel pattern",
        "Channel patterns every authenticated user may publish to; {sub} = the user id.",
        [](auto& c) -> auto& { return c.auth.permissions.publish; }));
    keys.push_back(listKey(
        "auth.permissions.auto_subscribe", checkAutoSubscribe, "exact channel",
        "Channels ({sub} = the user id) each connection is subscribed to when it opens.",
        [](auto& c) -> auto& { return c.auth.permissions.auto_subscribe; }));
    keys.push_back(numberKey(
        "auth.expiry_warning_ms", 0, 86400000,
        "How long before its token expires a connection gets the token_expiring frame; 0 = none.",
        [](auto& c) -> auto& { return c.auth.expiry_warning_ms; }));
    keys.push_back(stringKey(
        "hook.url", checkHookUrl, "http:// or https:// URL",
        "The app's hook endpoint (docs/hook.md); empty = no hook.",
        [](auto& c) -> auto& { return c.hook.url; }));
    keys.push_back(stringKey(
        "hook.ca_file", checkCertificates, "a PEM file of certificates",
        "CAs an https:// hook.url's certificate must chain to; empty = the system's CAs.",
        [](auto& c) -> auto& { return c.hook.ca_file; }));
    keys.push_back(listKey(
        "hook.events", checkHookEvent,
        "connect, subscribe, message, disconnect, unsubscribe, occupied, vacated",
        "Events sent to the hook; message is always sent for routed publishes and send; "
        "unsubscribe, occupied and vacated only when listed.",
        [](auto& c) -> auto& { return c.hook.events; }));
    keys.push_back(numberKey(
        "hook.vacated_delay_ms", 0, 600000,
        "How long a channel must have no subscriber on any instance before its vacated event; "
        "emptied and taken again within it: neither event.",
        [](auto& c) -> auto& { return c.hook.vacated_delay_ms; }));
    keys.push_back(numberKey(
        "hook.timeout_ms", 10, 600000,
        "Time the app has to answer one hook request, connecting included.",
        [](auto& c) -> auto& { return c.hook.timeout_ms; }));
    keys.push_back(numberKey(
        "hook.max_in_flight", 1, 1000000,
        "Hook requests under way at once per instance; beyond it commands get 503 hook busy.",
        [](auto& c) -> auto& { return c.hook.max_in_flight; }));
    keys.push_back(numberKey(
        "hook.max_queued_bytes_per_connection", 1024, 1073741824,
        "Bytes of one connection's events waiting for the app; beyond it its commands get "
        "503 hook busy.",
        [](auto& c) -> auto& { return c.hook.max_queued_bytes_per_connection; }));
    keys.push_back(numberKey(
        "hook.max_queued_bytes", 65536, 68719476736,
        "Bytes of events waiting for the app per instance; beyond it commands get 503 hook busy.",
        [](auto& c) -> auto& { return c.hook.max_queued_bytes; }));
    keys.push_back(numberKey(
        "hook.max_connections", 1, 1024, "Kept-alive HTTP connections from each worker to the app.",
        [](auto& c) -> auto& { return c.hook.max_connections; }));
    keys.push_back(numberKey(
        "hook.retries", 0, 10,
        "Extra attempts for hook events other than message that failed or timed out.",
        [](auto& c) -> auto& { return c.hook.retries; }));
    keys.push_back(listKey(
        "hook.forward_headers", checkHeaderName, "lower-case header name",
        "Handshake headers copied into the connect event.",
        [](auto& c) -> auto& { return c.hook.forward_headers; }));
    keys.push_back(stringKey(
        "hook.secret", nullptr, "any",
        "Key that signs each hook request (X-Wsrelay-Signature); empty = unsigned.",
        [](auto& c) -> auto& { return c.hook.secret; }));
    keys.push_back(listKey(
        "hook.routes", checkRoute, "pattern=target (broker, hook, both)",
        "Where a client publish goes, by channel pattern; first match wins; default broker.",
        [](auto& c) -> auto& { return c.hook.routes; }));
    keys.push_back(enumKey(
        "log.level", kLogLevelNames, "Least severe level written to the log (stderr).",
        [](auto& c) -> auto& { return c.log.level; }));
    const Config defaults;
    for (ConfigKey& key : keys) key.default_value = key.read(defaults);
    return keys;
}

const std::vector<ConfigKey>& table() {
    static const std::vector<ConfigKey> keys = buildTable();
    return keys;
}

// The largest WebSocket frame header: RFC 6455's 2 bytes plus an 8-byte length (server frames
// carry no mask). tests/unit/protocol_test.cc checks it against the encoder.
constexpr int64_t kMaxFrameHeaderBytes = 10;

// The most a position adds to a message frame of a channel with history:
// `,"offset":N,"epoch":"E"` with a 20-digit offset and a 32-byte epoch (relay/protocol
// kMaxPositionBytes; tests/unit/publisher_test.cc checks the rule against it).
constexpr int64_t kMaxPositionBytes = 79;

// The first `channels` entry that keeps history, or null: the rules that only matter with history
// name it.
const Config::Channel* firstWithHistory(const Config& c) {
    for (const Config::Channel& entry : c.channels) {
        if (entry.history_size > 0) return &entry;
    }
    return nullptr;
}

std::string historyEntryName(const Config& c, const Config::Channel& entry) {
    return "channels entry " + std::to_string(&entry - c.channels.data() + 1) + ", " +
           quoted(entry.pattern);
}

// A client's publish is never shorter than the JSON of the frame that delivers it
// ({"op":"publish",...} and {"op":"message",...} differ in the op word only, both 7 letters), so
// with this rule every publish a client may send fits in an empty send queue once framed. On a
// channel with history the frame also carries its position, which the entry checks make room for.
// Anything larger could only close every subscriber as a slow consumer.
std::string checkMessageFitsSendQueue(const Config& c) {
    const int64_t message = c.websocket.max_message_bytes;
    const int64_t queue = c.limits.send_queue_bytes;
    const Config::Channel* history = firstWithHistory(c);
    const int64_t extra = kMaxFrameHeaderBytes + (history != nullptr ? kMaxPositionBytes : 0);
    if (message + extra <= queue) return "";
    std::string added = std::to_string(kMaxFrameHeaderBytes) + "-byte frame header";
    if (history != nullptr) {
        added += " and a " + std::to_string(kMaxPositionBytes) + "-byte position (" +
                 historyEntryName(c, *history) + " keeps history)";
    }
    return "websocket.max_message_bytes (" + std::to_string(message) + ") plus a " + added +
           " exceeds limits.send_queue_bytes (" + std::to_string(queue) +
           "): a message of the largest size could never be queued for a subscriber; set "
           "websocket.max_message_bytes to at most " +
           std::to_string(queue - extra) + " or limits.send_queue_bytes to at least " +
           std::to_string(message + extra);
}

// A recovery queues the missed messages for its client at once, then the ack: a send queue that
// cannot hold them closes the client (or drops what it recovered) every time it recovers.
std::string checkRecoveryFitsSendQueue(const Config& c) {
    const Config::Channel* entry = firstWithHistory(c);
    const int recover = c.history.max_recover;
    const int queue = c.limits.send_queue_messages;
    if (entry == nullptr || recover < queue) return "";
    return "history.max_recover (" + std::to_string(recover) +
           ") is not less than limits.send_queue_messages (" + std::to_string(queue) + ") while " +
           historyEntryName(c, *entry) +
           " keeps history: a recovery queues up to history.max_recover messages and its ack for "
           "one client at once; set history.max_recover to at most " +
           std::to_string(queue - 1) + " or limits.send_queue_messages to at least " +
           std::to_string(recover + 1);
}

// A lease renewed no more often than it expires would lapse between renewals.
std::string checkLeaseRenewal(const Config& c) {
    if (c.lease.renew_ms < c.lease.ttl_ms) return "";
    return "fleet.lease_renew_ms (" + std::to_string(c.lease.renew_ms) +
           ") is not less than fleet.lease_ttl_ms (" + std::to_string(c.lease.ttl_ms) +
           "): the lease would expire between renewals and the instance be reported lost";
}

// The history of a channel lives under Redis keys derived from its Redis channel name (prefix +
// channel), in the channel's Cluster slot: the name's {hash tag} when it has one, else the whole
// name made the tag. Channel names hold no brace, so the prefix decides which: none, or exactly
// one non-empty tag (every channel then shares that tag's slot). Other braces would give the keys
// another slot than the channel's, and the history function call would fail.
bool prefixKeepsChannelSlot(const std::string& prefix) {
    const size_t open = prefix.find('{');
    const size_t close = prefix.find('}');
    const bool none = open == std::string::npos && close == std::string::npos;
    const bool one_tag = open != std::string::npos && close != std::string::npos &&
                         open + 1 < close && prefix.find('{', open + 1) == std::string::npos &&
                         prefix.find('}', close + 1) == std::string::npos;
    return none || one_tag;
}

std::string checkPrefixHashTag(const Config& c) {
    const Config::Channel* entry = firstWithHistory(c);
    const std::string& prefix = c.broker.redis.prefix;
    if (entry == nullptr || prefixKeepsChannelSlot(prefix)) return "";
    return "broker.redis.prefix " + quoted(prefix) +
           " holds braces other than one non-empty {hash tag} while " +
           historyEntryName(c, *entry) +
           " keeps history: its Redis keys are derived from the channel's hash tag; use no brace, "
           "or one {tag}";
}

// Presence keys are derived from the Redis channel name as history's are: the same prefix rule.
std::string checkPresencePrefixHashTag(const Config& c) {
    const auto entry = std::find_if(c.channels.begin(), c.channels.end(),
                                    [](const Config::Channel& e) { return e.presence; });
    const std::string& prefix = c.broker.redis.prefix;
    if (entry == c.channels.end() || prefixKeepsChannelSlot(prefix)) return "";
    return "broker.redis.prefix " + quoted(prefix) +
           " holds braces other than one non-empty {hash tag} while channels entry " +
           std::to_string(entry - c.channels.begin() + 1) +
           " keeps presence: its Redis keys are derived from the channel's hash tag; use no "
           "brace, or one {tag}";
}

// A member refreshed no sooner than it expires would blink out between refreshes.
std::string checkPresenceRefresh(const Config& c) {
    if (c.presence.refresh_ms < c.presence.ttl_ms) return "";
    return "presence.refresh_ms (" + std::to_string(c.presence.refresh_ms) +
           ") must be below presence.ttl_ms (" + std::to_string(c.presence.ttl_ms) +
           "): members would expire between refreshes";
}

// join_leave only means something on a channel whose members are kept.
std::string checkJoinLeave(const Config& c, size_t index) {
    const Config::Channel& entry = c.channels[index];
    if (!entry.join_leave || entry.presence) return "";
    return "channels entry " + std::to_string(index + 1) +
           ": join_leave needs presence: true on the same entry";
}

// A longer pattern could match no channel the relay accepts.
std::string checkPatternLength(const Config& c, size_t index) {
    const std::string& pattern = c.channels[index].pattern;
    std::string_view name = pattern;
    if (name.ends_with('*')) name.remove_suffix(1);
    const int max = c.limits.max_channel_bytes;
    if (name.size() <= static_cast<size_t>(max)) return "";
    return "channels entry " + std::to_string(index + 1) + ": the pattern " + quoted(pattern) +
           " is longer than limits.max_channel_bytes (" + std::to_string(max) +
           ") without its *: it matches no channel";
}

std::string checkReconnectOrder(const Config& c) {
    const Config::Broker::Redis& redis = c.broker.redis;
    if (redis.reconnect_max_ms >= redis.reconnect_min_ms) return "";
    return "broker.redis.reconnect_max_ms (" + std::to_string(redis.reconnect_max_ms) +
           ") is less than broker.redis.reconnect_min_ms (" +
           std::to_string(redis.reconnect_min_ms) + ")";
}

std::string checkClusterOrSentinel(const Config& c) {
    const Config::Broker::Redis& redis = c.broker.redis;
    if (redis.cluster.empty() || redis.sentinel.master.empty()) return "";
    return "broker.redis.cluster and broker.redis.sentinel.master exclude each other: a Redis "
           "Cluster has no Sentinel; set one of them";
}

std::string checkSentinelAddrs(const Config& c) {
    const Config::Broker::Redis& redis = c.broker.redis;
    if (redis.sentinel.master.empty() || !redis.sentinel.addrs.empty()) return "";
    return "broker.redis.sentinel.master needs broker.redis.sentinel.addrs (the Sentinels to ask "
           "for it)";
}

// A URL that does not parse is the key's own error; this rule is skipped then.
std::string checkClusterDatabase(const Config& c) {
    const Config::Broker::Redis& redis = c.broker.redis;
    if (redis.cluster.empty()) return "";
    const RedisUrlParse url = parseRedisUrl(redis.url);
    if (!url.error.empty() || url.url.db == 0) return "";
    return "broker.redis.url selects database " + std::to_string(url.url.db) +
           ", but with broker.redis.cluster a Redis Cluster has only database 0";
}

std::string checkInternalPort(const Config& c) {
    if (c.listen.internal_port == 0 || c.listen.internal_port != c.listen.port) return "";
    return "listen.internal_port (" + std::to_string(c.listen.internal_port) +
           ") is listen.port: the internal endpoints need a port of their own, or 0 for none";
}

std::string checkTlsPair(const Config& c) {
    const bool cert = !c.tls.cert_file.empty();
    const bool key = !c.tls.key_file.empty();
    if (cert == key) return "";
    return cert ? "tls.cert_file is set without tls.key_file"
                : "tls.key_file is set without tls.cert_file";
}

// The files are read here, with the code that loads them at startup and at each reload.
std::string checkTlsFiles(const Config& c) {
    if (c.tls.cert_file.empty() || c.tls.key_file.empty()) return "";
    std::string error;
    if (!tls::loadCredentials(c.tls.cert_file, c.tls.key_file, error)) return error;
    return "";
}

// A client certificate needs its key; each file was checked on its own by its key.
std::string checkRedisClientCert(const Config& c) {
    const Config::Broker::Redis::Tls& tls = c.broker.redis.tls;
    if (tls.cert_file.empty() != tls.key_file.empty()) {
        return "broker.redis.tls.cert_file and broker.redis.tls.key_file go together: set both "
               "(a client certificate and its key) or neither";
    }
    if (tls.cert_file.empty()) return "";
    if (!checkPemCertificates(tls.cert_file).empty() || !checkPemPrivateKey(tls.key_file).empty()) {
        return "";  // the key's own error
    }
    const std::string error = checkKeyMatchesCertificate(tls.cert_file, tls.key_file);
    return error.empty() ? "" : "broker.redis.tls.key_file: " + error;
}

// TLS settings that nothing would use are a mistake (a redis:// url meant as rediss://).
std::string checkRedisTlsUsed(const Config& c) {
    const Config::Broker::Redis& redis = c.broker.redis;
    const Config::Broker::Redis::Tls& tls = redis.tls;
    if (tls == Config::Broker::Redis::Tls{} || redis.sentinel.tls) return "";
    const RedisUrlParse url = parseRedisUrl(redis.url);
    if (!url.error.empty() || url.url.tls) return "";
    return "broker.redis.tls.* is set but broker.redis.url is redis:// and "
           "broker.redis.sentinel.tls is false: nothing would use TLS; write rediss://";
}

// Whether a PEM file holds a usable key is known only once it is read, at startup.
std::string checkAuthKey(const Config& c) {
    const Config::Auth& auth = c.auth;
    if (!auth.enabled || !auth.jwt.secret.empty() || !auth.jwt.public_key_file.empty() ||
        !auth.jwt.jwks_url.empty()) {
        return "";
    }
    return "auth.enabled needs a key: auth.jwt.secret, auth.jwt.public_key_file or "
           "auth.jwt.jwks_url";
}

// A per-user limit counts only connections with a user: without a token or a connect hook none
// has one, and the limit would silently do nothing.
std::string checkUserLimitHasUsers(const Config& c) {
    if (c.limits.max_connections_per_user == 0 || c.auth.enabled) return "";
    const auto& events = c.hook.events;
    if (!c.hook.url.empty() && std::find(events.begin(), events.end(), "connect") != events.end()) {
        return "";
    }
    return "limits.max_connections_per_user counts connections by user: it needs auth.enabled, "
           "or hook.url with connect in hook.events";
}

const std::vector<ConfigRule>& rules() {
    static const std::vector<ConfigRule> all = {
        {{"websocket.max_message_bytes", "limits.send_queue_bytes", "channels"},
         "websocket.max_message_bytes + 10 (+ 79 with history) <= limits.send_queue_bytes",
         checkMessageFitsSendQueue},
        {{"broker.redis.reconnect_max_ms", "broker.redis.reconnect_min_ms"},
         "broker.redis.reconnect_min_ms <= broker.redis.reconnect_max_ms",
         checkReconnectOrder},
        {{"broker.redis.cluster", "broker.redis.sentinel.master"},
         "broker.redis.cluster and broker.redis.sentinel.master are not both set",
         checkClusterOrSentinel},
        {{"broker.redis.sentinel.master", "broker.redis.sentinel.addrs"},
         "broker.redis.sentinel.master set => broker.redis.sentinel.addrs not empty",
         checkSentinelAddrs},
        {{"broker.redis.url", "broker.redis.cluster"},
         "broker.redis.cluster set => the database of broker.redis.url is 0",
         checkClusterDatabase},
        {{"broker.redis.tls.cert_file", "broker.redis.tls.key_file"},
         "broker.redis.tls.cert_file and broker.redis.tls.key_file are both set (and match) or "
         "both empty",
         checkRedisClientCert},
        {{"broker.redis.tls.ca_file", "broker.redis.tls.cert_file", "broker.redis.tls.key_file",
          "broker.redis.tls.server_name", "broker.redis.url", "broker.redis.sentinel.tls"},
         "a broker.redis.tls.* key set => broker.redis.url is rediss:// or "
         "broker.redis.sentinel.tls is true",
         checkRedisTlsUsed},
        {{"auth.enabled", "auth.jwt.secret", "auth.jwt.public_key_file", "auth.jwt.jwks_url"},
         "auth.enabled => one of auth.jwt.secret, auth.jwt.public_key_file, auth.jwt.jwks_url set",
         checkAuthKey},
        {{"tls.cert_file", "tls.key_file"},
         "tls.cert_file and tls.key_file are both set or both empty",
         checkTlsPair},
        {{"listen.internal_port", "listen.port"},
         "listen.internal_port is 0 or differs from listen.port",
         checkInternalPort},
        {{"tls.cert_file", "tls.key_file"},
         "tls.cert_file set => both files are readable PEM and the key is the certificate's",
         checkTlsFiles},
        {{"channels", "limits.max_channel_bytes"},
         "each channels pattern without its * is at most limits.max_channel_bytes long",
         nullptr,
         checkPatternLength},
        {{"history.max_recover", "limits.send_queue_messages", "channels"},
         "a channels entry with history => history.max_recover < limits.send_queue_messages",
         checkRecoveryFitsSendQueue},
        {{"broker.redis.prefix", "channels"},
         "a channels entry with history => broker.redis.prefix has no brace or one {hash tag}",
         checkPrefixHashTag},
        {{"broker.redis.prefix", "channels"},
         "a channels entry with presence => broker.redis.prefix has no brace or one {hash tag}",
         checkPresencePrefixHashTag},
        {{"presence.refresh_ms", "presence.ttl_ms"},
         "presence.refresh_ms < presence.ttl_ms",
         checkPresenceRefresh},
        {{"channels"},
         "a channels entry with join_leave also has presence",
         nullptr,
         checkJoinLeave},
        {{"fleet.lease_renew_ms", "fleet.lease_ttl_ms"},
         "fleet.lease_renew_ms < fleet.lease_ttl_ms",
         checkLeaseRenewal},
        {{"limits.max_connections_per_user", "auth.enabled", "hook.url", "hook.events"},
         "limits.max_connections_per_user > 0 => auth.enabled, or hook.url set and connect in "
         "hook.events",
         checkUserLimitHasUsers},
    };
    return all;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += sep;
        out += items[i];
    }
    return out;
}

// Plain YAML scalars that would not read back as the same string.
bool needsQuotes(std::string_view s) {
    if (s.empty() || s.front() == ' ' || s.back() == ' ') return true;
    if (std::string_view("!&*-?{}[],#|>@`\"'%:").find(s.front()) != std::string_view::npos) {
        return true;
    }
    if (s.find(": ") != std::string_view::npos || s.find(" #") != std::string_view::npos ||
        s.find_first_of(",[]{}") != std::string_view::npos) {
        return true;
    }
    const std::string l = lower(s);
    return l == "~" || l == "null" || l == "true" || l == "false" || l == "yes" || l == "no" ||
           l == "on" || l == "off";
}

std::string yamlString(const std::string& s) {
    if (!needsQuotes(s)) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::string ConfigKey::envName() const {
    std::string name = "WSRELAY_";
    for (char c : path) {
        name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return name;
}

std::span<const ConfigKey> configKeys() { return table(); }

std::span<const ConfigRule> configRules() { return rules(); }

const ConfigKey* findConfigKey(std::string_view path) {
    for (const ConfigKey& key : table()) {
        if (key.path == path) return &key;
    }
    return nullptr;
}

std::string_view configTypeName(ConfigType type) {
    switch (type) {
        case ConfigType::Int: return "int";
        case ConfigType::Int64: return "int64";
        case ConfigType::Bool: return "bool";
        case ConfigType::String: return "string";
        case ConfigType::Enum: return "enum";
        case ConfigType::StringList: return "string list";
        case ConfigType::EntryList: return "entry list";
    }
    return "?";
}

std::string formatConfigValue(const ConfigValue& value) {
    if (const auto* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
    if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
    if (const auto* s = std::get_if<std::string>(&value)) return yamlString(*s);
    std::vector<std::string> items;
    if (const auto* entries = std::get_if<std::vector<ConfigEntry>>(&value)) {
        for (const ConfigEntry& entry : *entries) {
            std::vector<std::string> fields;
            for (const auto& [name, field] : entry.fields) {
                fields.push_back(name + ": " + formatConfigValue(field));
            }
            items.push_back("{" + join(fields, ", ") + "}");
        }
        return "[" + join(items, ", ") + "]";
    }
    for (const std::string& item : std::get<std::vector<std::string>>(value)) {
        items.push_back(yamlString(item));
    }
    return "[" + join(items, ", ") + "]";
}

std::string configRange(const ConfigKey& key) {
    switch (key.type) {
        case ConfigType::Int:
        case ConfigType::Int64: {
            std::string range = std::to_string(key.min) + ".." + std::to_string(key.max);
            return key.zero_allowed ? "0 or " + range : range;
        }
        case ConfigType::Bool: return "true, false";
        case ConfigType::Enum: return join(key.allowed, ", ");
        case ConfigType::String:
        case ConfigType::StringList: return key.constraint;
        case ConfigType::EntryList: {
            std::vector<std::string> names;
            for (const ConfigKey& field : key.fields) names.push_back(field.path);
            return "{" + join(names, ", ") + "}";
        }
    }
    return "";
}

ConfigParse parseConfigScalar(const ConfigKey& key, std::string_view text) {
    ConfigParse out;
    switch (key.type) {
        case ConfigType::Int:
        case ConfigType::Int64: {
            std::string_view digits = text;
            if (digits.size() > 1 && digits.front() == '+' && digits[1] != '-') {
                digits.remove_prefix(1);
            }
            int64_t n = 0;
            const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
            const bool overflow = ec == std::errc::result_out_of_range;
            if (digits.empty() || (ec != std::errc() && !overflow) ||
                end != digits.data() + digits.size()) {
                out.error = "cannot convert " + quoted(text) + " to an integer";
            } else if (overflow ||
                       ((n < key.min || n > key.max) && !(n == 0 && key.zero_allowed))) {
                out.error = quoted(text) + " is out of range (allowed: " + configRange(key) + ")";
            } else {
                out.value = n;
            }
            return out;
        }
        case ConfigType::Bool: {
            const std::string l = lower(text);
            if (l == "true" || l == "yes" || l == "on" || l == "1") {
                out.value = true;
            } else if (l == "false" || l == "no" || l == "off" || l == "0") {
                out.value = false;
            } else {
                out.error = "cannot convert " + quoted(text) + " to a boolean (use true or false)";
            }
            return out;
        }
        case ConfigType::Enum: {
            const std::string l = lower(text);
            for (const std::string& name : key.allowed) {
                if (name == l) {
                    out.value = name;
                    return out;
                }
            }
            out.error = quoted(text) + " is not one of: " + join(key.allowed, ", ");
            return out;
        }
        case ConfigType::String:
        case ConfigType::StringList: {
            if (key.check != nullptr) out.error = key.check(text);
            if (out.error.empty()) out.value = std::string(text);
            return out;
        }
        case ConfigType::EntryList:
            out.error = "expected a list of entries, not a scalar";
            return out;
    }
    out.error = "unsupported type";
    return out;
}

}  // namespace wsrelay
