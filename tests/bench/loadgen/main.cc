// wsrelay_loadgen: the benchmark load generator (see tests/bench/README.md).

#include <cstdio>

#include "modes.h"
#include "options.h"
#include "process_info.h"

int main(int argc, char** argv) {
    using namespace wsrelay::loadgen;
    Options options = parseOptions(argc, argv);
    installSignalHandlers();
    raiseFileLimit();
    switch (options.mode) {
        case Mode::Fanout: return runFanout(options);
        case Mode::Chat: return runChat(options);
        case Mode::Idle: return runIdle(options);
        case Mode::Handshake: return runHandshake(options);
        case Mode::SubscribeAck: return runSubscribeAck(options);
        case Mode::Recovery: return runRecovery(options);
    }
    return 2;
}
