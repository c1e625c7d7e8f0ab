#include "conf/config_loader.h"

#include <yaml-cpp/yaml.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "conf/config_schema.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wsrelay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

std::vector<std::string> errorStrings(const ConfigLoad& load) {
    std::vector<std::string> out;
    for (const ConfigError& e : load.errors) out.push_back(e.toString());
    return out;
}

ConfigLoad loadYaml(std::string_view yaml, const Environment& env = {}) {
    return loadConfigText(yaml, "cfg.yaml", env);
}

// Key by key through the table, so a mismatch names the key; then whole, so that a field the
// table does not reach cannot differ either.
void expectSameConfig(const Config& got, const Config& want) {
    for (const ConfigKey& key : configKeys()) {
        EXPECT_EQ(key.read(got), key.read(want)) << key.path;
    }
    EXPECT_TRUE(got == want) << "a field outside the key table differs";
}

// --- The table ---

TEST(ConfigSchemaTest, DefaultLoadedConfigEqualsConfigStruct) {
    const ConfigLoad load = loadDefaultConfig({});
    EXPECT_TRUE(load.ok());
    EXPECT_THAT(load.warnings, IsEmpty());
    expectSameConfig(load.config, Config{});
}

TEST(ConfigSchemaTest, TableDefaultsEqualConfigStructDefaults) {
    const Config defaults;
    for (const ConfigKey& key : configKeys()) {
        EXPECT_EQ(key.read(defaults), key.default_value) << key.path;
    }
}

// The table takes its defaults from the struct; storing one back must change nothing, or --help
// and the docs would show a value the relay does not run with.
TEST(ConfigSchemaTest, StoringEachDefaultLeavesADefaultConfig) {
    for (const ConfigKey& key : configKeys()) {
        Config config;
        key.store(config, key.default_value);
        EXPECT_TRUE(config == Config{}) << key.path;
    }
}

TEST(ConfigSchemaTest, CoversEveryConfigField) {
    // One key per field of conf/config.h; update with the struct.
    EXPECT_EQ(configKeys().size(), 118u);
}

TEST(ConfigSchemaTest, TableIsWellFormed) {
    std::set<std::string> paths;
    std::set<std::string> env_names;
    for (const ConfigKey& key : configKeys()) {
        SCOPED_TRACE(key.path);
        EXPECT_TRUE(paths.insert(key.path).second) << "duplicate path";
        EXPECT_TRUE(env_names.insert(key.envName()).second) << "duplicate env name";
        EXPECT_FALSE(key.meaning.empty());
        // A meaning is one markdown table cell and one YAML comment line.
        EXPECT_EQ(key.meaning.find_first_of("|\n"), std::string::npos);
        EXPECT_TRUE(key.store && key.read);
        // Each default is accepted by its own key, as written in the docs.
        if (key.type == ConfigType::EntryList) {
            EXPECT_FALSE(key.fields.empty());
            std::set<std::string> names;
            for (const ConfigKey& field : key.fields) {
                SCOPED_TRACE(field.path);
                EXPECT_TRUE(names.insert(field.path).second) << "duplicate field";
                EXPECT_EQ(field.path.find_first_of(". "), std::string::npos);
                EXPECT_FALSE(field.meaning.empty());
                EXPECT_EQ(field.meaning.find_first_of("|\n"), std::string::npos);
                EXPECT_TRUE(field.fields.empty()) << "fields are scalars";
                EXPECT_NE(field.type, ConfigType::StringList);
                EXPECT_NE(field.type, ConfigType::EntryList);
                EXPECT_FALSE(field.store || field.read) << "the list converts whole entries";
                if (field.type == ConfigType::Int || field.type == ConfigType::Int64) {
                    EXPECT_LE(field.min, field.max);
                    if (field.type == ConfigType::Int) {
                        EXPECT_LE(field.max, INT_MAX);
                    }
                }
                if (field.required) continue;  // its default is no value
                const std::string text =
                    YAML::Load(formatConfigValue(field.default_value)).Scalar();
                const ConfigParse parsed = parseConfigScalar(field, text);
                ASSERT_TRUE(parsed.value.has_value()) << parsed.error;
                EXPECT_EQ(*parsed.value, field.default_value);
            }
        } else if (key.type != ConfigType::StringList) {
            // As YAML reads it: a quoted default ("" for an empty string) loses its quotes.
            const std::string text = YAML::Load(formatConfigValue(key.default_value)).Scalar();
            const ConfigParse parsed = parseConfigScalar(key, text);
            ASSERT_TRUE(parsed.value.has_value()) << parsed.error;
            EXPECT_EQ(*parsed.value, key.default_value);
        } else {
            for (const std::string& entry : std::get<std::vector<std::string>>(key.default_value)) {
                const ConfigParse parsed = parseConfigScalar(key, entry);
                EXPECT_TRUE(parsed.value.has_value()) << entry << ": " << parsed.error;
            }
        }
        if (key.type == ConfigType::Int || key.type == ConfigType::Int64) {
            EXPECT_LE(key.min, key.max);
            EXPECT_GE(key.min, key.zero_allowed ? 1 : LLONG_MIN);
            if (key.type == ConfigType::Int) {
                EXPECT_LE(key.max, INT_MAX);
                EXPECT_GE(key.min, INT_MIN);
            }
        }
        if (key.type == ConfigType::Enum) {
            EXPECT_GE(key.allowed.size(), 2u);
        }
    }
}

TEST(ConfigSchemaTest, StoreAndReadRoundTrip) {
    Config config;
    const ConfigKey* port = findConfigKey("listen.port");
    ASSERT_NE(port, nullptr);
    port->store(config, ConfigValue{int64_t{9999}});
    EXPECT_EQ(config.listen.port, 9999);
    EXPECT_EQ(port->read(config), ConfigValue{int64_t{9999}});

    const ConfigKey* policy = findConfigKey("limits.slow_consumer");
    ASSERT_NE(policy, nullptr);
    policy->store(config, ConfigValue{std::string("drop_oldest")});
    EXPECT_EQ(config.limits.slow_consumer, SlowConsumerPolicy::DropOldest);
    EXPECT_EQ(policy->read(config), ConfigValue{std::string("drop_oldest")});

    EXPECT_EQ(findConfigKey("listen"), nullptr);
    EXPECT_EQ(findConfigKey("nope"), nullptr);
}

TEST(ConfigSchemaTest, EnvNames) {
    EXPECT_EQ(findConfigKey("listen.port")->envName(), "WSRELAY_LISTEN_PORT");
    EXPECT_EQ(findConfigKey("websocket.max_message_bytes")->envName(),
              "WSRELAY_WEBSOCKET_MAX_MESSAGE_BYTES");
    EXPECT_EQ(findConfigKey("workers")->envName(), "WSRELAY_WORKERS");
}

TEST(ConfigSchemaTest, TypesFollowTheFields) {
    EXPECT_EQ(findConfigKey("listen.port")->type, ConfigType::Int);
    EXPECT_EQ(findConfigKey("websocket.max_message_bytes")->type, ConfigType::Int64);
    EXPECT_EQ(findConfigKey("listen.host")->type, ConfigType::String);
    EXPECT_EQ(findConfigKey("websocket.allowed_origins")->type, ConfigType::StringList);
    EXPECT_EQ(findConfigKey("log.level")->type, ConfigType::Enum);
}

TEST(ConfigSchemaTest, FormatsValuesAsYaml) {
    EXPECT_EQ(formatConfigValue(ConfigValue{int64_t{8080}}), "8080");
    EXPECT_EQ(formatConfigValue(ConfigValue{true}), "true");
    EXPECT_EQ(formatConfigValue(ConfigValue{std::string("/ws")}), "/ws");
    EXPECT_EQ(formatConfigValue(ConfigValue{std::string("")}), "\"\"");
    EXPECT_EQ(formatConfigValue(ConfigValue{std::string("*")}), "\"*\"");
    EXPECT_EQ(formatConfigValue(ConfigValue{std::vector<std::string>{}}), "[]");
    EXPECT_EQ(
        formatConfigValue(ConfigValue{std::vector<std::string>{"https://a.example.com", "*"}}),
        "[https://a.example.com, \"*\"]");
}

