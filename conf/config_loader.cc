#include "conf/config_loader.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "conf/config_schema.h"

// NOLINTNEXTLINE(readability-redundant-declaration): glibc declares it only for _GNU_SOURCE.
extern char** environ;

namespace wsrelay {
namespace {

constexpr std::string_view kEnvPrefix = "WSRELAY_";

std::string_view trim(std::string_view s) {
    constexpr std::string_view kSpace = " \t\r\n\v\f";
    const size_t begin = s.find_first_not_of(kSpace);
    if (begin == std::string_view::npos) return {};
    return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

// Echoes user input in a message, cut short so a huge value cannot flood the output.
std::string quoted(std::string_view text) {
    constexpr size_t kMax = 64;
    if (text.size() <= kMax) return "'" + std::string(text) + "'";
    return "'" + std::string(text.substr(0, kMax)) + "...'";
}

std::string_view kindOf(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Sequence: return "list";
        case YAML::NodeType::Map: return "mapping";
        case YAML::NodeType::Null: return "null";
        default: return "scalar";
    }
}

std::string expected(const ConfigKey& key) {
    switch (key.type) {
        case ConfigType::Int:
        case ConfigType::Int64: return "an integer";
        case ConfigType::Bool: return "a boolean";
        case ConfigType::String: return "a string";
        case ConfigType::Enum: return "one of: " + configRange(key);
        case ConfigType::StringList: return "a list of strings";
        case ConfigType::EntryList: return "a list of entries " + configRange(key);
    }
    return "a value";
}

bool isSection(std::string_view path) {
    for (const ConfigKey& key : configKeys()) {
        if (key.path.size() > path.size() && key.path.starts_with(path) &&
            key.path[path.size()] == '.') {
            return true;
        }
    }
    return false;
}

size_t editDistance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string unknownKeyMessage(std::string_view path) {
    const ConfigKey* best = nullptr;
    size_t best_distance = std::max<size_t>(2, path.size() / 4) + 1;
    for (const ConfigKey& key : configKeys()) {
        const size_t d = editDistance(path, key.path);
        if (d < best_distance) {
            best = &key;
            best_distance = d;
        }
    }
    if (best == nullptr) return "unknown key";
    return "unknown key (did you mean '" + best->path + "'?)";
}

std::string unknownFieldMessage(const ConfigKey& list, std::string_view name) {
    const std::string unknown = "unknown field '" + std::string(name) + "'";
    std::vector<std::string> names;
    const ConfigKey* best = nullptr;
    size_t best_distance = std::max<size_t>(2, name.size() / 4) + 1;
    for (const ConfigKey& field : list.fields) {
        names.push_back(field.path);
        const size_t d = editDistance(name, field.path);
        if (d < best_distance) {
            best = &field;
            best_distance = d;
        }
    }
    if (best != nullptr) return unknown + " (did you mean '" + best->path + "'?)";
    std::string all;
    for (const std::string& n : names) all += (all.empty() ? "" : ", ") + n;
    return unknown + " (an entry has " + all + ")";
}

// yaml-cpp 0.7's LoadAll() never returns on a document followed by a token that can start
// neither a node nor a document, such as a ',' outside [ ] and { } (",key: 1", or "- a" then a
// line ","): HandleNextDocument() reads that token as an empty document without consuming it, so
// every next document starts at the same token, and LoadAll() piles up empty documents until
// memory runs out. (Fixed upstream after 0.7.0 by checking that each document moved the parser
// on.) The same check, made here with yaml-cpp's own parser before LoadAll(): the events are
// only looked at for where each document starts, and a document starting where the one before
// it did is the token LoadAll() would loop on. Each other document consumes a token, so this
// pass ends.
class DocumentStarts final : public YAML::EventHandler {
public:
    void OnDocumentStart(const YAML::Mark& mark) override {
        repeated_ = started_ && mark.pos == last_.pos;
        started_ = true;
        last_ = mark;
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}

