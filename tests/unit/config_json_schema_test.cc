// The JSON Schema of the configuration file (conf/config_json_schema.h) against the key table it
// is derived from: every key at its path, with its type, range, names and fields. yaml-cpp reads
// the JSON (a subset of YAML).
#include "conf/config_json_schema.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "conf/config_schema.h"
#include "gtest/gtest.h"

namespace wsrelay {
namespace {

// The schema of the key at dotted `path`, through the sections' properties.
YAML::Node schemaAt(const YAML::Node& root, const std::string& path) {
    YAML::Node node = root;
    size_t start = 0;
    while (true) {
        const size_t dot = path.find('.', start);
        const std::string name = path.substr(start, dot - start);
        if (node["additionalProperties"].as<bool>(true)) return YAML::Node();
        // reset, not =: assigning a YAML::Node writes into the node it refers to.
        node.reset(node["properties"][name]);
        if (!node || dot == std::string::npos) return node;
        start = dot + 1;
    }
}

void expectKey(const YAML::Node& schema, const ConfigKey& key) {
    SCOPED_TRACE(key.path);
    ASSERT_TRUE(schema.IsMap());
    EXPECT_EQ(schema["description"].as<std::string>(), key.meaning);
    switch (key.type) {
        case ConfigType::Int:
        case ConfigType::Int64:
            EXPECT_EQ(schema["type"].as<std::string>(), "integer");
            if (key.zero_allowed && key.min > 0) {
                EXPECT_EQ(schema["anyOf"][0]["const"].as<int64_t>(), 0);
                EXPECT_EQ(schema["anyOf"][1]["minimum"].as<int64_t>(), key.min);
                EXPECT_EQ(schema["anyOf"][1]["maximum"].as<int64_t>(), key.max);
            } else {
                EXPECT_EQ(schema["minimum"].as<int64_t>(), key.min);
                EXPECT_EQ(schema["maximum"].as<int64_t>(), key.max);
            }
            break;
        case ConfigType::Bool: EXPECT_EQ(schema["type"].as<std::string>(), "boolean"); break;
        case ConfigType::String: EXPECT_EQ(schema["type"].as<std::string>(), "string"); break;
        case ConfigType::Enum:
            EXPECT_EQ(schema["type"].as<std::string>(), "string");
            EXPECT_EQ(schema["enum"].as<std::vector<std::string>>(), key.allowed);
            break;
        case ConfigType::StringList:
            EXPECT_EQ(schema["type"].as<std::string>(), "array");
            EXPECT_EQ(schema["items"]["type"].as<std::string>(), "string");
            break;
        case ConfigType::EntryList: {
            EXPECT_EQ(schema["type"].as<std::string>(), "array");
            const YAML::Node entry = schema["items"];
            EXPECT_FALSE(entry["additionalProperties"].as<bool>());
            std::vector<std::string> required;
            for (const ConfigKey& field : key.fields) {
                expectKey(entry["properties"][field.path], field);
                if (field.required) required.push_back(field.path);
            }
            EXPECT_EQ(entry["properties"].size(), key.fields.size());
            if (required.empty()) {
                EXPECT_FALSE(entry["required"]);
            } else {
                EXPECT_EQ(entry["required"].as<std::vector<std::string>>(), required);
            }
            break;
        }
    }
}

TEST(ConfigJsonSchema, DeclaresEveryKeyOfTheTableAsTheLoaderChecksIt) {
    const YAML::Node root = YAML::Load(configJsonSchema());
    EXPECT_EQ(root["$schema"].as<std::string>(), "http://json-schema.org/draft-07/schema#");
    EXPECT_EQ(root["type"].as<std::string>(), "object");
    for (const ConfigKey& key : configKeys()) expectKey(schemaAt(root, key.path), key);
}

// Nothing but the table: each section holds exactly the keys and sections under it.
TEST(ConfigJsonSchema, DeclaresNothingElse) {
    const YAML::Node root = YAML::Load(configJsonSchema());
    size_t leaves = 0;
    std::vector<YAML::Node> sections{root};
    while (!sections.empty()) {
        const YAML::Node section = sections.back();
        sections.pop_back();
        EXPECT_FALSE(section["additionalProperties"].as<bool>(true));
        for (const auto& member : section["properties"]) {
            if (member.second["type"].as<std::string>() == "object") {
                sections.push_back(member.second);
            } else {
                ++leaves;
            }
        }
    }
    EXPECT_EQ(leaves, configKeys().size());
}

TEST(ConfigJsonSchema, ExamplesOfEachKind) {
    const YAML::Node root = YAML::Load(configJsonSchema());
    EXPECT_EQ(schemaAt(root, "listen.port")["minimum"].as<int>(), 1);
    EXPECT_EQ(schemaAt(root, "listen.port")["maximum"].as<int>(), 65535);
    EXPECT_EQ(schemaAt(root, "broker.type")["enum"].as<std::vector<std::string>>(),
              (std::vector<std::string>{"memory", "redis"}));
    EXPECT_EQ(schemaAt(root, "broker.redis.tls.server_name")["type"].as<std::string>(), "string");
    EXPECT_EQ(schemaAt(root, "channels")["items"]["required"][0].as<std::string>(), "pattern");
    EXPECT_FALSE(schemaAt(root, "listen.no_such_key"));
}

}  // namespace
}  // namespace wsrelay