TEST(ConfigSchemaTest, Ranges) {
    EXPECT_EQ(configRange(*findConfigKey("listen.port")), "1..65535");
    EXPECT_EQ(configRange(*findConfigKey("websocket.ping_interval_ms")), "0 or 1000..3600000");
    EXPECT_EQ(configRange(*findConfigKey("limits.slow_consumer")), "close, drop_oldest");
    EXPECT_EQ(configRange(*findConfigKey("log.level")), "debug, info, warn, error");
    EXPECT_EQ(configRange(*findConfigKey("websocket.path")), "starts with /");
}

TEST(ConfigSchemaTest, ParsesBooleans) {
    // No key is a bool today; the type is part of the schema all the same.
    ConfigKey flag;
    flag.path = "test.flag";
    flag.type = ConfigType::Bool;
    for (const char* yes : {"true", "True", "yes", "on", "1"}) {
        EXPECT_EQ(parseConfigScalar(flag, yes).value, ConfigValue{true}) << yes;
    }
    for (const char* no : {"false", "FALSE", "no", "off", "0"}) {
        EXPECT_EQ(parseConfigScalar(flag, no).value, ConfigValue{false}) << no;
    }
    const ConfigParse bad = parseConfigScalar(flag, "maybe");
    EXPECT_FALSE(bad.value.has_value());
    EXPECT_EQ(bad.error, "cannot convert 'maybe' to a boolean (use true or false)");
}

TEST(ConfigSchemaTest, ParsesIntegers) {
    const ConfigKey& port = *findConfigKey("listen.port");
    EXPECT_EQ(parseConfigScalar(port, "+443").value, ConfigValue{int64_t{443}});
    EXPECT_EQ(parseConfigScalar(port, "").error, "cannot convert '' to an integer");
    EXPECT_EQ(parseConfigScalar(port, "80x").error, "cannot convert '80x' to an integer");
    EXPECT_EQ(parseConfigScalar(port, "8.5").error, "cannot convert '8.5' to an integer");
    EXPECT_EQ(parseConfigScalar(port, "0x50").error, "cannot convert '0x50' to an integer");
    EXPECT_EQ(parseConfigScalar(port, "-1").error, "'-1' is out of range (allowed: 1..65535)");
    EXPECT_EQ(parseConfigScalar(port, "99999999999999999999").error,
              "'99999999999999999999' is out of range (allowed: 1..65535)");
    EXPECT_EQ(parseConfigScalar(port, "99999999999999999999x").error,
              "cannot convert '99999999999999999999x' to an integer");
}

TEST(ConfigSchemaTest, LongValuesAreCutInMessages) {
    const std::string huge(1000, '9');
    const std::string error = parseConfigScalar(*findConfigKey("listen.port"), huge).error;
    EXPECT_EQ(error, "'" + std::string(64, '9') + "...' is out of range (allowed: 1..65535)");
}

// --- Files ---

TEST(ConfigLoaderTest, GoodFileSetsEveryKey) {
    const ConfigLoad load = loadYaml(R"(
listen:
  host: 127.0.0.1
  port: 9001
workers: 4
websocket:
  path: /relay
  max_message_bytes: 1048576
  ping_interval_ms: 0
  pong_timeout_ms: 5000
  allowed_origins:
    - https://app.example.com
    - "http://localhost:3000"
  rx_buffer_bytes: 4096
limits:
  max_connections: 50000
  send_queue_bytes: 4194304
  send_queue_messages: 64
  slow_consumer: drop_oldest
  max_subscriptions: 16
  max_channel_bytes: 64
  max_bad_commands: 3
drain:
  window_ms: 0
broker:
  type: redis
log:
  level: debug
)");
    ASSERT_TRUE(load.ok()) << ::testing::PrintToString(errorStrings(load));
    EXPECT_THAT(load.warnings, IsEmpty());
    const Config& c = load.config;
    EXPECT_EQ(c.listen.host, "127.0.0.1");
    EXPECT_EQ(c.listen.port, 9001);
    EXPECT_EQ(c.workers, 4);
    EXPECT_EQ(c.websocket.path, "/relay");
    EXPECT_EQ(c.websocket.max_message_bytes, 1048576);
    EXPECT_EQ(c.websocket.ping_interval_ms, 0);
    EXPECT_EQ(c.websocket.pong_timeout_ms, 5000);
    EXPECT_THAT(c.websocket.allowed_origins,
                ElementsAre("https://app.example.com", "http://localhost:3000"));
    EXPECT_EQ(c.websocket.rx_buffer_bytes, 4096);
    EXPECT_EQ(c.limits.max_connections, 50000);
    EXPECT_EQ(c.limits.send_queue_bytes, 4194304);
    EXPECT_EQ(c.limits.send_queue_messages, 64);
    EXPECT_EQ(c.limits.slow_consumer, SlowConsumerPolicy::DropOldest);
    EXPECT_EQ(c.limits.max_subscriptions, 16);
    EXPECT_EQ(c.limits.max_channel_bytes, 64);
    EXPECT_EQ(c.limits.max_bad_commands, 3);
    EXPECT_EQ(c.drain.window_ms, 0);
    EXPECT_EQ(c.broker.type, BrokerType::Redis);
    EXPECT_EQ(c.log.level, LogLevel::Debug);
}

TEST(ConfigLoaderTest, EmptyFileIsAllDefaults) {
    for (const char* text : {"", "\n\n", "# only a comment\n", "---\n", "{}\n"}) {
        const ConfigLoad load = loadYaml(text);
        EXPECT_TRUE(load.ok()) << text;
        expectSameConfig(load.config, Config{});
    }
}

TEST(ConfigLoaderTest, MissingAndEmptySectionsKeepDefaults) {
    const ConfigLoad load = loadYaml("listen:\n  port: 9000\nlimits:\nlog: {}\n");
    ASSERT_TRUE(load.ok()) << ::testing::PrintToString(errorStrings(load));
    Config want;
    want.listen.port = 9000;
    expectSameConfig(load.config, want);
}

TEST(ConfigLoaderTest, FlowStyleWorks) {
    const ConfigLoad load =
        loadYaml("websocket: {path: /x, allowed_origins: [\"*\"]}\nlog: {level: WARN}\n");
    ASSERT_TRUE(load.ok()) << ::testing::PrintToString(errorStrings(load));
    EXPECT_EQ(load.config.websocket.path, "/x");
    EXPECT_THAT(load.config.websocket.allowed_origins, ElementsAre("*"));
    EXPECT_EQ(load.config.log.level, LogLevel::Warn);
}

TEST(ConfigLoaderTest, CannotConvertHasExactPosition) {
    const ConfigLoad load = loadYaml("# comment\nlisten:\n  port:    eighty\n");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:3:12: listen.port: cannot convert 'eighty' to an integer"));
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_EQ(load.errors[0].source, "cfg.yaml");
    EXPECT_EQ(load.errors[0].line, 3);
    EXPECT_EQ(load.errors[0].column, 12);
    EXPECT_EQ(load.errors[0].key, "listen.port");
    EXPECT_EQ(load.errors[0].message, "cannot convert 'eighty' to an integer");
    EXPECT_EQ(load.config.listen.port, 8080);  // a bad value leaves the default
}

TEST(ConfigLoaderTest, UnknownTopLevelKey) {
    const ConfigLoad load = loadYaml("listen:\n  port: 80\nlisten_port: 80\n");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:3:1: listen_port: unknown key (did you mean "
                            "'listen.port'?)"));
    EXPECT_THAT(errorStrings(loadYaml("compression: true\n")),
                ElementsAre("cfg.yaml:1:1: compression: unknown key"));
}

