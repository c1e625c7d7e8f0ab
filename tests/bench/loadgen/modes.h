#pragma once

// The load-generator modes. Each prints one JSON object on stdout (and a human summary on
// stderr) and returns the process exit status.

#include "options.h"

namespace wsrelay::loadgen {

int runFanout(const Options& options);
int runChat(const Options& options);
int runIdle(const Options& options);
int runHandshake(const Options& options);
int runSubscribeAck(const Options& options);
int runRecovery(const Options& options);

}  // namespace wsrelay::loadgen