    bool repeated() const { return repeated_; }
    const YAML::Mark& last() const { return last_; }

private:
    bool started_ = false;
    bool repeated_ = false;
    YAML::Mark last_ = YAML::Mark::null_mark();
};

// Where LoadAll() would loop forever on `yaml`, if it would.
std::optional<YAML::Mark> endlessDocuments(const std::string& yaml) {
    std::istringstream in(yaml);
    YAML::Parser parser(in);
    DocumentStarts starts;
    try {
        while (parser.HandleNextDocument(starts)) {
            if (starts.repeated()) return starts.last();
        }
    } catch (const YAML::Exception&) {
        // LoadAll() throws the same, before reaching any document this pass did not.
    }
    return std::nullopt;
}

// The error for the token at `mark` that LoadAll() would loop on. Only ',' has been seen there,
// and '?' ("!tag x" then "? " ending the file); the character is named when found at the mark.
std::string endlessDocumentsMessage(std::string_view yaml, const YAML::Mark& mark) {
    constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";  // skipped by yaml-cpp, uncounted
    const size_t at = static_cast<size_t>(mark.pos) + (yaml.starts_with(kUtf8Bom) ? 3 : 0);
    const char c = mark.pos >= 0 && at < yaml.size() ? yaml[at] : '\0';
    if (c == ',') {
        return "syntax error: unexpected ',' (a comma separates entries only inside [ ] or { })";
    }
    if (c == '?') return "syntax error: unexpected '?' after the document";
    return "syntax error: unexpected text after the document";
}

// Where a key's value came from, for errors about it found after loading (the rules across keys).
struct Origin {
    std::string source;
    int line = 0;
    int column = 0;
    // An EntryList key: where each of its entries starts (same source), for rules on entries.
    std::vector<std::pair<int, int>> entries;
};
using Origins = std::map<std::string, Origin>;

class Loader {
public:
    Loader(ConfigLoad& out, Origins& origins, std::string source)
        : out_(out), origins_(origins), source_(std::move(source)) {}

    // A whole configuration file.
    void text(std::string_view yaml) {
        const std::optional<YAML::Node> root = document(yaml, "");
        if (!root || root->IsNull()) return;  // an empty file (or only comments): all defaults
        if (!root->IsMap()) {
            error(root->Mark(), "",
                  "expected a mapping of keys, got a " + std::string(kindOf(*root)));
            return;
        }
        try {
            mapping(*root, "");
        } catch (const YAML::Exception& e) {
            error(e.mark, "", e.msg);
        }
    }

    // The YAML value of one EntryList key on its own (an environment variable), positions in
    // errors counted inside it. Empty sets an empty list, as it does for a string list.
    void value(const ConfigKey& key, std::string_view yaml) {
        const std::optional<YAML::Node> root = document(yaml, key.path);
        if (!root) return;
        try {
            if (root->IsNull()) {
                store(key, *root, ConfigValue{std::vector<ConfigEntry>{}});
            } else {
                leaf(key, *root, *root);
            }
        } catch (const YAML::Exception& e) {
            error(e.mark, key.path, e.msg);
        }
    }

private:
    // The one document of `yaml` (a null node when it has none), or nothing after a syntax error,
    // which is reported for `key` ("" for a whole file).
    std::optional<YAML::Node> document(std::string_view yaml, const std::string& key) {
        const std::string copy(yaml);
        if (const std::optional<YAML::Mark> endless = endlessDocuments(copy)) {
            error(*endless, key, endlessDocumentsMessage(yaml, *endless));
            return std::nullopt;
        }
        std::vector<YAML::Node> docs;
        try {
            docs = YAML::LoadAll(copy);
        } catch (const YAML::DeepRecursion& e) {
            // yaml-cpp's own message for it is "bad file".
            error(e.mark, key,
                  "syntax error: nested too deeply (yaml-cpp reads " + std::to_string(e.depth()) +
                      " levels at most)");
            return std::nullopt;
        } catch (const YAML::Exception& e) {
            error(e.mark, key, "syntax error: " + e.msg);
            return std::nullopt;
        }
        if (docs.empty()) return YAML::Node(YAML::NodeType::Null);
        if (docs.size() > 1) error(docs[1].Mark(), key, "only one YAML document is allowed");
        return docs[0];
    }

    void error(const YAML::Mark& mark, std::string key, std::string message) {
        ConfigError e;
        e.source = source_;
        // yaml-cpp marks are 0-based; null_mark() (-1) means "no position".
        e.line = mark.line >= 0 ? mark.line + 1 : 0;
        e.column = mark.line >= 0 ? mark.column + 1 : 0;
        e.key = std::move(key);
        e.message = std::move(message);
        out_.errors.push_back(std::move(e));
    }