TEST(ConfigLoaderTest, UnknownNestedKeySuggestsTheClosest) {
    const ConfigLoad load = loadYaml("websocket:\n  path: /ws\n  max_msg_bytes: 10\n");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:3:3: websocket.max_msg_bytes: unknown key (did you mean "
                            "'websocket.max_message_bytes'?)"));
}

TEST(ConfigLoaderTest, UnknownSectionAndKeyUnderLeaf) {
    // (tls was the unknown section here until it became the wss:// section.)
    const ConfigLoad load = loadYaml("tracing:\n  cert: x\nlisten:\n  port:\n    number: 80\n");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:1:1: tracing: unknown key",
                            "cfg.yaml:5:5: listen.port: expected an integer, got a mapping"));
}

TEST(ConfigLoaderTest, DottedKeysAreRejected) {
    const ConfigLoad load = loadYaml("listen.port: 80\n");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:1:1: listen.port: unknown key (keys are nested mappings, "
                            "not dotted)"));
    EXPECT_EQ(load.config.listen.port, 8080);
}

TEST(ConfigLoaderTest, WrongTypes) {
    const ConfigLoad load = loadYaml(R"(listen:
  port: [1, 2]
  host: {a: b}
websocket:
  allowed_origins: https://app.example.com
log:
  level: [info]
limits: 5
)");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:2:9: listen.port: expected an integer, got a list",
                            "cfg.yaml:3:9: listen.host: expected a string, got a mapping",
                            "cfg.yaml:5:20: websocket.allowed_origins: expected a list of "
                            "strings, got a scalar",
                            "cfg.yaml:7:10: log.level: expected one of: debug, info, warn, "
                            "error, got a list",
                            "cfg.yaml:8:9: limits: expected a mapping of keys, got a scalar"));
}

TEST(ConfigLoaderTest, TopLevelMustBeAMapping) {
    EXPECT_THAT(errorStrings(loadYaml("just a string\n")),
                ElementsAre("cfg.yaml:1:1: expected a mapping of keys, got a scalar"));
    EXPECT_THAT(errorStrings(loadYaml("- a\n- b\n")),
                ElementsAre("cfg.yaml:1:1: expected a mapping of keys, got a list"));
}

TEST(ConfigLoaderTest, OutOfRange) {
    const ConfigLoad load = loadYaml(R"(listen:
  port: 70000
workers: -1
websocket:
  ping_interval_ms: 500
  max_message_bytes: 99999999999999999999
)");
    EXPECT_THAT(
        errorStrings(load),
        ElementsAre(
            "cfg.yaml:2:9: listen.port: '70000' is out of range (allowed: 1..65535)",
            "cfg.yaml:3:10: workers: '-1' is out of range (allowed: 0..64)",
            "cfg.yaml:5:21: websocket.ping_interval_ms: '500' is out of range (allowed: 0 or "
            "1000..3600000)",
            "cfg.yaml:6:22: websocket.max_message_bytes: '99999999999999999999' is out of range "
            "(allowed: 128..16777216)"));
}

TEST(ConfigLoaderTest, RangeEdgesAreAccepted) {
    const ConfigLoad load = loadYaml(R"(listen: {port: 65535}
workers: 64
websocket: {ping_interval_ms: 1000, max_message_bytes: 16777216, rx_buffer_bytes: 128}
limits: {send_queue_bytes: 1073741824, max_connections: 10000000}
)");
    ASSERT_TRUE(load.ok()) << ::testing::PrintToString(errorStrings(load));
    EXPECT_EQ(load.config.listen.port, 65535);
    EXPECT_EQ(load.config.websocket.max_message_bytes, 16777216);
    EXPECT_EQ(load.config.limits.send_queue_bytes, 1073741824);
}

TEST(ConfigLoaderTest, InternalPortIsOffOrAPort) {
    EXPECT_EQ(loadYaml("").config.listen.internal_port, 0);
    EXPECT_EQ(loadYaml("listen: {internal_port: 1}\n").config.listen.internal_port, 1);
    EXPECT_EQ(loadYaml("listen: {internal_port: 65535}\n").config.listen.internal_port, 65535);
    EXPECT_TRUE(loadYaml("listen: {internal_port: 0}\n").ok());
    EXPECT_THAT(errorStrings(loadYaml("listen:\n  internal_port: 65536\n")),
                ElementsAre("cfg.yaml:2:18: listen.internal_port: '65536' is out of range "
                            "(allowed: 0 or 1..65535)"));
    EXPECT_THAT(errorStrings(loadYaml("listen:\n  internal_port: -1\n")),
                ElementsAre(HasSubstr("cfg.yaml:2:18: listen.internal_port: '-1' is out of")));
    EXPECT_EQ(
        loadDefaultConfig({{"WSRELAY_LISTEN_INTERNAL_PORT", "9090"}}).config.listen.internal_port,
        9090);
}

TEST(ConfigLoaderTest, BadEnum) {
    const ConfigLoad load = loadYaml("limits:\n  slow_consumer: fast\nbroker: {type: kafka}\n");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:2:18: limits.slow_consumer: 'fast' is not one of: close, "
                            "drop_oldest",
                            "cfg.yaml:3:16: broker.type: 'kafka' is not one of: memory, redis"));
}

TEST(ConfigLoaderTest, EnumsAreCaseInsensitive) {
    const ConfigLoad load =
        loadYaml("limits:\n  slow_consumer: Drop_Oldest\nlog:\n  level: ERROR\n");
    ASSERT_TRUE(load.ok()) << ::testing::PrintToString(errorStrings(load));
    EXPECT_EQ(load.config.limits.slow_consumer, SlowConsumerPolicy::DropOldest);
    EXPECT_EQ(load.config.log.level, LogLevel::Error);
}

TEST(ConfigLoaderTest, SyntaxError) {
    const ConfigLoad load = loadYaml("listen:\n  port: 80\n  host: \"unterminated");
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_EQ(load.errors[0].line, 3);
    EXPECT_EQ(load.errors[0].column, 22);
    EXPECT_EQ(load.errors[0].key, "");
    EXPECT_EQ(load.errors[0].toString(), "cfg.yaml:3:22: syntax error: illegal EOF in scalar");

    EXPECT_THAT(errorStrings(loadYaml("listen:\n  port: 80\n host: x\n")),
                ElementsAre("cfg.yaml:3:2: syntax error: end of map not found"));
    EXPECT_THAT(errorStrings(loadYaml("websocket:\n  allowed_origins: [*]\n")),
                ElementsAre("cfg.yaml:2:22: syntax error: alias not found after *"));
}

TEST(ConfigLoaderTest, SyntaxErrorStillReportsEnvironmentErrors) {
    const ConfigLoad load = loadYaml("a: b: c\n", {{"WSRELAY_LISTEN_PORT", "x"}});
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:1:5: syntax error: illegal map value",
                            "env WSRELAY_LISTEN_PORT: cannot convert 'x' to an integer"));
}

TEST(ConfigLoaderTest, NullValueIsAnErrorAtTheKey) {
    const ConfigLoad load = loadYaml("listen:\n  port:\n  host: ~\nworkers: null\n");
    EXPECT_THAT(
        errorStrings(load),
        ElementsAre(
            "cfg.yaml:2:3: listen.port: value is null (remove the key to use the default, 8080)",
            "cfg.yaml:3:3: listen.host: value is null (remove the key to use the default, "
            "0.0.0.0)",
            "cfg.yaml:4:1: workers: value is null (remove the key to use the default, 0)"));
    // A quoted "null" is a string, not a null.
    EXPECT_THAT(errorStrings(loadYaml("listen:\n  host: 'null'\n")), IsEmpty());
}

TEST(ConfigLoaderTest, DuplicateKey) {
    const ConfigLoad load = loadYaml("listen:\n  port: 1\n  port: 2\n");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:3:3: listen.port: duplicate key (first at line 2)"));
    EXPECT_EQ(load.config.listen.port, 1);
}

