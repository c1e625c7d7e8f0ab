#pragma once

#include <simdjson.h>

#include <functional>
#include <string>
#include <string_view>

#include "relay/edge/http_api_body.h"

namespace wsrelay {

struct WorkerContext;

// The asking side of the server API's fleet commands (docs/api.md): reads a command's params,
// sends the command through the worker's FleetControl to every worker (a user, a listing) or to
// one connection's worker, and adds up their answers into the API's answer. Used by HttpApi (the
// endpoints and /api/batch) and by HookBridge (an answer's "commands"). Single-threaded.
class FleetApi {
public:
    // The answer: an HTTP status and its JSON body. Called exactly once, possibly from inside
    // run() (a refusal) or on a later loop turn (the fleet's answer).
    using Done = std::function<void(unsigned status, std::string body)>;

    // Commands go through ctx.fleet, read when each runs; null: every one is answered 503.
    explicit FleetApi(WorkerContext& ctx);

    // Runs `method` with `params` (a JSON object's text).
    void run(FleetMethod method, const std::string& params, Done done);

private:
    WorkerContext& ctx_;
    simdjson::dom::parser parser_;
};

}  // namespace wsrelay
