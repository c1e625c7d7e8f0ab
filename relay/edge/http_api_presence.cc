// POST /api/presence and /api/presence_stats: who is in a channel, fleet-wide (docs/api.md
// "Presence"), read through the worker's ChannelPresence.
#include "relay/edge/http_api_presence.h"

#include <optional>
#include <string>
#include <utility>

#include "relay/edge/http_api.h"
#include "relay/edge/http_api_request.h"
#include "relay/fanout/channel_rules.h"
#include "relay/fanout/publisher.h"
#include "relay/fleet/channel_presence.h"
#include "relay/protocol/protocol.h"
#include "relay/session/worker_context.h"

namespace wsrelay {

PresencePath presencePath(std::string_view path) {
    if (path == "/api/presence") return PresencePath::Members;
    if (path == "/api/presence_stats") return PresencePath::Stats;
    return PresencePath::None;
}

ApiPresenceBody parsePresenceBody(simdjson::dom::parser& parser, const std::string& body,
                                  size_t max_channel_bytes) {
    ApiPresenceBody out;
    simdjson::dom::object root;
    if (parser.parse(body).get(root) != simdjson::SUCCESS) {
        out.error = "body must be a JSON object";
        return out;
    }
    std::optional<simdjson::dom::element> channel;
    protocol::FieldsSeen seen;
    for (const simdjson::dom::key_value_pair field : root) {
        if (field.key != "channel") continue;  // other fields are ignored
        if (!seen.first(0)) {
            out.error = std::string(protocol::kDuplicateField) + ": channel";
            return out;
        }
        channel = field.value;
    }
    if (!channel || channel->get(out.channel) != simdjson::SUCCESS ||
        !protocol::validChannel(out.channel, max_channel_bytes)) {
        out.channel = {};
        out.error = "missing or invalid channel";
    }
    return out;
}

int HttpApi::readPresence(lws* wsi, Request& request) {
    const PresencePath path = presencePath(request.route->path);
    const ApiPresenceBody body = parsePresenceBody(
        parser_, request.body, static_cast<size_t>(ctx_.config.limits.max_channel_bytes));
    if (!body.ok()) return finish(wsi, request, 400, errorBody(body.error));
    if (ctx_.presence == nullptr || !ctx_.channels.presence(body.channel).enabled) {
        return finish(wsi, request, 405, errorBody(protocol::kNoPresence));
    }
    if (!ctx_.publisher.usable()) return finish(wsi, request, 503, errorBody("broker unavailable"));
    const uint64_t id = park(wsi, request);
    // The answer finds its request by id: a client that went away meanwhile took it from pending_.
    auto answer = [this, id](unsigned status, std::string response) {
        answerParked(id, status, std::move(response));
    };
    if (path == PresencePath::Stats) {
        ctx_.presence->stats(body.channel, [answer](ChannelPresence::Stats&& stats) {
            if (stats.status != FleetStatus::Ok) {
                answer(503, errorBody(protocol::kPresenceUnavailable));
                return;
            }
            answer(200, R"({"clients":)" + std::to_string(stats.clients) + R"(,"users":)" +
                            std::to_string(stats.users) + "}");
        });
        return 0;
    }
    ctx_.presence->members(
        body.channel, ctx_.config.presence.max_members,
        [answer, channel = std::string(body.channel)](ChannelPresence::Members&& members) {
            if (members.status != FleetStatus::Ok) {
                answer(503, errorBody(protocol::kPresenceUnavailable));
                return;
            }
            std::string out;
            protocol::appendPresenceBody(channel, members.members, members.cut, out);
            answer(200, std::move(out));
        });
    return 0;
}

}  // namespace wsrelay