    void mapping(const YAML::Node& map, const std::string& prefix) {
        std::map<std::string, int> first_line;
        // Copies: yaml-cpp iterators hand out proxies, so a reference into *it would dangle.
        for (auto it = map.begin(); it != map.end(); ++it) {
            const YAML::Node name = it->first;
            const YAML::Node value = it->second;
            if (!name.IsScalar()) {
                error(name.Mark(), prefix,
                      "keys must be plain strings, got a " + std::string(kindOf(name)));
                continue;
            }
            const std::string path = prefix.empty() ? name.Scalar() : prefix + "." + name.Scalar();
            if (name.Scalar().find('.') != std::string::npos) {
                error(name.Mark(), path, "unknown key (keys are nested mappings, not dotted)");
                continue;
            }
            const auto [seen, inserted] = first_line.emplace(path, name.Mark().line + 1);
            if (!inserted) {
                error(name.Mark(), path,
                      "duplicate key (first at line " + std::to_string(seen->second) + ")");
                continue;
            }
            if (const ConfigKey* key = findConfigKey(path)) {
                leaf(*key, name, value);
            } else if (isSection(path)) {
                if (value.IsMap()) {
                    mapping(value, path);
                } else if (!value.IsNull()) {  // an empty section means its defaults
                    error(value.Mark(), path,
                          "expected a mapping of keys, got a " + std::string(kindOf(value)));
                }
            } else {
                error(name.Mark(), path, unknownKeyMessage(path));
            }
        }
    }

    void leaf(const ConfigKey& key, const YAML::Node& name, const YAML::Node& value) {
        if (value.IsNull()) {
            // An empty value has no reliable mark of its own; the key's is where the eye goes.
            error(name.Mark(), key.path,
                  "value is null (remove the key to use the default, " +
                      formatConfigValue(key.default_value) + ")");
            return;
        }
        if (key.type == ConfigType::EntryList) {
            entryList(key, name, value);
            return;
        }
        if (key.type == ConfigType::StringList) {
            if (!value.IsSequence()) {
                error(value.Mark(), key.path,
                      "expected a list of strings, got a " + std::string(kindOf(value)));
                return;
            }
            std::vector<std::string> items;
            bool good = true;
            size_t index = 0;
            for (const YAML::Node& entry : value) {
                ++index;
                if (!entry.IsScalar()) {
                    const YAML::Mark& mark = entry.IsNull() ? name.Mark() : entry.Mark();
                    error(mark, key.path,
                          "list entry " + std::to_string(index) + ": expected a string, got a " +
                              std::string(kindOf(entry)));
                    good = false;
                    continue;
                }
                ConfigParse parsed = parseConfigScalar(key, entry.Scalar());
                if (!parsed.value) {
                    error(entry.Mark(), key.path, parsed.error);
                    good = false;
                    continue;
                }
                items.push_back(std::get<std::string>(*parsed.value));
            }
            if (good) store(key, value, ConfigValue{std::move(items)});
            return;
        }
        if (!value.IsScalar()) {
            error(value.Mark(), key.path,
                  "expected " + expected(key) + ", got a " + std::string(kindOf(value)));
            return;
        }
        ConfigParse parsed = parseConfigScalar(key, value.Scalar());
        if (!parsed.value) {
            error(value.Mark(), key.path, parsed.error);
            return;
        }
        store(key, value, *parsed.value);
    }

    void store(const ConfigKey& key, const YAML::Node& value, const ConfigValue& converted,
               std::vector<std::pair<int, int>> entries = {}) {
        key.store(out_.config, converted);
        origins_[key.path] = {source_, value.Mark().line + 1, value.Mark().column + 1,
                              std::move(entries)};
    }

    // Each value a unique field was given, with the entry (1-based) and line that gave it first.
    using FirstUses = std::map<std::string, std::map<std::string, std::pair<size_t, int>>>;

