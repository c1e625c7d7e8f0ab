// libFuzzer target for the configuration loader (conf/config_loader.h), through loadConfigText,
// the code `wsrelay --check-config FILE` and startup run on the file's bytes. The input is the
// YAML file, except that what follows its last "\n#env\n" is read as environment overrides, one
// NAME=VALUE a line, NAME prefixed with WSRELAY_ (so LISTEN_PORT=80 is WSRELAY_LISTEN_PORT).
// yaml-cpp is Debian's uninstrumented library: the fuzzer sees only the loader's branches, so
// tests/fuzz/config_loader_fuzz.dict gives it YAML's tokens. A hang is found by libFuzzer's
// -timeout (tests/CMakeLists.txt), as yaml-cpp 0.7's LoadAll() loop on a stray ',' would be
// (regression inputs stray_comma*).
// The properties: nothing crashes, throws, leaks or hangs; every error names its source (the
// file, or "env WSRELAY_X" for a variable given), says something, and has a position inside the
// file when it has one (always, for a syntax error), or inside the variable's value for a list of
// entries (WSRELAY_CHANNELS, which is YAML); a configuration accepted, written back as YAML by
// yaml-cpp's emitter, loads again without an error to the same values.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "conf/config_loader.h"
#include "conf/config_schema.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;
using wsrelay::fuzz::failure;

using namespace wsrelay;

constexpr std::string_view kSource = "fuzz.yaml";
constexpr std::string_view kEnvMarker = "\n#env\n";

Environment environmentOf(std::string_view trailer) {
    Environment env;
    while (!trailer.empty()) {
        const size_t eol = trailer.find('\n');
        const std::string_view line = trailer.substr(0, eol);
        const size_t eq = line.find('=');
        if (eq != std::string_view::npos) {
            env["WSRELAY_" + std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
        }
        if (eol == std::string_view::npos) break;
        trailer.remove_prefix(eol + 1);
    }
    return env;
}

size_t lineCount(std::string_view text) {
    size_t lines = 1;
    for (char c : text) lines += c == '\n';
    return lines;
}

void checkError(const ConfigError& e, std::string_view yaml, const Environment& env) {
    const std::string text = e.toString();
    check(!e.message.empty(), "error without a message", text);
    check(text.starts_with(e.source), "error does not start with its source", text);
    if (e.source.starts_with("env ")) {
        const auto var = env.find(e.source.substr(4));
        check(var != env.end(), "error names a variable not given", text);
        if (e.line == 0) {
            check(e.column == 0, "column without a line", text);
            return;
        }
        const ConfigKey* key = nullptr;
        for (const ConfigKey& k : configKeys()) {
            if (k.envName() == var->first) key = &k;
        }
        check(key != nullptr && key->type == ConfigType::EntryList, "env error with a position",
              text);
        check(e.column > 0, "line without a column", text);
        check(static_cast<size_t>(e.line) <= lineCount(var->second),
              "error past the end of the variable's value", text);
        return;
    }
    check(e.source == kSource, "error from an unknown source", text);
    if (e.message.starts_with("syntax error")) {
        check(e.line > 0, "syntax error without a position", text);
        // yaml-cpp's message for too deep a nesting says nothing to the reader.
        check(!e.message.ends_with("bad file"), "unclear syntax error", text);
    }
    if (e.line > 0) {
        check(e.column > 0, "line without a column", text);
        check(static_cast<size_t>(e.line) <= lineCount(yaml), "error past the end of the file",
              text);
    } else {
        check(e.column == 0, "column without a line", text);
    }
}

// Whether yaml-cpp's emitter is expected to write `s` back unchanged: printable ASCII only (it
// escapes or replaces other bytes; that is its business, not the loader's).
bool plain(std::string_view s) {
    for (char c : s) {
        if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
}

bool plainValue(const ConfigValue& value) {
    if (const auto* s = std::get_if<std::string>(&value)) return plain(*s);
    if (const auto* entries = std::get_if<std::vector<ConfigEntry>>(&value)) {
        for (const ConfigEntry& entry : *entries) {
            for (const auto& field : entry.fields) {
                if (!plainValue(field.second)) return false;
            }
        }
    }
    if (const auto* list = std::get_if<std::vector<std::string>>(&value)) {
        for (const std::string& s : *list) {
            if (!plain(s)) return false;
        }
    }
    return true;
}

// A value as a YAML node: a list of entries as a sequence of mappings.
YAML::Node nodeOf(const ConfigValue& value) {
    if (const auto* entries = std::get_if<std::vector<ConfigEntry>>(&value)) {
        YAML::Node list(YAML::NodeType::Sequence);
        for (const ConfigEntry& entry : *entries) {
            YAML::Node map(YAML::NodeType::Map);
            for (const auto& [name, field] : entry.fields) map[name] = nodeOf(field);
            list.push_back(map);
        }
        return list;
    }
    YAML::Node node;
    std::visit(
        [&node](const auto& v) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(v)>, std::vector<ConfigEntry>>) {
                node = v;
            }
        },
        value);
    return node;
}

// `config` as a YAML file, every key written; empty when a value is not plain().
std::string yamlOf(const Config& config) {
    YAML::Node root;
    for (const ConfigKey& key : configKeys()) {
        const ConfigValue value = key.read(config);
        if (!plainValue(value)) return {};
        std::vector<std::string> path;
        size_t start = 0;
        while (true) {
            const size_t dot = key.path.find('.', start);
            path.push_back(key.path.substr(start, dot - start));
            if (dot == std::string::npos) break;
            start = dot + 1;
        }
        // yaml-cpp's operator[] on a Node returns a handle into the tree: descend by handles.
        std::vector<YAML::Node> chain{root};
        for (size_t i = 0; i + 1 < path.size(); ++i) chain.push_back(chain.back()[path[i]]);
        YAML::Node leaf = chain.back()[path.back()];
        leaf = nodeOf(value);
    }
    YAML::Emitter out;
    out << root;
    return out.good() ? std::string(out.c_str()) : std::string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const size_t marker = input.rfind(kEnvMarker);
    const std::string_view yaml = input.substr(0, marker);
    const Environment env = marker == std::string_view::npos
                                ? Environment{}
                                : environmentOf(input.substr(marker + kEnvMarker.size()));
    ConfigLoad load;
    try {
        load = loadConfigText(yaml, std::string(kSource), env);
    } catch (const std::exception& e) {
        failure("the loader threw", e.what());
    } catch (...) {
        failure("the loader threw", yaml);
    }
    for (const ConfigError& e : load.errors) checkError(e, yaml, env);
    for (const std::string& w : load.warnings) {
        check(w.starts_with("env WSRELAY_"), "warning without its variable", w);
    }
    if (!load.ok()) return 0;

    const std::string written = yamlOf(load.config);
    if (written.empty()) return 0;
    const ConfigLoad again = loadConfigText(written, "written.yaml", {});
    if (!again.ok()) {
        failure("an accepted configuration, written back, is refused",
                again.errors[0].toString() + "\n" + written);
    }
    for (const ConfigKey& key : configKeys()) {
        check(key.read(again.config) == key.read(load.config), "a value changed when written back",
              key.path + ":\n" + written);
    }
    return 0;
}