TEST(ConfigLoaderTest, OnlyOneDocument) {
    EXPECT_THAT(errorStrings(loadYaml("workers: 1\n---\nworkers: 2\n")),
                ElementsAre("cfg.yaml:3:1: only one YAML document is allowed"));
}

// yaml-cpp 0.7's LoadAll() loops forever on a document followed by a token that starts no node,
// such as a ',' outside [ ] and { } (conf/config_loader.cc): refused with its position instead.
TEST(ConfigLoaderTest, AStrayCommaIsRefusedNotLoopedOn) {
    std::ifstream in(WSRELAY_SOURCE_DIR "/conf/wsrelay.sample.yaml");
    const std::string sample((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    ASSERT_FALSE(sample.empty());
    const std::string comma =
        "cfg.yaml:1:1: syntax error: unexpected ',' (a comma separates entries only inside [ ] "
        "or { })";
    EXPECT_THAT(errorStrings(loadYaml("," + sample)), ElementsAre(comma));
    EXPECT_THAT(errorStrings(loadYaml(",")), ElementsAre(comma));
    EXPECT_THAT(errorStrings(loadYaml("\xEF\xBB\xBF,")), ElementsAre(comma));  // after a BOM
    EXPECT_THAT(errorStrings(loadYaml("# a comment\n  , workers: 1\n")),
                ElementsAre(HasSubstr("cfg.yaml:2:3: syntax error: unexpected ','")));
    EXPECT_THAT(errorStrings(loadYaml("- a\n,\n")),
                ElementsAre(HasSubstr("cfg.yaml:2:1: syntax error: unexpected ','")));
    EXPECT_THAT(errorStrings(loadYaml("\"workers\",")),
                ElementsAre(HasSubstr("cfg.yaml:1:10: syntax error: unexpected ','")));
    EXPECT_THAT(errorStrings(loadYaml("!tag x\n? ")),
                ElementsAre("cfg.yaml:2:1: syntax error: unexpected '?' after the document"));
    // A comma where yaml-cpp reads it as text or reports it is left to yaml-cpp.
    EXPECT_THAT(errorStrings(loadYaml("websocket:\n  path: /a,b\n")), IsEmpty());
    EXPECT_THAT(errorStrings(loadYaml("websocket: {path: /ws,}\n")), IsEmpty());
    EXPECT_THAT(errorStrings(loadYaml("workers: 1\n,\n")),
                ElementsAre(HasSubstr("cfg.yaml:2:1: syntax error: end of map not found")));
}

TEST(ConfigLoaderTest, NestingTooDeepSaysSo) {
    EXPECT_THAT(errorStrings(loadYaml("listen: " + std::string(600, '['))),
                ElementsAre(HasSubstr(
                    "syntax error: nested too deeply (yaml-cpp reads 500 levels at most)")));
}

TEST(ConfigLoaderTest, NonScalarKey) {
    EXPECT_THAT(errorStrings(loadYaml("listen:\n  ? [a]\n  : 1\n")),
                ElementsAre("cfg.yaml:2:5: listen: keys must be plain strings, got a list"));
}

TEST(ConfigLoaderTest, CollectsEveryErrorInOnePass) {
    const ConfigLoad load = loadYaml(R"(listen:
  port: eighty
  hots: 0.0.0.0
websocket:
  path: ws
  pong_timeout_ms: 1
limits:
  slow_consumer: never
log:
  level:
)");
    EXPECT_THAT(
        errorStrings(load),
        ElementsAre("cfg.yaml:2:9: listen.port: cannot convert 'eighty' to an integer",
                    "cfg.yaml:3:3: listen.hots: unknown key (did you mean 'listen.host'?)",
                    "cfg.yaml:5:9: websocket.path: 'ws' must start with '/'",
                    "cfg.yaml:6:20: websocket.pong_timeout_ms: '1' is out of range (allowed: "
                    "100..600000)",
                    "cfg.yaml:8:18: limits.slow_consumer: 'never' is not one of: close, "
                    "drop_oldest",
                    "cfg.yaml:10:3: log.level: value is null (remove the key to use the "
                    "default, info)"));
}

TEST(ConfigLoaderTest, AllowedOrigins) {
    const ConfigLoad load = loadYaml(R"(websocket:
  allowed_origins:
    - https://app.example.com/
    - HTTPS://APP.EXAMPLE.COM
    - app.example.com
    - "null"
    - {a: b}
    -
    - chrome-extension://abcdef
)");
    EXPECT_THAT(
        errorStrings(load),
        ElementsAre("cfg.yaml:3:7: websocket.allowed_origins: 'https://app.example.com/' is not "
                    "an origin (expected * or scheme://host[:port], no path)",
                    "cfg.yaml:4:7: websocket.allowed_origins: 'HTTPS://APP.EXAMPLE.COM' is not "
                    "an origin (expected * or scheme://host[:port], no path)",
                    "cfg.yaml:5:7: websocket.allowed_origins: 'app.example.com' is not an "
                    "origin (expected * or scheme://host[:port])",
                    "cfg.yaml:6:7: websocket.allowed_origins: 'null' is not an origin "
                    "(expected * or scheme://host[:port])",
                    "cfg.yaml:7:7: websocket.allowed_origins: list entry 5: expected a string, "
                    "got a mapping",
                    "cfg.yaml:2:3: websocket.allowed_origins: list entry 6: expected a string, "
                    "got a null"));
    EXPECT_TRUE(load.config.websocket.allowed_origins.empty());  // not half-applied

    EXPECT_THAT(errorStrings(loadYaml("websocket:\n  allowed_origins: [\"https://App.com\"]\n")),
                ElementsAre("cfg.yaml:2:21: websocket.allowed_origins: 'https://App.com' must be "
                            "lower case, as browsers send it"));
    const ConfigLoad empty = loadYaml("websocket:\n  allowed_origins: []\n");
    EXPECT_TRUE(empty.ok());
    EXPECT_TRUE(empty.config.websocket.allowed_origins.empty());
}

TEST(ConfigLoaderTest, StringChecks) {
    EXPECT_THAT(errorStrings(loadYaml("websocket:\n  path: \"/ws?x=1\"\nlisten:\n  host: ''\n")),
                ElementsAre("cfg.yaml:2:9: websocket.path: '/ws?x=1' must be a plain path (no "
                            "whitespace, '?' or '#')",
                            "cfg.yaml:4:9: listen.host: must not be empty"));
}

// --- Environment ---

TEST(ConfigLoaderTest, EnvironmentOverridesTheFile) {
    const Environment env = {
        {"WSRELAY_LISTEN_PORT", "9100"},
        {"WSRELAY_LIMITS_SLOW_CONSUMER", "drop_oldest"},
        {"WSRELAY_WEBSOCKET_ALLOWED_ORIGINS", " https://a.example.com , https://b.example.com"},
        {"WSRELAY_WEBSOCKET_MAX_MESSAGE_BYTES", " 131072 "},
        {"WSRELAY_LOG_LEVEL", "WARN"},
    };
    const ConfigLoad load = loadYaml(
        "listen:\n  port: 9000\n  host: 127.0.0.1\nlimits:\n  slow_consumer: close\n", env);
    ASSERT_TRUE(load.ok()) << ::testing::PrintToString(errorStrings(load));
    EXPECT_THAT(load.warnings, IsEmpty());
    EXPECT_EQ(load.config.listen.port, 9100);
    EXPECT_EQ(load.config.listen.host, "127.0.0.1");  // from the file
    EXPECT_EQ(load.config.limits.slow_consumer, SlowConsumerPolicy::DropOldest);
    EXPECT_THAT(load.config.websocket.allowed_origins,
                ElementsAre("https://a.example.com", "https://b.example.com"));
    EXPECT_EQ(load.config.websocket.max_message_bytes, 131072);
    EXPECT_EQ(load.config.log.level, LogLevel::Warn);
}

TEST(ConfigLoaderTest, EmptyEnvironmentListClearsTheFileList) {
    const ConfigLoad load = loadYaml("websocket:\n  allowed_origins: [\"https://a.example.com\"]\n",
                                     {{"WSRELAY_WEBSOCKET_ALLOWED_ORIGINS", ""}});
    ASSERT_TRUE(load.ok());
    EXPECT_TRUE(load.config.websocket.allowed_origins.empty());
}

TEST(ConfigLoaderTest, EnvironmentErrors) {
    const Environment env = {
        {"WSRELAY_LISTEN_PORT", "x"},
        {"WSRELAY_LIMITS_SLOW_CONSUMER", "fast"},
        {"WSRELAY_WEBSOCKET_ALLOWED_ORIGINS", "https://a.example.com,,https://b.example.com"},
        {"WSRELAY_WORKERS", "65"},
    };
    const ConfigLoad load = loadDefaultConfig(env);
    // std::map order: by variable name.
    EXPECT_THAT(
        errorStrings(load),
        ElementsAre("env WSRELAY_LIMITS_SLOW_CONSUMER: 'fast' is not one of: close, drop_oldest",
                    "env WSRELAY_LISTEN_PORT: cannot convert 'x' to an integer",
                    "env WSRELAY_WEBSOCKET_ALLOWED_ORIGINS: empty entry in the comma-separated "
                    "list",
                    "env WSRELAY_WORKERS: '65' is out of range (allowed: 0..64)"));
    ASSERT_EQ(load.errors.size(), 4u);
    EXPECT_EQ(load.errors[1].source, "env WSRELAY_LISTEN_PORT");
    EXPECT_EQ(load.errors[1].key, "listen.port");
    EXPECT_EQ(load.errors[1].line, 0);
    expectSameConfig(load.config, Config{});
}

TEST(ConfigLoaderTest, EnvironmentListEntriesAreChecked) {
    const ConfigLoad load =
        loadDefaultConfig({{"WSRELAY_WEBSOCKET_ALLOWED_ORIGINS", "https://a.example.com,nope"}});
    EXPECT_THAT(errorStrings(load),
                ElementsAre("env WSRELAY_WEBSOCKET_ALLOWED_ORIGINS: 'nope' is not an origin "
                            "(expected * or scheme://host[:port])"));
    EXPECT_TRUE(load.config.websocket.allowed_origins.empty());
}

TEST(ConfigLoaderTest, UnknownWsrelayVariablesAreWarningsOnly) {
    // What Kubernetes injects for a Service named wsrelay.
    const Environment env = {
        {"WSRELAY_PORT", "tcp://10.0.0.7:8080"},
        {"WSRELAY_PORT_8080_TCP", "tcp://10.0.0.7:8080"},
        {"WSRELAY_SERVICE_HOST", "10.0.0.7"},
        {"WSRELAY_SERVICE_PORT", "8080"},
        {"HOME", "/root"},
        {"wsrelay_listen_port", "1"},
        {"WSRELAY_LISTEN_PORT", "9000"},
    };
    const ConfigLoad load = loadDefaultConfig(env);
    EXPECT_TRUE(load.ok()) << ::testing::PrintToString(errorStrings(load));
    EXPECT_THAT(load.warnings,
                ElementsAre("env WSRELAY_PORT: not a configuration key; ignored",
                            "env WSRELAY_PORT_8080_TCP: not a configuration key; ignored",
                            "env WSRELAY_SERVICE_HOST: not a configuration key; ignored",
                            "env WSRELAY_SERVICE_PORT: not a configuration key; ignored"));
    EXPECT_EQ(load.config.listen.port, 9000);
}

TEST(ConfigLoaderTest, ProcessEnvironmentReadsEnviron) {
    ASSERT_EQ(::setenv("WSRELAY_TEST_ONLY_VARIABLE", "a=b", 1), 0);
    const Environment env = processEnvironment();
    ::unsetenv("WSRELAY_TEST_ONLY_VARIABLE");
    const auto it = env.find("WSRELAY_TEST_ONLY_VARIABLE");
    ASSERT_NE(it, env.end());
    EXPECT_EQ(it->second, "a=b");
}

// --- Lists of entries: channels ---

TEST(ConfigChannelsTest, EntriesLoadInOrderWithTheirFieldsDefaults) {
    const ConfigLoad load = loadYaml(R"(channels:
  - pattern: "chat:lobby"
    history_size: 1000
  - pattern: "chat:*"
    history_size: 100
    history_ttl_ms: 3600000
  - {pattern: "*"}
)");
    ASSERT_TRUE(load.ok()) << ::testing::PrintToString(errorStrings(load));
    const Config::Channel defaults;
    ASSERT_EQ(load.config.channels.size(), 3u);
    EXPECT_EQ(load.config.channels[0],
              (Config::Channel{"chat:lobby", 1000, defaults.history_ttl_ms}));
    EXPECT_EQ(load.config.channels[1], (Config::Channel{"chat:*", 100, 3600000}));
    EXPECT_EQ(load.config.channels[2], (Config::Channel{"*", 0, defaults.history_ttl_ms}));
    const ConfigKey& key = *findConfigKey("channels");
    EXPECT_EQ(key.type, ConfigType::EntryList);
    EXPECT_EQ(formatConfigValue(key.read(load.config)),
              "[{pattern: chat:lobby, history_size: 1000, history_ttl_ms: 600000, presence: false, "
              "join_leave: false}, "
              "{pattern: chat:*, history_size: 100, history_ttl_ms: 3600000, presence: false, "
              "join_leave: false}, "
              "{pattern: \"*\", history_size: 0, history_ttl_ms: 600000, presence: false, "
              "join_leave: false}]");
    EXPECT_EQ(configRange(key), "{pattern, history_size, history_ttl_ms, presence, join_leave}");
    EXPECT_EQ(configTypeName(key.type), "entry list");
}

TEST(ConfigChannelsTest, AnEmptyListIsNoEntries) {
    for (const char* text : {"channels: []\n", "channels: [ ]\n"}) {
        const ConfigLoad load = loadYaml(text);
        EXPECT_TRUE(load.ok()) << text;
        EXPECT_TRUE(load.config.channels.empty()) << text;
    }
    EXPECT_THAT(errorStrings(loadYaml("channels:\n")),
                ElementsAre("cfg.yaml:1:1: channels: value is null (remove the key to use the "
                            "default, [])"));
}

TEST(ConfigChannelsTest, FieldBounds) {
    EXPECT_TRUE(loadYaml("channels: [{pattern: a, history_size: 0, history_ttl_ms: 1000},"
                         " {pattern: b, history_size: 100000, history_ttl_ms: 2592000000}]\n")
                    .ok());
    EXPECT_THAT(
        errorStrings(loadYaml("channels:\n"
                              "  - {pattern: a, history_size: 100001}\n"
                              "  - {pattern: b, history_size: -1}\n"
                              "  - {pattern: c, history_ttl_ms: 999}\n"
                              "  - {pattern: d, history_ttl_ms: 2592000001}\n")),
        ElementsAre("cfg.yaml:2:32: channels: entry 1: history_size: '100001' is out of range "
                    "(allowed: 0..100000)",
                    "cfg.yaml:3:32: channels: entry 2: history_size: '-1' is out of range "
                    "(allowed: 0..100000)",
                    "cfg.yaml:4:34: channels: entry 3: history_ttl_ms: '999' is out of range "
                    "(allowed: 1000..2592000000)",
                    "cfg.yaml:5:34: channels: entry 4: history_ttl_ms: '2592000001' is out of "
                    "range (allowed: 1000..2592000000)"));
}

TEST(ConfigChannelsTest, Patterns) {
    for (const char* good : {"chat", "chat:*", "*", "a.b-c_d:e/f@g=h+i,j#k!l~m$n", "x*"}) {
        const ConfigLoad load = loadYaml("channels: [{pattern: \"" + std::string(good) + "\"}]\n");
        EXPECT_TRUE(load.ok()) << good << ::testing::PrintToString(errorStrings(load));
    }
    const std::string why =
        " is not a channel name, or one followed by a single * (channel characters: letters, "
        "digits and _-:./@=+,#!~$)";
    const ConfigLoad load = loadYaml(R"(channels:
  - pattern: "chat:*:x"
  - pattern: "chat:**"
  - pattern: "*chat"
  - pattern: "{sub}:*"
  - pattern: "chat room"
  - pattern: ""
)");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:2:14: channels: entry 1: pattern: 'chat:*:x'" + why,
                            "cfg.yaml:3:14: channels: entry 2: pattern: 'chat:**'" + why,
                            "cfg.yaml:4:14: channels: entry 3: pattern: '*chat'" + why,
                            "cfg.yaml:5:14: channels: entry 4: pattern: '{sub}:*'" + why,
                            "cfg.yaml:6:14: channels: entry 5: pattern: 'chat room'" + why,
                            "cfg.yaml:7:14: channels: entry 6: pattern: must not be empty"));
    EXPECT_TRUE(load.config.channels.empty());  // not half-applied
}

