#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "adapters/hook_event.h"

// The seam to the app server (docs/hook.md): an event goes out as a JSON body, its answer comes
// back on the worker's loop. HttpHook is the only implementation outside tests.
namespace wsrelay {

enum class HookOutcome : uint8_t {
    Ok,           // 2xx; `body` is the answer (may be empty)
    Error,        // the app answered, but not 2xx
    Timeout,      // no complete answer within hook.timeout_ms
    Unavailable,  // could not connect, connection reset, or another transport failure
    kCount
};

struct HookResult {
    HookOutcome outcome = HookOutcome::Unavailable;
    long status = 0;     // HTTP status when the app answered
    std::string body;    // the answer's body (2xx or not)
    double seconds = 0;  // from send() to the answer, retries included
};

using HookDone = std::function<void(HookResult&&)>;

class Hook {
public:
    virtual ~Hook() = default;
    // Starts one request. False (and `done` never called) when hook.max_in_flight requests are
    // already under way on this worker: the caller refuses the command. `done` runs on the loop,
    // never inside send(), and never after the Hook is destroyed.
    virtual bool send(HookEvent event, std::string body, HookDone done) = 0;
    virtual size_t inFlight() const = 0;
};

}  // namespace wsrelay