    // A list of mappings of the key's fields. Not half-applied: one bad entry leaves the whole
    // list at its default, as one bad entry of a string list does.
    void entryList(const ConfigKey& key, const YAML::Node& name, const YAML::Node& value) {
        if (!value.IsSequence()) {
            error(value.Mark(), key.path,
                  "expected a list of entries " + configRange(key) + ", got a " +
                      std::string(kindOf(value)));
            return;
        }
        std::vector<ConfigEntry> entries;
        std::vector<std::pair<int, int>> starts;
        FirstUses first_uses;
        bool good = true;
        size_t index = 0;
        for (const YAML::Node& item : value) {
            ++index;
            if (!item.IsMap()) {
                const YAML::Mark& mark = item.IsNull() ? name.Mark() : item.Mark();
                error(mark, key.path,
                      "entry " + std::to_string(index) + ": expected a mapping of fields " +
                          configRange(key) + ", got a " + std::string(kindOf(item)));
                good = false;
                continue;
            }
            ConfigEntry entry;
            if (!fields(key, item, index, first_uses, entry)) {
                good = false;
                continue;
            }
            entries.push_back(std::move(entry));
            starts.emplace_back(item.Mark().line + 1, item.Mark().column + 1);
        }
        if (good) store(key, value, ConfigValue{std::move(entries)}, std::move(starts));
    }

    // One entry's fields into `out` (every field: those not given hold their default); false
    // after reporting what was wrong with it.
    bool fields(const ConfigKey& list, const YAML::Node& item, size_t index, FirstUses& first_uses,
                ConfigEntry& out) {
        const std::string where = "entry " + std::to_string(index) + ": ";
        std::vector<std::optional<ConfigValue>> values(list.fields.size());
        std::vector<YAML::Node> given(list.fields.size());
        std::map<std::string, int> first_line;
        bool good = true;
        for (auto it = item.begin(); it != item.end(); ++it) {
            const YAML::Node name = it->first;
            const YAML::Node value = it->second;
            if (!name.IsScalar()) {
                error(name.Mark(), list.path,
                      where + "fields must be plain strings, got a " + std::string(kindOf(name)));
                good = false;
                continue;
            }
            const auto [seen, inserted] = first_line.emplace(name.Scalar(), name.Mark().line + 1);
            if (!inserted) {
                error(name.Mark(), list.path,
                      where + name.Scalar() + ": duplicate field (first at line " +
                          std::to_string(seen->second) + ")");
                good = false;
                continue;
            }
            const auto field =
                std::find_if(list.fields.begin(), list.fields.end(),
                             [&name](const ConfigKey& f) { return f.path == name.Scalar(); });
            if (field == list.fields.end()) {
                error(name.Mark(), list.path, where + unknownFieldMessage(list, name.Scalar()));
                good = false;
                continue;
            }
            const std::string at = where + field->path + ": ";
            if (value.IsNull()) {
                error(name.Mark(), list.path,
                      at + (field->required ? std::string("value is null")
                                            : "value is null (remove the field to use the "
                                              "default, " +
                                                  formatConfigValue(field->default_value) + ")"));
                good = false;
                continue;
            }
            if (!value.IsScalar()) {
                error(
                    value.Mark(), list.path,
                    at + "expected " + expected(*field) + ", got a " + std::string(kindOf(value)));
                good = false;
                continue;
            }
            ConfigParse parsed = parseConfigScalar(*field, value.Scalar());
            if (!parsed.value) {
                error(value.Mark(), list.path, at + parsed.error);
                good = false;
                continue;
            }
            const auto i = static_cast<size_t>(field - list.fields.begin());
            values[i] = std::move(parsed.value);
            given[i] = value;
        }
        for (size_t i = 0; i < list.fields.size(); ++i) {
            const ConfigKey& field = list.fields[i];
            if (!values[i]) {
                if (field.required && good) {
                    error(item.Mark(), list.path,
                          where + "no " + field.path + " (every entry needs one)");
                }
                good = good && !field.required;
                values[i] = field.default_value;
                continue;
            }
            if (!field.unique) continue;
            const YAML::Mark mark = given[i].Mark();
            const auto [first, fresh] = first_uses[field.path].emplace(
                formatConfigValue(*values[i]), std::make_pair(index, mark.line + 1));
            if (!fresh) {
                error(mark, list.path,
                      where + field.path + ": " + quoted(given[i].Scalar()) + " is the " +
                          field.path + " of entry " + std::to_string(first->second.first) +
                          " already (line " + std::to_string(first->second.second) + ")");
                good = false;
            }
        }
        if (!good) return false;
        for (size_t i = 0; i < list.fields.size(); ++i) {
            out.fields.emplace_back(list.fields[i].path, std::move(*values[i]));
        }
        return true;
    }