TEST(ConfigChannelsTest, EntryErrorsSayWhichEntryAndWhere) {
    const ConfigLoad load = loadYaml(R"(channels:
  - pattern: "a:*"
    histroy_size: 10
  - pattern: b
    history_size: [10]
  - history_size: 10
  - pattern: c
    history_size:
  - plain
  -
  - pattern: d
    pattern: e
  - pattern: f
    ttl: 5
  - {pattern: {x: 1}}
)");
    EXPECT_THAT(
        errorStrings(load),
        ElementsAre(
            "cfg.yaml:3:5: channels: entry 1: unknown field 'histroy_size' (did you mean "
            "'history_size'?)",
            "cfg.yaml:5:19: channels: entry 2: history_size: expected an integer, got a list",
            "cfg.yaml:6:5: channels: entry 3: no pattern (every entry needs one)",
            "cfg.yaml:8:5: channels: entry 4: history_size: value is null (remove the field to "
            "use the default, 0)",
            "cfg.yaml:9:5: channels: entry 5: expected a mapping of fields {pattern, "
            "history_size, history_ttl_ms, presence, join_leave}, got a scalar",
            "cfg.yaml:1:1: channels: entry 6: expected a mapping of fields {pattern, "
            "history_size, history_ttl_ms, presence, join_leave}, got a null",
            "cfg.yaml:12:5: channels: entry 7: pattern: duplicate field (first at line 11)",
            "cfg.yaml:14:5: channels: entry 8: unknown field 'ttl' (an entry has pattern, "
            "history_size, history_ttl_ms, presence, join_leave)",
            "cfg.yaml:15:15: channels: entry 9: pattern: expected a string, got a mapping"));
    EXPECT_TRUE(load.config.channels.empty());
}

