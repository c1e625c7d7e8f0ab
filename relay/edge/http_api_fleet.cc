// The server API's fleet commands (docs/api.md): POST /api/disconnect, /api/subscribe,
// /api/unsubscribe, /api/channels, /api/channel, and /api/batch, which runs several of them.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "relay/edge/http_api.h"
#include "relay/edge/http_api_body.h"
#include "relay/edge/http_api_request.h"
#include "relay/session/worker_context.h"

namespace wsrelay {

// The path names the method: /api/<method>.
int HttpApi::fleetCommand(lws* wsi, Request& request) {
    const std::optional<FleetMethod> method =
        fleetMethod(request.route->path.substr(std::string_view("/api/").size()));
    const uint64_t id = park(wsi, request);
    fleet_api_.run(*method, request.body, [this, id](unsigned status, std::string body) {
        answerParked(id, status, std::move(body));
    });
    return 0;
}

// A batch runs its commands one after the other, each once the one before it was answered, so
// they act in the order given; the answer lists every command's status and body in that order.
// When the client goes away meanwhile, the commands not yet sent are not run.
struct HttpApi::Batch {
    std::vector<BatchBody::Command> commands;
    size_t next = 0;
    std::string replies = R"({"replies":[)";
};

int HttpApi::batch(lws* wsi, Request& request) {
    BatchBody body = parseBatchBody(parser_, request.body, kMaxBatchCommands);
    if (!body.ok()) return finish(wsi, request, 400, errorBody(body.error));
    auto state = std::make_shared<Batch>();
    state->commands = std::move(body.commands);
    runBatch(park(wsi, request), std::move(state));
    return 0;
}

void HttpApi::runBatch(uint64_t id, std::shared_ptr<Batch> state) {
    if (pending_.find(id) == pending_.end()) return;  // the client went away
    if (state->next == state->commands.size()) {
        answerParked(id, 200, state->replies + "]}");
        return;
    }
    const BatchBody::Command& command = state->commands[state->next];
    fleet_api_.run(
        command.method, command.params, [this, id, state](unsigned status, std::string body) {
            if (state->next++ != 0) state->replies += ',';
            state->replies += R"({"status":)" + std::to_string(status) + R"(,"body":)" + body + "}";
            runBatch(id, state);
        });
}

}  // namespace wsrelay
