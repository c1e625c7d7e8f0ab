// docs/config.md and conf/wsrelay.sample.yaml are checked against the key table, so neither can
// drift from the code.
#include <yaml-cpp/yaml.h>

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
    std::vector<std::string> cells;  // Key | Type | Default | Range/values | Env | Meaning
};

// Rows of the key tables: the ones whose first cell is a `code` span.
std::vector<Row> keyRows(const std::string& markdown) {
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

}  // namespace
}  // namespace wsrelay