TEST(ConfigChannelsTest, APatternTwiceIsRefusedAtTheSecond) {
    const ConfigLoad load = loadYaml(R"(channels:
  - pattern: "chat:*"
    history_size: 10
  - pattern: news
  - pattern: "chat:*"
    history_size: 20
)");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:5:14: channels: entry 3: pattern: 'chat:*' is the pattern of "
                            "entry 1 already (line 2)"));
    EXPECT_TRUE(load.config.channels.empty());
}

TEST(ConfigChannelsTest, NotAListOfEntries) {
    EXPECT_THAT(errorStrings(loadYaml("channels: \"chat:*\"\n")),
                ElementsAre("cfg.yaml:1:11: channels: expected a list of entries {pattern, "
                            "history_size, history_ttl_ms, presence, join_leave}, got a scalar"));
    EXPECT_THAT(errorStrings(loadYaml("channels:\n  pattern: a\n")),
                ElementsAre("cfg.yaml:2:3: channels: expected a list of entries {pattern, "
                            "history_size, history_ttl_ms, presence, join_leave}, got a mapping"));
    EXPECT_THAT(errorStrings(loadYaml("channel:\n  - pattern: a\n")),
                ElementsAre("cfg.yaml:1:1: channel: unknown key (did you mean 'channels'?)"));
}

TEST(ConfigChannelsTest, TheEnvironmentHoldsTheWholeListAsYaml) {
    const ConfigLoad load = loadYaml(
        "channels:\n  - pattern: news\n",
        {{"WSRELAY_CHANNELS",
          R"( [{pattern: "chat:*", history_size: 100}, {pattern: "x", history_ttl_ms: 5000}])"}});
    ASSERT_TRUE(load.ok()) << ::testing::PrintToString(errorStrings(load));
    ASSERT_EQ(load.config.channels.size(), 2u);
    EXPECT_EQ(load.config.channels[0], (Config::Channel{"chat:*", 100, 600000}));
    EXPECT_EQ(load.config.channels[1], (Config::Channel{"x", 0, 5000}));

    // Block style works too; an empty value empties the file's list.
    const ConfigLoad block =
        loadDefaultConfig({{"WSRELAY_CHANNELS", "- pattern: a\n  history_size: 1\n"}});
    ASSERT_TRUE(block.ok()) << ::testing::PrintToString(errorStrings(block));
    EXPECT_EQ(block.config.channels, (std::vector<Config::Channel>{{"a", 1, 600000}}));
    for (const char* empty : {"", "  "}) {
        const ConfigLoad cleared =
            loadYaml("channels:\n  - pattern: news\n", {{"WSRELAY_CHANNELS", empty}});
        EXPECT_TRUE(cleared.ok()) << ::testing::PrintToString(errorStrings(cleared));
        EXPECT_TRUE(cleared.config.channels.empty());
    }
}

TEST(ConfigChannelsTest, EnvironmentErrorsPointIntoTheValue) {
    const ConfigLoad load = loadDefaultConfig(
        {{"WSRELAY_CHANNELS", R"([{pattern: "chat:*", history_size: lots}, {pattern: "a b"}])"}});
    EXPECT_THAT(errorStrings(load),
                ElementsAre("env WSRELAY_CHANNELS:1:36: channels: entry 1: history_size: cannot "
                            "convert 'lots' to an integer",
                            "env WSRELAY_CHANNELS:1:53: channels: entry 2: pattern: 'a b' is not "
                            "a channel name, or one followed by a single * (channel characters: "
                            "letters, digits and _-:./@=+,#!~$)"));
    ASSERT_EQ(load.errors.size(), 2u);
    EXPECT_EQ(load.errors[0].source, "env WSRELAY_CHANNELS");
    EXPECT_EQ(load.errors[0].key, "channels");
    EXPECT_THAT(
        errorStrings(loadDefaultConfig({{"WSRELAY_CHANNELS", "chat:*"}})),
        ElementsAre("env WSRELAY_CHANNELS:1:1: channels: expected a list of entries "
                    "{pattern, history_size, history_ttl_ms, presence, join_leave}, got a scalar"));
    EXPECT_THAT(errorStrings(loadDefaultConfig({{"WSRELAY_CHANNELS", "[{pattern: a}"}})),
                ElementsAre(StartsWith("env WSRELAY_CHANNELS:1:")));
    EXPECT_THAT(errorStrings(loadDefaultConfig({{"WSRELAY_CHANNELS", "[{pattern: a}"}}))[0],
                HasSubstr(": syntax error: "));
    EXPECT_THAT(errorStrings(loadDefaultConfig({{"WSRELAY_CHANNELS", ",[]"}})),
                ElementsAre(HasSubstr("env WSRELAY_CHANNELS:1:1: channels: syntax error: "
                                      "unexpected ','")));
    EXPECT_THAT(errorStrings(loadDefaultConfig({{"WSRELAY_CHANNELS", "[]\n---\n[]"}})),
                ElementsAre("env WSRELAY_CHANNELS:3:1: channels: only one YAML document is "
                            "allowed"));
    // A value that does not load leaves the file's list, which the rules reading it then skip:
    // only the variable's own error is reported.
    EXPECT_THAT(errorStrings(loadYaml("limits: {send_queue_messages: 10}\n"
                                      "channels: [{pattern: a, history_size: 1}]\n",
                                      {{"WSRELAY_CHANNELS", "[{pattern: a"}})),
                ElementsAre(StartsWith("env WSRELAY_CHANNELS:1:")));
}

