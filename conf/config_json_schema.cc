#include "conf/config_json_schema.h"

#include <cstdio>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "conf/config_schema.h"

namespace wsrelay {
namespace {

std::string jsonString(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char escaped[8];
                    snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
                    out += escaped;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

// A JSON value under construction: a scalar already written out, or an object whose members keep
// their order (a key's place in the table is its place in the schema).
struct Json {
    struct Member;  // below, and every function that builds one: clang needs Json complete
    std::string scalar;
    std::vector<Member> members;
    bool is_object = false;

    static Json raw(std::string text);
    static Json object();

    Json& add(std::string name, Json value);
    Json* find(std::string_view name);
    // Objects one member a line; lists and the scalars as written by raw().
    void write(std::string& out, int depth) const;
};

struct Json::Member {
    std::string name;
    Json value;
};

Json Json::raw(std::string text) { return Json{std::move(text), {}, false}; }

Json Json::object() { return Json{{}, {}, true}; }

Json& Json::add(std::string name, Json value) {
    members.push_back(Member{std::move(name), std::move(value)});
    return members.back().value;
}

Json* Json::find(std::string_view name) {
    for (auto& [member, value] : members) {
        if (member == name) return &value;
    }
    return nullptr;
}

void Json::write(std::string& out, int depth) const {
    if (!is_object) {
        out += scalar;
        return;
    }
    if (members.empty()) {
        out += "{}";
        return;
    }
    const std::string indent(2 * (depth + 1), ' ');
    out += "{\n";
    for (size_t i = 0; i < members.size(); ++i) {
        out += indent + jsonString(members[i].name) + ": ";
        members[i].value.write(out, depth + 1);
        out += i + 1 < members.size() ? ",\n" : "\n";
    }
    out += std::string(2 * depth, ' ') + "}";
}

std::string jsonList(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + jsonString(items[i]);
    return out + "]";
}

Json section() {
    Json s = Json::object();
    s.add("type", Json::raw("\"object\""));
    s.add("additionalProperties", Json::raw("false"));
    s.add("properties", Json::object());
    return s;
}

Json keySchema(const ConfigKey& key);

// An entry of an EntryList key: a mapping of its fields, the required ones listed.
Json entrySchema(const ConfigKey& key) {
    Json entry = section();
    Json& properties = *entry.find("properties");
    std::vector<std::string> required;
    for (const ConfigKey& field : key.fields) {
        properties.add(field.path, keySchema(field));
        if (field.required) required.push_back(field.path);
    }
    if (!required.empty()) entry.add("required", Json::raw(jsonList(required)));
    return entry;
}

Json keySchema(const ConfigKey& key) {
    Json schema = Json::object();
    schema.add("description", Json::raw(jsonString(key.meaning)));
    switch (key.type) {
        case ConfigType::Int:
        case ConfigType::Int64: {
            schema.add("type", Json::raw("\"integer\""));
            const std::string min = std::to_string(key.min);
            const std::string max = std::to_string(key.max);
            if (key.zero_allowed && key.min > 0) {
                // 0 turns the feature off; anything else must be in range.
                schema.add("anyOf", Json::raw("[{\"const\": 0}, {\"minimum\": " + min +
                                              ", \"maximum\": " + max + "}]"));
            } else {
                schema.add("minimum", Json::raw(min));
                schema.add("maximum", Json::raw(max));
            }
            break;
        }
        case ConfigType::Bool: schema.add("type", Json::raw("\"boolean\"")); break;
        case ConfigType::String: schema.add("type", Json::raw("\"string\"")); break;
        case ConfigType::Enum:
            schema.add("type", Json::raw("\"string\""));
            schema.add("enum", Json::raw(jsonList(key.allowed)));
            break;
        case ConfigType::StringList:
            schema.add("type", Json::raw("\"array\""));
            schema.add("items", Json::raw("{\"type\": \"string\"}"));
            break;
        case ConfigType::EntryList:
            schema.add("type", Json::raw("\"array\""));
            schema.add("items", entrySchema(key));
            break;
    }
    return schema;
}

}  // namespace

std::string configJsonSchema() {
    Json root = section();
    root.members.insert(
        root.members.begin(),
        Json::Member{"$schema", Json::raw("\"http://json-schema.org/draft-07/schema#\"")});
    for (const ConfigKey& key : configKeys()) {
        // "broker.redis.tls.ca_file": the sections broker, redis and tls, then the key ca_file.
        Json* properties = root.find("properties");
        std::string_view path = key.path;
        for (size_t dot = path.find('.'); dot != std::string_view::npos; dot = path.find('.')) {
            const std::string_view name = path.substr(0, dot);
            Json* sub = properties->find(name);
            if (sub == nullptr) sub = &properties->add(std::string(name), section());
            properties = sub->find("properties");
            path.remove_prefix(dot + 1);
        }
        properties->add(std::string(path), keySchema(key));
    }
    std::string out;
    root.write(out, 0);
    return out + "\n";
}

}  // namespace wsrelay
