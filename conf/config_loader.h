#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"

// Loads a Config from YAML and WSRELAY_* environment variables, checked against the key table in
// conf/config_schema.cc. Never throws: every problem found is returned, not just the first.
namespace wsrelay {

using Environment = std::map<std::string, std::string>;

// The process environment (`environ`), for the callers that do not test anything.
Environment processEnvironment();

struct ConfigError {
    std::string source;  // file path, or "env WSRELAY_X" for an environment variable
    int line = 0;        // 1-based; 0 when there is no position (environment, unreadable file)
    int column = 0;      // 1-based
    std::string key;     // dotted key path, "" when the error is not about one key
    std::string message;

    // "file.yaml:3:12: listen.port: cannot convert 'eighty' to an integer", or without a position
    // "source: message" (an env source already names the key).
    std::string toString() const;
};

struct ConfigLoad {
    Config config;  // the defaults of conf/config.h, overridden by every value that was valid
    std::vector<ConfigError> errors;
    // Unknown WSRELAY_* variables (Kubernetes injects WSRELAY_PORT, WSRELAY_SERVICE_HOST, ... for
    // a Service named wsrelay): worth a debug line, never an error.
    std::vector<std::string> warnings;

    bool ok() const { return errors.empty(); }
};

// An unreadable file is one error. The environment wins over the file.
ConfigLoad loadConfigFile(const std::string& path, const Environment& env);
// `source` names the text in errors (usually its path).
ConfigLoad loadConfigText(std::string_view yaml, const std::string& source, const Environment& env);
// The table's defaults plus the environment.
ConfigLoad loadDefaultConfig(const Environment& env);

// Every key with its type, default, range, env name and meaning, for `wsrelay --help`.
std::string describeConfigKeys();

}  // namespace wsrelay