TEST(ConfigHistoryTest, KeysAndBounds) {
    const ConfigLoad load =
        loadYaml("history:\n  max_recover: 50\n  max_limit: 500\n  max_reads_in_flight: 4\n");
    ASSERT_TRUE(load.ok()) << ::testing::PrintToString(errorStrings(load));
    EXPECT_EQ(load.config.history, (Config::History{50, 500, 4}));
    // max_recover above max_limit is fine: they bound different reads.
    EXPECT_TRUE(loadYaml("history: {max_recover: 2000, max_limit: 10}\n").ok());
    EXPECT_THAT(errorStrings(loadYaml("history:\n  max_recover: 0\n  max_limit: 100001\n"
                                      "  max_reads_in_flight: 10001\n")),
                ElementsAre("cfg.yaml:2:16: history.max_recover: '0' is out of range (allowed: "
                            "1..100000)",
                            "cfg.yaml:3:14: history.max_limit: '100001' is out of range (allowed: "
                            "1..100000)",
                            "cfg.yaml:4:24: history.max_reads_in_flight: '10001' is out of range "
                            "(allowed: 1..10000)"));
    const ConfigLoad env = loadDefaultConfig({{"WSRELAY_HISTORY_MAX_RECOVER", "7"},
                                              {"WSRELAY_HISTORY_MAX_LIMIT", "8"},
                                              {"WSRELAY_HISTORY_MAX_READS_IN_FLIGHT", "9"}});
    ASSERT_TRUE(env.ok()) << ::testing::PrintToString(errorStrings(env));
    EXPECT_EQ(env.config.history, (Config::History{7, 8, 9}));
}

TEST(ConfigLoaderTest, DescribeListsTheFieldsOfAnEntryList) {
    const std::string text = describeConfigKeys();
    EXPECT_THAT(text, HasSubstr("  channels = []\n      entry list ({pattern, history_size, "
                                "history_ttl_ms, presence, join_leave});\n"
                                "      env WSRELAY_CHANNELS\n"));
    EXPECT_THAT(text, HasSubstr("        pattern (required)\n            string (channel name, "
                                "or one ending in *); unique across entries\n"));
    EXPECT_THAT(text, HasSubstr("        history_size = 0\n            int (0..100000)\n"));
    EXPECT_THAT(text, HasSubstr("        history_ttl_ms = 600000\n            int64 "
                                "(1000..2592000000)\n"));
}

// --- Whole files and output ---

TEST(ConfigLoaderTest, LoadsAFile) {
    const std::string path = ::testing::TempDir() + "config_loader_test.yaml";
    {
        std::ofstream out(path);
        out << "listen:\n  port: eighty\nworkers: 2\n";
    }
    const ConfigLoad load = loadConfigFile(path, {});
    std::remove(path.c_str());
    EXPECT_THAT(errorStrings(load),
                ElementsAre(path + ":2:9: listen.port: cannot convert 'eighty' to an integer"));
    EXPECT_EQ(load.config.workers, 2);
}

TEST(ConfigLoaderTest, UnreadableFileIsOneError) {
    const ConfigLoad load = loadConfigFile("/nonexistent/wsrelay.yaml", {});
    EXPECT_THAT(errorStrings(load),
                ElementsAre("/nonexistent/wsrelay.yaml: cannot read the file: No such file or "
                            "directory"));
    expectSameConfig(load.config, Config{});

    const ConfigLoad dir = loadConfigFile(::testing::TempDir(), {});
    ASSERT_EQ(dir.errors.size(), 1u);
    EXPECT_THAT(dir.errors[0].message, HasSubstr("cannot read the file: Is a directory"));
}

TEST(ConfigLoaderTest, ErrorToString) {
    ConfigError e;
    e.source = "f.yaml";
    e.line = 3;
    e.column = 12;
    e.key = "listen.port";
    e.message = "m";
    EXPECT_EQ(e.toString(), "f.yaml:3:12: listen.port: m");
    e.key.clear();
    EXPECT_EQ(e.toString(), "f.yaml:3:12: m");
    e.line = 0;
    e.column = 0;
    EXPECT_EQ(e.toString(), "f.yaml: m");
}

// --- Rules across keys ---

constexpr std::string_view kRuleText =
    "websocket.max_message_bytes (65536) plus a 10-byte frame header exceeds "
    "limits.send_queue_bytes (65536): a message of the largest size could never be queued for a "
    "subscriber; set websocket.max_message_bytes to at most 65526 or limits.send_queue_bytes to "
    "at least 65546";

TEST(ConfigRulesTest, MessageLimitMustLeaveRoomForTheFrameHeaderInTheSendQueue) {
    EXPECT_TRUE(loadYaml("websocket: {max_message_bytes: 65526}\n"
                         "limits: {send_queue_bytes: 65536}\n")
                    .ok());
    const ConfigLoad load = loadYaml("websocket:\n  max_message_bytes: 65536\n"
                                     "limits:\n  send_queue_bytes: 65536\n");
    EXPECT_THAT(errorStrings(load), ElementsAre("cfg.yaml:2:22: " + std::string(kRuleText)));
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_EQ(load.errors[0].key, "") << "the message names both keys";
    EXPECT_THAT(errorStrings(loadYaml("websocket: {max_message_bytes: 65527}\n"
                                      "limits: {send_queue_bytes: 65536}\n")),
                ElementsAre(HasSubstr("(65527) plus a 10-byte frame header exceeds")));
}

TEST(ConfigRulesTest, TheErrorPointsAtTheKeyThatWasSet) {
    // Only the queue in the file: the default message limit is fine, the queue is what changed.
    EXPECT_THAT(
        errorStrings(loadYaml("listen:\n  port: 9000\nlimits:\n  send_queue_bytes: 65536\n")),
        ElementsAre("cfg.yaml:4:21: " + std::string(kRuleText)));
    // The environment wins over the file, and is then what the error names.
    EXPECT_THAT(errorStrings(loadYaml("websocket:\n  max_message_bytes: 1024\n",
                                      {{"WSRELAY_WEBSOCKET_MAX_MESSAGE_BYTES", "65536"},
                                       {"WSRELAY_LIMITS_SEND_QUEUE_BYTES", "65536"}})),
                ElementsAre("env WSRELAY_WEBSOCKET_MAX_MESSAGE_BYTES: " + std::string(kRuleText)));
    EXPECT_THAT(errorStrings(loadDefaultConfig({{"WSRELAY_LIMITS_SEND_QUEUE_BYTES", "65536"}})),
                ElementsAre("env WSRELAY_LIMITS_SEND_QUEUE_BYTES: " + std::string(kRuleText)));
}

TEST(ConfigRulesTest, TheInternalPortIsNotThePublicPort) {
    EXPECT_TRUE(loadYaml("listen: {port: 8080, internal_port: 9090}\n").ok());
    EXPECT_TRUE(loadYaml("listen: {port: 8080, internal_port: 0}\n").ok());
    const std::string message =
        "listen.internal_port (8080) is listen.port: the internal endpoints need a port of their "
        "own, or 0 for none";
    // The default listen.port is 8080: the error points at the key that was set.
    EXPECT_THAT(errorStrings(loadYaml("workers: 1\nlisten:\n  internal_port: 8080\n")),
                ElementsAre("cfg.yaml:3:18: " + message));
    EXPECT_THAT(errorStrings(loadYaml("listen:\n  port: 9090\n",
                                      {{"WSRELAY_LISTEN_INTERNAL_PORT", "9090"}})),
                ElementsAre(HasSubstr("env WSRELAY_LISTEN_INTERNAL_PORT: listen.internal_port "
                                      "(9090) is listen.port")));
}

