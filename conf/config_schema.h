#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "conf/config.h"

// The one table of configuration keys. The loader, `wsrelay --help`, docs/config.md and
// conf/wsrelay.sample.yaml are all checked against it (tests/unit/config_docs_test.cc). Defaults
// are the member initialisers of conf/config.h, copied into the table (see config_schema.cc).
namespace wsrelay {

enum class ConfigType { Int, Int64, Bool, String, Enum, StringList };

// A converted, checked value. Int and Int64 hold int64_t; Enum holds the canonical name.
using ConfigValue = std::variant<int64_t, bool, std::string, std::vector<std::string>>;

struct ConfigKey {
    std::string path;  // dotted, e.g. "websocket.max_message_bytes"
    ConfigType type = ConfigType::String;
    // Read from a default-constructed Config when the table is built: conf/config.h holds it.
    ConfigValue default_value;
    // Int and Int64: accepted range, plus 0 when zero_allowed (0 then means off/automatic).
    int64_t min = 0;
    int64_t max = 0;
    bool zero_allowed = false;
    std::vector<std::string> allowed;  // Enum: every accepted name
    // String and StringList (per entry): a check beyond the type, described by `constraint` for
    // the docs. Returns an error message, or "" when the value is acceptable.
    std::string (*check)(std::string_view value) = nullptr;
    std::string constraint;
    std::string meaning;  // one line
    std::function<void(Config&, const ConfigValue&)> store;
    std::function<ConfigValue(const Config&)> read;

    // WSRELAY_ + the path upper-cased with '_' between levels.
    std::string envName() const;
};

// Every key, in documentation order (grouped by section).
std::span<const ConfigKey> configKeys();
const ConfigKey* findConfigKey(std::string_view path);

// A rule across keys, checked by the loader once the file and the environment are applied, so
// that startup and `wsrelay --check-config` refuse the same configurations. docs/config.md lists
// every `rule` (tests/unit/config_docs_test.cc).
struct ConfigRule {
    std::vector<std::string> keys;  // the keys it reads; its error points at the first one set
    std::string rule;               // what must hold, one line, as docs/config.md states it
    std::string (*check)(const Config& config);  // an error message naming the keys, or ""
};
std::span<const ConfigRule> configRules();

// "int", "int64", "bool", "string", "enum", "string list".
std::string_view configTypeName(ConfigType type);
// A value as it is written in YAML: 8080, close, /ws, [] or [a, b]; an empty string as "".
std::string formatConfigValue(const ConfigValue& value);
// Accepted values for the docs: "1..65535", "0 or 1000..3600000", "close, drop_oldest", the
// constraint of a string, or "" when anything of the type goes.
std::string configRange(const ConfigKey& key);

struct ConfigParse {
    std::optional<ConfigValue> value;
    std::string error;  // set when value is empty
};
// Converts one scalar (a YAML scalar or an environment value) to the key's type and checks it
// against bounds, allowed names and `check`. For a StringList key it converts one entry and
// returns it as a string.
ConfigParse parseConfigScalar(const ConfigKey& key, std::string_view text);

}  // namespace wsrelay
