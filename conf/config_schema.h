#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "conf/config.h"

// The one table of configuration keys. The loader, `wsrelay --help`, docs/config.md and
// conf/wsrelay.sample.yaml are all checked against it (tests/unit/config_docs_test.cc). Defaults
// are the member initialisers of conf/config.h, copied into the table (see config_schema.cc).
namespace wsrelay {

// EntryList: a list of mappings whose fields are declared like keys (ConfigKey::fields), such as
// the top-level `channels`.
enum class ConfigType { Int, Int64, Bool, String, Enum, StringList, EntryList };

struct ConfigEntry;
// A converted, checked value. Int and Int64 hold int64_t; Enum holds the canonical name;
// EntryList holds one ConfigEntry per entry.
using ConfigValue =
    std::variant<int64_t, bool, std::string, std::vector<std::string>, std::vector<ConfigEntry>>;

// One entry of an EntryList key: every field's name and value, in the order of the key's fields
// (a field the entry did not set holds its default).
struct ConfigEntry {
    std::vector<std::pair<std::string, ConfigValue>> fields;
    bool operator==(const ConfigEntry&) const = default;
};

struct ConfigKey {
    std::string path;  // dotted, e.g. "websocket.max_message_bytes"; a field's own name
    ConfigType type = ConfigType::String;
    // Read from a default-constructed Config when the table is built: conf/config.h holds it. A
    // field's is read from a default-constructed entry.
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
    // EntryList: the fields of an entry, declared as keys of their own (scalar types only). Their
    // store and read are unset: the list's own store and read convert whole entries.
    std::vector<ConfigKey> fields;
    bool required = false;  // a field every entry must set (it has no default)
    bool unique = false;    // a field no two entries may set to the same value
    // Unset for a field.
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
    // Set instead of `check` for a rule on each entry of the EntryList key keys[0]: the error
    // message for its entry `index` (0-based), or "". Such an error points at that entry.
    std::string (*check_entry)(const Config& config, size_t index) = nullptr;
};
std::span<const ConfigRule> configRules();

// "int", "int64", "bool", "string", "enum", "string list", "entry list".
std::string_view configTypeName(ConfigType type);
// A value as it is written in YAML: 8080, close, /ws, [] or [a, b]; an empty string as ""; a list
// of entries in flow style, [{pattern: "chat:*", history_size: 100}].
std::string formatConfigValue(const ConfigValue& value);
// Accepted values for the docs: "1..65535", "0 or 1000..3600000", "close, drop_oldest", the
// constraint of a string, "{pattern, history_size, history_ttl_ms}" (an entry list's fields), or
// "" when anything of the type goes.
std::string configRange(const ConfigKey& key);

struct ConfigParse {
    std::optional<ConfigValue> value;
    std::string error;  // set when value is empty
};
// Converts one scalar (a YAML scalar or an environment value) to the key's type and checks it
// against bounds, allowed names and `check`. For a StringList key it converts one entry and
// returns it as a string; an EntryList key has no scalar form (an error), its fields do.
ConfigParse parseConfigScalar(const ConfigKey& key, std::string_view text);

}  // namespace wsrelay