TEST(ConfigRulesTest, AKeyThatFailedToLoadIsNotJudgedAgain) {
    // The queue's bad value leaves its default; only the conversion error is reported.
    EXPECT_THAT(errorStrings(loadYaml("websocket: {max_message_bytes: 4194304}\n"
                                      "limits: {send_queue_bytes: lots}\n")),
                ElementsAre(HasSubstr("limits.send_queue_bytes: cannot convert 'lots'")));
}

TEST(ConfigRulesTest, AMessageOnAChannelWithHistoryAlsoNeedsRoomForItsPosition) {
    const std::string queue = "limits: {send_queue_bytes: 65536}\n";
    const std::string history = "channels: [{pattern: a}, {pattern: \"b:*\", history_size: 1}]\n";
    EXPECT_TRUE(loadYaml("websocket: {max_message_bytes: 65526}\n" + queue).ok());
    EXPECT_TRUE(loadYaml("websocket: {max_message_bytes: 65447}\n" + queue + history).ok());
    EXPECT_THAT(
        errorStrings(loadYaml("websocket: {max_message_bytes: 65448}\n" + queue + history)),
        ElementsAre("cfg.yaml:1:32: websocket.max_message_bytes (65448) plus a 10-byte frame "
                    "header and a 79-byte position (channels entry 2, 'b:*' keeps history) "
                    "exceeds limits.send_queue_bytes (65536): a message of the largest size "
                    "could never be queued for a subscriber; set websocket.max_message_bytes to "
                    "at most 65447 or limits.send_queue_bytes to at least 65537"));
}

TEST(ConfigRulesTest, APatternLongerThanAChannelNameIsRefusedAtItsEntry) {
    const ConfigLoad load = loadYaml(R"(limits:
  max_channel_bytes: 8
channels:
  - pattern: "abcdefgh*"
  - pattern: abcdefghi
  - pattern: "abcdefghi*"
)");
    EXPECT_THAT(errorStrings(load),
                ElementsAre("cfg.yaml:5:5: channels entry 2: the pattern 'abcdefghi' is longer "
                            "than limits.max_channel_bytes (8) without its *: it matches no "
                            "channel",
                            "cfg.yaml:6:5: channels entry 3: the pattern 'abcdefghi*' is longer "
                            "than limits.max_channel_bytes (8) without its *: it matches no "
                            "channel"));
    // From the environment, the error points into its value; a limit lowered by the environment
    // judges the file's entries.
    EXPECT_THAT(
        errorStrings(loadDefaultConfig({{"WSRELAY_LIMITS_MAX_CHANNEL_BYTES", "2"},
                                        {"WSRELAY_CHANNELS", "[{pattern: ab}, {pattern: abc}]"}})),
        ElementsAre("env WSRELAY_CHANNELS:1:17: channels entry 2: the pattern 'abc' is "
                    "longer than limits.max_channel_bytes (2) without its *: it matches "
                    "no channel"));
    EXPECT_THAT(errorStrings(loadYaml("channels:\n  - pattern: abc\n",
                                      {{"WSRELAY_LIMITS_MAX_CHANNEL_BYTES", "2"}})),
                ElementsAre(StartsWith("cfg.yaml:2:5: channels entry 1: the pattern 'abc'")));
    // A bad limit is its own error only.
    EXPECT_THAT(
        errorStrings(loadYaml("limits: {max_channel_bytes: 0}\nchannels: [{pattern: abc}]\n")),
        ElementsAre(HasSubstr("limits.max_channel_bytes: '0' is out of range")));
}

TEST(ConfigRulesTest, WithHistoryARecoveryMustFitTheSendQueue) {
    const std::string history = "channels: [{pattern: \"*\", history_size: 10}]\n";
    EXPECT_TRUE(loadYaml("limits: {send_queue_messages: 300}\n").ok()) << "no history, no rule";
    EXPECT_TRUE(loadYaml("limits: {send_queue_messages: 301}\n" + history).ok());
    EXPECT_THAT(errorStrings(loadYaml("limits: {send_queue_messages: 300}\n" + history)),
                ElementsAre("cfg.yaml:1:31: history.max_recover (300) is not less than "
                            "limits.send_queue_messages (300) while channels entry 1, '*' keeps "
                            "history: a recovery queues up to history.max_recover messages and "
                            "its ack for one client at once; set history.max_recover to at most "
                            "299 or limits.send_queue_messages to at least 301"));
    EXPECT_THAT(errorStrings(loadYaml("history: {max_recover: 2000}\n" + history)),
                ElementsAre(StartsWith("cfg.yaml:1:24: history.max_recover (2000) is not less "
                                       "than limits.send_queue_messages (1024)")));
}

TEST(ConfigRulesTest, WithHistoryTheRedisPrefixHoldsNoBraceOrOneHashTag) {
    const std::string history = "channels: [{pattern: \"*\", history_size: 10}]\n";
    const auto prefix = [](std::string_view p) {
        return "broker: {redis: {prefix: \"" + std::string(p) + "\"}}\n";
    };
    for (const char* good : {"", "app:", "{app}:", "a{b}c", "{x}"}) {
        EXPECT_TRUE(loadYaml(prefix(good) + history).ok()) << good;
    }
    for (const char* bad : {"{}", "a{", "}a", "{a}{b}", "{a}}", "a}{b", "{{a}"}) {
        EXPECT_TRUE(loadYaml(prefix(bad)).ok()) << bad << ": without history any prefix goes";
        const ConfigLoad load = loadYaml(prefix(bad) + history);
        ASSERT_EQ(load.errors.size(), 1u) << bad;
        EXPECT_EQ(load.errors[0].toString(),
                  "cfg.yaml:1:26: broker.redis.prefix '" + std::string(bad) +
                      "' holds braces other than one non-empty {hash tag} while channels entry "
                      "1, '*' keeps history: its Redis keys are derived from the channel's hash "
                      "tag; use no brace, or one {tag}");
    }
}

// Each tests/unit/fixtures/config/fail-*.yaml is refused with exactly one error, the one on its
// "# expect-error:" line (position included); tests/integration/test_config_check.py checks that
// startup refuses it alike.
TEST(ConfigRulesTest, TheFailingSamplesAreRefused) {
    const std::filesystem::path dir = WSRELAY_SOURCE_DIR "/tests/unit/fixtures/config";
    size_t samples = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (!name.starts_with("fail-") || !name.ends_with(".yaml")) continue;
        ++samples;
        const std::string path = entry.path().string();
        std::ifstream in(path);
        std::string expected;
        for (std::string line; std::getline(in, line);) {
            if (line.starts_with("# expect-error: ")) expected = line.substr(16);
        }
        ASSERT_FALSE(expected.empty()) << path;
        const ConfigLoad load = loadConfigFile(path, {});
        ASSERT_EQ(load.errors.size(), 1u) << path << ::testing::PrintToString(errorStrings(load));
        EXPECT_THAT(load.errors[0].toString(), StartsWith(path + expected));
        EXPECT_GT(load.errors[0].line, 0) << path;
    }
    // One per rule at least (the URL and address syntax are checks of their keys).
    EXPECT_GE(samples, configRules().size()) << dir;
}

TEST(ConfigLoaderTest, DescribeListsEveryKey) {
    const std::string text = describeConfigKeys();
    for (const ConfigKey& key : configKeys()) {
        EXPECT_THAT(
            text, HasSubstr("  " + key.path + " = " + formatConfigValue(key.default_value) + "\n"));
        EXPECT_THAT(text, HasSubstr("env " + key.envName() + "\n"));
    }
    EXPECT_THAT(text, HasSubstr("int (1..65535); env WSRELAY_LISTEN_PORT"));
    for (const ConfigRule& rule : configRules()) {
        EXPECT_THAT(text, HasSubstr("  " + rule.rule + "\n"));
    }
    size_t start = 0;
    while (start < text.size()) {
        const size_t end = text.find('\n', start);
        EXPECT_LE(end - start, 100u) << text.substr(start, end - start);
        start = end + 1;
    }
}

}  // namespace
}  // namespace wsrelay