    ConfigLoad& out_;
    Origins& origins_;
    std::string source_;
};

ConfigParse parseEnvValue(const ConfigKey& key, std::string_view raw) {
    const std::string_view text = trim(raw);
    if (key.type != ConfigType::StringList) return parseConfigScalar(key, text);
    std::vector<std::string> items;
    if (!text.empty()) {
        size_t start = 0;
        while (true) {
            const size_t comma = text.find(',', start);
            const std::string_view item = trim(text.substr(
                start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
            if (item.empty()) return {std::nullopt, "empty entry in the comma-separated list"};
            ConfigParse parsed = parseConfigScalar(key, item);
            if (!parsed.value) return parsed;
            items.push_back(std::get<std::string>(*parsed.value));
            if (comma == std::string_view::npos) break;
            start = comma + 1;
        }
    }
    return {ConfigValue{std::move(items)}, ""};
}

void applyEnvironment(ConfigLoad& out, Origins& origins, const Environment& env) {
    std::map<std::string, const ConfigKey*> by_name;
    for (const ConfigKey& key : configKeys()) by_name.emplace(key.envName(), &key);
    for (const auto& [name, value] : env) {
        if (!name.starts_with(kEnvPrefix)) continue;
        const auto it = by_name.find(name);
        if (it == by_name.end()) {
            // Never echo the value: it is not ours and may be a secret.
            out.warnings.push_back("env " + name + ": not a configuration key; ignored");
            continue;
        }
        if (it->second->type == ConfigType::EntryList) {
            // YAML (a flow sequence fits one line); errors point into the value.
            Loader(out, origins, "env " + name).value(*it->second, value);
            continue;
        }
        ConfigParse parsed = parseEnvValue(*it->second, value);
        if (!parsed.value) {
            ConfigError e;
            e.source = "env " + name;
            e.key = it->second->path;
            e.message = std::move(parsed.error);
            out.errors.push_back(std::move(e));
            continue;
        }
        it->second->store(out.config, *parsed.value);
        origins[it->second->path] = {"env " + name, 0, 0, {}};
    }
}

ConfigError ruleError(const Origins& origins, const std::string& fallback, const ConfigRule& rule,
                      std::string message) {
    ConfigError e;
    e.source = fallback;
    for (const std::string& key : rule.keys) {
        const auto it = origins.find(key);
        if (it == origins.end()) continue;
        e.source = it->second.source;
        e.line = it->second.line;
        e.column = it->second.column;
        break;
    }
    e.message = std::move(message);  // names every key itself, so `key` stays empty
    return e;
}

// A rule on each entry of the list rule.keys[0]: one error per entry that breaks it, at the
// entry when the list came from the file or the environment.
void applyEntryRule(ConfigLoad& out, const Origins& origins, const std::string& fallback,
                    const ConfigRule& rule) {
    const ConfigKey* list = findConfigKey(rule.keys.front());
    const size_t count = std::get<std::vector<ConfigEntry>>(list->read(out.config)).size();
    const auto origin = origins.find(list->path);
    for (size_t i = 0; i < count; ++i) {
        std::string message = rule.check_entry(out.config, i);
        if (message.empty()) continue;
        ConfigError e = ruleError(origins, fallback, rule, std::move(message));
        if (origin != origins.end() && i < origin->second.entries.size()) {
            e.source = origin->second.source;
            e.line = origin->second.entries[i].first;
            e.column = origin->second.entries[i].second;
        }
        out.errors.push_back(std::move(e));
    }
}

// The rules across keys, on the loaded values. A rule reading a key that failed to load is
// skipped: that key holds its default, which nobody wrote. An error points at the first of the
// rule's keys that the file or the environment set (`fallback` names the source otherwise).
void applyRules(ConfigLoad& out, const Origins& origins, const std::string& fallback) {
    for (const ConfigRule& rule : configRules()) {
        const auto reads = [&rule](const ConfigError& e) {
            return std::find(rule.keys.begin(), rule.keys.end(), e.key) != rule.keys.end();
        };
        if (std::any_of(out.errors.begin(), out.errors.end(), reads)) continue;
        if (rule.check_entry != nullptr) {
            applyEntryRule(out, origins, fallback, rule);
            continue;
        }
        std::string message = rule.check(out.config);
        if (message.empty()) continue;
        out.errors.push_back(ruleError(origins, fallback, rule, std::move(message)));
    }
}

// Word-wraps one line of prose, each output line starting with `indent`.
std::string wrap(std::string_view text, std::string_view indent, size_t width) {
    std::string out;
    std::string line(indent);
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find(' ', start);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view word = text.substr(start, end - start);
        if (line.size() > indent.size() && line.size() + 1 + word.size() > width) {
            out += line + "\n";
            line = indent;
        }
        if (line.size() > indent.size()) line += ' ';
        line += word;
        start = end + 1;
    }
    return out + line + "\n";
}

}  // namespace

Environment processEnvironment() {
    Environment env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view item(*entry);
        const size_t eq = item.find('=');
        if (eq == std::string_view::npos) continue;
        env.emplace(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
    }
    return env;
}

std::string ConfigError::toString() const {
    std::string out = source;
    if (line > 0) {
        out += ":" + std::to_string(line) + ":" + std::to_string(column);
        if (!key.empty()) out += ": " + key;
    }
    return out + ": " + message;
}

ConfigLoad loadConfigText(std::string_view yaml, const std::string& source,
                          const Environment& env) {
    ConfigLoad out;
    Origins origins;
    Loader(out, origins, source).text(yaml);
    applyEnvironment(out, origins, env);
    applyRules(out, origins, source);
    return out;
}

ConfigLoad loadConfigFile(const std::string& path, const Environment& env) {
    std::string text;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    int read_errno = fd < 0 ? errno : 0;
    if (fd >= 0) {
        char buf[16384];
        while (true) {
            const ssize_t n = ::read(fd, buf, sizeof(buf));
            if (n > 0) {
                text.append(buf, static_cast<size_t>(n));
            } else if (n == 0) {
                break;
            } else if (errno != EINTR) {
                read_errno = errno;
                break;
            }
        }
        ::close(fd);
    }
    if (read_errno != 0) {
        ConfigLoad out;
        ConfigError e;
        e.source = path;
        e.message = std::string("cannot read the file: ") + std::strerror(read_errno);
        out.errors.push_back(std::move(e));
        Origins origins;
        applyEnvironment(out, origins, env);
        applyRules(out, origins, path);
        return out;
    }
    return loadConfigText(text, path, env);
}

ConfigLoad loadDefaultConfig(const Environment& env) {
    ConfigLoad out;
    Origins origins;
    applyEnvironment(out, origins, env);
    applyRules(out, origins, "the defaults");
    return out;
}

std::string describeConfigKeys() {
    std::string out =
        "Each key: YAML path = default, then its type (accepted values) and the environment\n"
        "variable that overrides it. The environment wins over the file; lists in the environment\n"
        "are comma-separated, lists of entries are YAML: [{pattern: \"chat:*\", history_size: "
        "100}].\n";
    std::string section = ".";
    for (const ConfigKey& key : configKeys()) {
        const size_t dot = key.path.find('.');
        const std::string this_section = dot == std::string::npos ? "" : key.path.substr(0, dot);
        if (this_section != section) out += "\n";
        section = this_section;
        out += "  " + key.path + " = " + formatConfigValue(key.default_value) + "\n";
        std::string type = "      " + std::string(configTypeName(key.type));
        const std::string range = configRange(key);
        if (!range.empty()) type += " (" + range + ")";
        // An entry list's fields can make the line too long: the variable then gets its own.
        const std::string env = "; env " + key.envName();
        out += type.size() + env.size() <= 100 ? type + env + "\n"
                                               : type + ";\n      env " + key.envName() + "\n";
        out += wrap(key.meaning, "      ", 100);
        if (!key.fields.empty()) out += "      Fields of an entry:\n";
        for (const ConfigKey& field : key.fields) {
            out +=
                "        " + field.path +
                (field.required ? " (required)" : " = " + formatConfigValue(field.default_value)) +
                "\n";
            out += "            " + std::string(configTypeName(field.type));
            const std::string field_range = configRange(field);
            if (!field_range.empty()) out += " (" + field_range + ")";
            out += field.unique ? "; unique across entries\n" : "\n";
            out += wrap(field.meaning, "            ", 100);
        }
    }
    out += "\nRules across keys (checked once the file and the environment are applied):\n";
    for (const ConfigRule& rule : configRules()) out += "  " + rule.rule + "\n";
    return out;
}

}  // namespace wsrelay
