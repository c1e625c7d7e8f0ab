// wsrelay: argv -> config -> Server. The only file not linked into the tests.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "conf/config_json_schema.h"
#include "conf/config_loader.h"
#include "relay/common/log.h"
#include "relay/edge/server.h"

namespace {

constexpr const char* kUsage =
    "usage: wsrelay [--config FILE] [--check-config FILE] [--print-config-schema] [--help]\n"
    "               [--version]\n"
    "\n"
    "  --config FILE        run with FILE (YAML); without it the embedded defaults are used\n"
    "  --check-config FILE  validate FILE (and WSRELAY_* overrides), print every error, exit 0/1\n"
    "  --print-config-schema\n"
    "                       print the JSON Schema (draft-07) of the configuration file\n"
    "  --version            print the version\n"
    "  --help               this text and every configuration key\n"
    "\n"
    "Every key can be overridden by WSRELAY_<KEY_PATH> (websocket.max_message_bytes ->\n"
    "WSRELAY_WEBSOCKET_MAX_MESSAGE_BYTES). Docs: docs/config.md, docs/protocol.md.\n";

int printErrors(const wsrelay::ConfigLoad& load) {
    for (const auto& e : load.errors) fprintf(stderr, "%s\n", e.toString().c_str());
    return load.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path;
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            printf("%s\nConfiguration keys:\n%s", kUsage, wsrelay::describeConfigKeys().c_str());
            return 0;
        }
        if (arg == "--print-config-schema") {
            fputs(wsrelay::configJsonSchema().c_str(), stdout);
            return 0;
        }
        if (arg == "--version") {
            printf("wsrelay %s\n", WSRELAY_VERSION);
            return 0;
        }
        if ((arg == "--config" || arg == "--check-config") && i + 1 < argc) {
            check_only = arg == "--check-config";
            config_path = argv[++i];
            continue;
        }
        fprintf(stderr, "wsrelay: unknown or incomplete argument '%s'\n\n%s", arg.c_str(), kUsage);
        return 2;
    }

    wsrelay::Environment env = wsrelay::processEnvironment();
    wsrelay::ConfigLoad load = config_path.empty() ? wsrelay::loadDefaultConfig(env)
                                                   : wsrelay::loadConfigFile(config_path, env);
    if (check_only) {
        int rc = printErrors(load);
        if (rc == 0) printf("%s: ok\n", config_path.c_str());
        return rc;
    }
    if (!load.ok()) {
        printErrors(load);
        return 1;
    }

    wsrelay::log::setLevel(load.config.log.level);
    wsrelay::log::routeLibwebsockets();
    for (const auto& w : load.warnings) WSR_LOG(Debug, "config: %s", w.c_str());
    if (config_path.empty()) {
        WSR_LOG(Info, "no --config given: embedded defaults%s",
                load.config.broker.type == wsrelay::BrokerType::Memory
                    ? " (in-process broker, single instance)"
                    : " with WSRELAY_* overrides");
    }
    try {
        wsrelay::Server server(std::move(load.config));
        return server.run();
    } catch (const std::exception& e) {
        WSR_LOG(Error, "startup failed: %s", e.what());
        return 1;
    }
}
