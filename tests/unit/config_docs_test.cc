// docs/config.md and conf/wsrelay.sample.yaml are checked against the key table, so neither can
// drift from the code.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "conf/config_loader.h"
#include "conf/config_schema.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wsrelay {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

const std::string kDocsPath = WSRELAY_SOURCE_DIR "/docs/config.md";
const std::string kSamplePath = WSRELAY_SOURCE_DIR "/conf/wsrelay.sample.yaml";

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

std::string trim(const std::string& s) {
    const size_t begin = s.find_first_not_of(" \t");
    if (begin == std::string::npos) return "";
    return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

// A table cell as text: trimmed, backticks (inline code marks) removed.
std::string cellText(const std::string& cell) {
    std::string out;
    for (char c : trim(cell)) {
        if (c != '`') out += c;
    }
    return out;
}

struct Row {
    int line = 0;
    // A key: Key | Type | Default | Range/values | Env | Meaning. A field of an entry list
    // (`channels[].pattern`): Field | Type | Default | Range/values | Meaning.
    std::vector<std::string> cells;
};

bool isFieldRow(const Row& row) { return row.cells[0].find("[].") != std::string::npos; }

// Rows of the key and field tables: the ones whose first cell is a `code` span.
std::vector<Row> tableRows(const std::string& markdown) {
    std::vector<Row> rows;
    int number = 0;
    for (const std::string& line : lines(markdown)) {
        ++number;
        if (!line.starts_with("| `")) continue;
        Row row;
        row.line = number;
        std::string rest = line.substr(1);
        size_t bar;
        while ((bar = rest.find('|')) != std::string::npos) {
            row.cells.push_back(cellText(rest.substr(0, bar)));
            rest = rest.substr(bar + 1);
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

std::vector<Row> keyRows(const std::string& markdown) {
    std::vector<Row> rows = tableRows(markdown);
    std::erase_if(rows, isFieldRow);
    return rows;
}

TEST(ConfigDocsTest, EveryKeyHasOneAccurateRow) {
    const std::string docs = readFile(kDocsPath);
    ASSERT_FALSE(docs.empty()) << "cannot read " << kDocsPath;
    std::map<std::string, Row> by_key;
    for (const Row& row : keyRows(docs)) {
        ASSERT_EQ(row.cells.size(), 6u) << "docs/config.md:" << row.line;
        EXPECT_NE(findConfigKey(row.cells[0]), nullptr)
            << "docs/config.md:" << row.line << ": " << row.cells[0] << " is not a key";
        EXPECT_TRUE(by_key.emplace(row.cells[0], row).second)
            << "docs/config.md:" << row.line << ": " << row.cells[0] << " documented twice";
    }
    for (const ConfigKey& key : configKeys()) {
        SCOPED_TRACE(key.path);
        const auto it = by_key.find(key.path);
        if (it == by_key.end()) {
            ADD_FAILURE() << "no row in docs/config.md";
            continue;
        }
        const std::vector<std::string>& cells = it->second.cells;
        EXPECT_EQ(cells[1], configTypeName(key.type));
        EXPECT_EQ(cells[2], formatConfigValue(key.default_value));
        EXPECT_EQ(cells[3], configRange(key));
        EXPECT_EQ(cells[4], key.envName());
        EXPECT_THAT(cells[5], StartsWith(key.meaning));
    }
}

// Each field of an entry list has a row `list[].field` in a table of its own.
TEST(ConfigDocsTest, EveryFieldHasOneAccurateRow) {
    const std::string docs = readFile(kDocsPath);
    std::map<std::string, Row> by_field;
    for (Row row : tableRows(docs)) {
        if (!isFieldRow(row)) continue;
        ASSERT_EQ(row.cells.size(), 5u) << "docs/config.md:" << row.line;
        EXPECT_TRUE(by_field.emplace(row.cells[0], row).second)
            << "docs/config.md:" << row.line << ": " << row.cells[0] << " documented twice";
    }
    size_t fields = 0;
    for (const ConfigKey& key : configKeys()) {
        for (const ConfigKey& field : key.fields) {
            ++fields;
            const std::string name = key.path + "[]." + field.path;
            SCOPED_TRACE(name);
            const auto it = by_field.find(name);
            if (it == by_field.end()) {
                ADD_FAILURE() << "no row in docs/config.md";
                continue;
            }
            const std::vector<std::string>& cells = it->second.cells;
            EXPECT_EQ(cells[1], configTypeName(field.type));
            EXPECT_EQ(cells[2],
                      field.required ? "required" : formatConfigValue(field.default_value));
            EXPECT_EQ(cells[3], configRange(field));
            EXPECT_THAT(cells[4], StartsWith(field.meaning));
        }
    }
    EXPECT_EQ(by_field.size(), fields) << "a row for a field that does not exist";
}

// The example under "### `channels`" is a configuration the relay accepts.
TEST(ConfigDocsTest, TheChannelsExampleLoads) {
    const std::string docs = readFile(kDocsPath);
    const size_t section = docs.find("### `channels`");
    ASSERT_NE(section, std::string::npos);
    const size_t begin = docs.find("```yaml\n", section);
    ASSERT_NE(begin, std::string::npos);
    const size_t end = docs.find("```\n", begin + 8);
    const std::string example = docs.substr(begin + 8, end - begin - 8);
    const ConfigLoad load = loadConfigText(example, "docs/config.md example", {});
    for (const ConfigError& e : load.errors) ADD_FAILURE() << e.toString();
    EXPECT_GE(load.config.channels.size(), 2u);
}

TEST(ConfigDocsTest, EveryRuleAcrossKeysIsListed) {
    const std::string docs = readFile(kDocsPath);
    for (const ConfigRule& rule : configRules()) {
        EXPECT_THAT(docs, HasSubstr("- `" + rule.rule + "`")) << "docs/config.md: rules section";
        for (const std::string& key : rule.keys) EXPECT_NE(findConfigKey(key), nullptr) << key;
    }
}

TEST(ConfigDocsTest, TheDocumentedEnvErrorIsReal) {
    const std::string docs = readFile(kDocsPath);
    const ConfigLoad load = loadDefaultConfig({{"WSRELAY_LISTEN_PORT", "x"}});
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_THAT(docs, HasSubstr("`" + load.errors[0].toString() + "`"));

    const std::string channels = R"([{pattern: "chat:*", history_size: lots}])";
    EXPECT_THAT(docs, HasSubstr("`WSRELAY_CHANNELS=" + channels + "`"));
    const ConfigLoad list = loadDefaultConfig({{"WSRELAY_CHANNELS", channels}});
    ASSERT_EQ(list.errors.size(), 1u);
    EXPECT_THAT(docs, HasSubstr("`" + list.errors[0].toString() + "`"));
}

TEST(ConfigDocsTest, SampleLoadsToTheDefaults) {
    const ConfigLoad load = loadConfigFile(kSamplePath, {});
    for (const ConfigError& e : load.errors) ADD_FAILURE() << e.toString();
    EXPECT_THAT(load.warnings, IsEmpty());
    const Config defaults;
    for (const ConfigKey& key : configKeys()) {
        EXPECT_EQ(key.read(load.config), key.read(defaults)) << key.path;
    }
}

TEST(ConfigDocsTest, SampleSetsEveryKeyUnderItsMeaning) {
    const std::string sample = readFile(kSamplePath);
    ASSERT_FALSE(sample.empty()) << "cannot read " << kSamplePath;
    const YAML::Node root = YAML::Load(sample);
    const std::vector<std::string> text = lines(sample);
    for (const ConfigKey& key : configKeys()) {
        SCOPED_TRACE(key.path);
        YAML::Node node = root;
        std::string leaf = key.path;
        for (size_t dot; (dot = leaf.find('.')) != std::string::npos; leaf = leaf.substr(dot + 1)) {
            node.reset(node[leaf.substr(0, dot)]);
            ASSERT_TRUE(node.IsMap()) << "no section " << leaf.substr(0, dot);
        }
        const YAML::Node value = node[leaf];
        if (!value.IsDefined()) {
            ADD_FAILURE() << "missing from the sample";
            continue;
        }
        // The line of the key, and right above it the one-line comment with its meaning.
        const int line = value.Mark().line;
        ASSERT_GE(line, 1);
        EXPECT_THAT(trim(text[line]), StartsWith(leaf + ":"));
        EXPECT_EQ(trim(text[line - 1]), "# " + key.meaning);
    }
}

// Below an entry list's key, the sample shows one entry in comments, each field under the
// one-line comment with its meaning; uncommented, the example loads.
TEST(ConfigDocsTest, SampleShowsEveryFieldOfAnEntryList) {
    const std::vector<std::string> text = lines(readFile(kSamplePath));
    for (const ConfigKey& key : configKeys()) {
        if (key.fields.empty()) continue;
        SCOPED_TRACE(key.path);
        const auto at = std::find(text.begin(), text.end(), key.path + ": []");
        ASSERT_NE(at, text.end()) << "no line '" << key.path << ": []' in the sample";
        // The comment block after it: an introduction, then the example.
        std::vector<std::string> example;
        for (auto it = at + 2; it != text.end() && it->starts_with("#"); ++it) {
            example.push_back(it->size() > 2 ? it->substr(2) : "");
        }
        ASSERT_FALSE(example.empty());
        ASSERT_EQ(example[0], key.path + ":");
        std::string yaml;
        for (const std::string& line : example) yaml += line + "\n";
        const ConfigLoad load = loadConfigText(yaml, "sample example", {});
        for (const ConfigError& e : load.errors) ADD_FAILURE() << e.toString();
        const YAML::Node entry = YAML::Load(yaml)[key.path][0];
        ASSERT_TRUE(entry.IsMap());
        for (const ConfigKey& field : key.fields) {
            const YAML::Node value = entry[field.path];
            if (!value.IsDefined()) {
                ADD_FAILURE() << field.path << " missing from the example";
                continue;
            }
            const int line = value.Mark().line;
            ASSERT_GE(line, 1);
            std::string own = trim(example[static_cast<size_t>(line)]);
            if (own.starts_with("- ")) own = own.substr(2);
            EXPECT_THAT(own, StartsWith(field.path + ":"));
            EXPECT_EQ(trim(example[static_cast<size_t>(line - 1)]), "# " + field.meaning);
        }
    }
}

}  // namespace
}  // namespace wsrelay
