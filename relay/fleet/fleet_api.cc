#include "relay/fleet/fleet_api.h"

#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "adapters/redis_payload.h"
#include "relay/fleet/fleet_control.h"
#include "relay/fleet/fleet_id.h"
#include "relay/session/worker_context.h"

namespace wsrelay {
namespace {

std::string errorBody(std::string_view reason) {
    std::string out = R"({"error":)";
    appendJsonString(reason, out);
    return out + "}";
}

// The command's arguments as the workers read them (FleetCommands): JSON members, no braces.
std::string fieldsOf(const FleetCommandBody& body) {
    std::string out;
    auto member = [&out](std::string_view name) {
        if (!out.empty()) out += ',';
        out += '"';
        out += name;
        out += "\":";
    };
    if (!body.user.empty()) {
        member("user");
        appendJsonString(body.user, out);
    } else if (!body.connection.empty()) {
        member("connection");
        appendJsonString(body.connection, out);
    }
    switch (body.method) {
        case FleetMethod::Disconnect:
            member("code");
            out += std::to_string(body.code);
            if (!body.reason.empty()) {
                member("reason");
                appendJsonString(body.reason, out);
            }
            break;
        case FleetMethod::Subscribe:
        case FleetMethod::Unsubscribe:
            member("channels");
            out += '[';
            for (size_t i = 0; i < body.channels.size(); ++i) {
                if (i != 0) out += ',';
                appendJsonString(body.channels[i], out);
            }
            out += ']';
            break;
        case FleetMethod::Channels:
            if (!body.pattern.empty()) {
                member("pattern");
                appendJsonString(body.pattern, out);
            }
            member("limit");
            out += std::to_string(body.limit);
            break;
        case FleetMethod::Channel:
            member("channel");
            appendJsonString(body.channel, out);
            break;
    }
    return out;
}

// Adds up the workers' results into the API's answer body.
class Tally {
public:
    Tally(FleetMethod method, std::string channel, uint64_t limit)
        : method_(method), channel_(std::move(channel)), limit_(limit) {}

    std::string answer(const FleetControl::Answers& answers) {
        for (const std::string& result : answers.results) add(result);
        std::string out;
        switch (method_) {
            case FleetMethod::Disconnect:
            case FleetMethod::Subscribe:
            case FleetMethod::Unsubscribe: out = R"({"affected":)" + std::to_string(count_); break;
            case FleetMethod::Channels: {
                out = R"({"channels":[)";
                size_t n = 0;
                for (const auto& [name, subscribers] : channels_) {
                    if (n == limit_) {
                        truncated_ = true;
                        break;
                    }
                    if (n++ != 0) out += ',';
                    out += R"({"channel":)";
                    appendJsonString(name, out);
                    out += R"(,"subscribers":)" + std::to_string(subscribers) + "}";
                }
                out += truncated_ ? R"(],"truncated":true)" : R"(],"truncated":false)";
                break;
            }
            case FleetMethod::Channel:
                out = R"({"channel":)";
                appendJsonString(channel_, out);
                out += R"(,"subscribers":)" + std::to_string(count_);
                break;
        }
        out += R"(,"workers":)" + std::to_string(answers.results.size());
        out += R"(,"unanswered":)" + std::to_string(answers.unanswered());
        if (malformed_ != 0) out += R"(,"malformed":)" + std::to_string(malformed_);
        return out + "}";
    }

private:
    // One worker's result; one that cannot be read is counted ("malformed"), never dropped
    // silently.
    void add(const std::string& result) {
        simdjson::dom::object object;
        if (parser_.parse(result).get(object) != simdjson::SUCCESS) {
            ++malformed_;
            return;
        }
        uint64_t n = 0;
        switch (method_) {
            case FleetMethod::Disconnect:
            case FleetMethod::Subscribe:
            case FleetMethod::Unsubscribe:
                if (object["affected"].get(n) != simdjson::SUCCESS) ++malformed_;
                count_ += n;
                return;
            case FleetMethod::Channel:
                if (object["subscribers"].get(n) != simdjson::SUCCESS) ++malformed_;
                count_ += n;
                return;
            case FleetMethod::Channels: {
                simdjson::dom::array list;
                if (object["channels"].get(list) != simdjson::SUCCESS) {
                    ++malformed_;
                    return;
                }
                bool cut = false;
                if (object["truncated"].get(cut) == simdjson::SUCCESS && cut) truncated_ = true;
                for (simdjson::dom::element pair : list) {
                    std::string_view name;
                    if (pair.at(0).get(name) != simdjson::SUCCESS ||
                        pair.at(1).get(n) != simdjson::SUCCESS) {
                        ++malformed_;
                        continue;
                    }
                    channels_[std::string(name)] += n;
                }
                return;
            }
        }
    }

    const FleetMethod method_;
    const std::string channel_;
    const uint64_t limit_;
    simdjson::dom::parser parser_;
    uint64_t count_ = 0;
    size_t malformed_ = 0;
    bool truncated_ = false;
    std::map<std::string, uint64_t> channels_;  // by name: the answer lists them in byte order
};

}  // namespace

FleetApi::FleetApi(WorkerContext& ctx) : ctx_(ctx) {}

void FleetApi::run(FleetMethod method, const std::string& params, Done done) {
    const FleetCommandBody body = parseFleetCommandBody(
        parser_, params, method, static_cast<size_t>(ctx_.config.limits.max_channel_bytes));
    if (!body.ok()) {
        done(400, errorBody(body.error));
        return;
    }
    FleetControl* const fleet = ctx_.fleet;
    if (fleet == nullptr) {
        done(503, errorBody("fleet commands unavailable"));
        return;
    }
    // A connection's command goes to its worker's inbox only; one whose id names no worker of
    // the fleet affects nobody.
    std::string target;
    if (!body.connection.empty()) {
        const auto ref = fleet::parseConnectionId(body.connection);
        if (!ref) {
            done(200, R"({"affected":0,"workers":0,"unanswered":0})");
            return;
        }
        target = fleet::workerAddress(ref->instance, ref->worker);
    }
    auto tally = std::make_shared<Tally>(method, std::string(body.channel), body.limit);
    const FleetControl::Ask sent = fleet->ask(target, methodName(method), fieldsOf(body),
                                              [tally, done](FleetControl::Answers&& answers) {
                                                  if (answers.unavailable) {
                                                      done(503, errorBody("broker unavailable"));
                                                      return;
                                                  }
                                                  done(200, tally->answer(answers));
                                              });
    if (sent == FleetControl::Ask::Busy) {
        done(503, errorBody("too many fleet commands under way (fleet.max_pending_commands)"));
    }
}

}  // namespace wsrelay
