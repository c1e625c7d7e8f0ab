#include "relay/fleet/fleet_control.h"

#include <charconv>
#include <utility>

#include "metrics/relay_metrics.h"
#include "relay/common/log.h"
#include "relay/fleet/fleet_calls.h"
#include "relay/fleet/fleet_id.h"

namespace wsrelay {

struct FleetControl::Pending {
    FleetControl* owner = nullptr;
    uint64_t id = 0;
    Done done;
    Answers answers;
    bool counted = false;  // the publish answered: answers.expected is known
    ev_timer timer{};
};

FleetControl::FleetControl(struct ev_loop* loop, FleetCalls& calls, Options options,
                           metrics::WorkerMetrics* metrics)
    : loop_(loop), calls_(calls), options_(std::move(options)), metrics_(metrics),
      address_(fleet::workerAddress(options_.instance, options_.worker)),
      inbox_(fleet::inboxChannel(address_)) {}

FleetControl::~FleetControl() {
    for (auto& [id, pending] : pending_) ev_timer_stop(loop_, &pending->timer);
}

std::vector<std::string> FleetControl::channels() const {
    return {std::string(fleet::kControlChannel), inbox_};
}

void FleetControl::on(std::string cmd, Handler handler) {
    handlers_[std::move(cmd)] = std::move(handler);
}

std::string FleetControl::targetChannel(std::string_view target) const {
    return target.empty() ? std::string(fleet::kControlChannel) : fleet::inboxChannel(target);
}

namespace {
std::string message(std::string_view id, std::string_view cmd, std::string_view fields) {
    std::string out = "{";
    if (!id.empty()) {
        out += "\"q\":\"";
        out += id;
        out += "\",";
    }
    out += "\"cmd\":\"";
    out += cmd;  // command names are the relay's own: [a-z_]
    out += '"';
    if (!fields.empty()) {
        out += ',';
        out += fields;
    }
    out += '}';
    return out;
}
}  // namespace

FleetControl::Ask FleetControl::ask(std::string_view target, std::string_view cmd,
                                    std::string_view fields, Done done) {
    if (pending_.size() >= options_.max_pending) {
        if (metrics_ != nullptr) metrics_->fleet_asks[metrics::FleetAskResult::Busy].add();
        return Ask::Busy;
    }
    const uint64_t id = next_id_++;
    auto pending = std::make_unique<Pending>();
    pending->owner = this;
    pending->id = id;
    pending->done = std::move(done);
    ev_timer_init(&pending->timer, onTimeout, options_.timeout_s, 0.);
    pending->timer.data = pending.get();
    ev_timer_start(loop_, &pending->timer);
    pending_.emplace(id, std::move(pending));

    const std::string request_id = address_ + ":" + std::to_string(id);
    calls_.call("publish", targetChannel(target), {message(request_id, cmd, fields)},
                [this, id](FleetReply&& reply) {
                    auto it = pending_.find(id);
                    if (it == pending_.end()) return;  // timed out already
                    Pending& p = *it->second;
                    p.counted = true;
                    if (reply.status != FleetStatus::Ok) {
                        p.answers.unavailable = true;
                    } else {
                        p.answers.expected =
                            reply.integer > 0 ? static_cast<uint64_t>(reply.integer) : 0;
                    }
                    // Replies may have overtaken the publish's own answer.
                    if (p.answers.unavailable || p.answers.results.size() >= p.answers.expected) {
                        finish(id);
                    }
                });
    return Ask::Sent;
}

void FleetControl::tell(std::string_view target, std::string_view cmd, std::string_view fields) {
    calls_.call("publish", targetChannel(target), {message({}, cmd, fields)});
}

void FleetControl::finish(uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    std::unique_ptr<Pending> p = std::move(it->second);
    pending_.erase(it);
    ev_timer_stop(loop_, &p->timer);
    if (metrics_ != nullptr) {
        const metrics::FleetAskResult result =
            p->answers.unavailable                       ? metrics::FleetAskResult::Unavailable
            : p->answers.unanswered() > 0 || !p->counted ? metrics::FleetAskResult::Timeout
                                                         : metrics::FleetAskResult::Complete;
        metrics_->fleet_asks[result].add();
    }
    if (!p->counted && !p->answers.unavailable) {
        // The publish itself never answered: nobody knows how many were reached.
        p->answers.unavailable = true;
    }
    p->done(std::move(p->answers));
}

void FleetControl::onTimeout(struct ev_loop*, ev_timer* w, int) {
    auto* p = static_cast<Pending*>(w->data);
    p->owner->finish(p->id);
}

void FleetControl::onMessage(std::string_view channel, std::string_view data) {
    (void)channel;
    simdjson::dom::element root;
    simdjson::dom::object object;
    if (parser_.parse(data.data(), data.size()).get(root) != simdjson::SUCCESS ||
        root.get_object().get(object) != simdjson::SUCCESS) {
        if (metrics_ != nullptr) {
            metrics_->fleet_messages[metrics::FleetMessageResult::Malformed].add();
        }
        WSR_LOG(Warn, "fleet: a control message that is not a JSON object was dropped");
        return;
    }
    std::string_view text;
    if (object["a"].get_string().get(text) == simdjson::SUCCESS) {
        handleReply(object, text);
        return;
    }
    if (object["cmd"].get_string().get(text) == simdjson::SUCCESS) {
        handleCommand(object, text);
        return;
    }
    if (metrics_ != nullptr) metrics_->fleet_messages[metrics::FleetMessageResult::Malformed].add();
    WSR_LOG(Warn, "fleet: a control message with neither \"cmd\" nor \"a\" was dropped");
}

void FleetControl::handleCommand(const simdjson::dom::object& command, std::string_view cmd) {
    auto it = handlers_.find(std::string(cmd));
    std::string result;
    if (it == handlers_.end()) {
        // A newer relay's command during a rolling update: answered, so the asker does not wait
        // for this worker until its timeout.
        if (metrics_ != nullptr) {
            metrics_->fleet_messages[metrics::FleetMessageResult::Unknown].add();
        }
        result = R"({"error":"unknown command"})";
    } else {
        if (metrics_ != nullptr) {
            metrics_->fleet_messages[metrics::FleetMessageResult::Handled].add();
        }
        result = it->second(command);
    }
    std::string_view id;
    if (command["q"].get_string().get(id) != simdjson::SUCCESS) return;  // one-way
    const size_t colon = id.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return;
    std::string reply = "{\"a\":\"";
    reply += id;
    reply += "\",\"r\":";
    reply += result;
    reply += '}';
    calls_.call("publish", fleet::inboxChannel(id.substr(0, colon)), {std::move(reply)});
}

void FleetControl::handleReply(const simdjson::dom::object& message, std::string_view id) {
    const size_t colon = id.rfind(':');
    uint64_t n = 0;
    if (colon == std::string_view::npos || id.substr(0, colon) != address_ ||
        std::from_chars(id.data() + colon + 1, id.data() + id.size(), n).ec != std::errc()) {
        if (metrics_ != nullptr) {
            metrics_->fleet_messages[metrics::FleetMessageResult::Malformed].add();
        }
        return;
    }
    auto it = pending_.find(n);
    if (it == pending_.end()) {
        // Its ask timed out already: the asker reported it as unanswered.
        if (metrics_ != nullptr) metrics_->fleet_messages[metrics::FleetMessageResult::Late].add();
        return;
    }
    simdjson::dom::element result;
    if (message["r"].get(result) != simdjson::SUCCESS) {
        if (metrics_ != nullptr) {
            metrics_->fleet_messages[metrics::FleetMessageResult::Malformed].add();
        }
        return;
    }
    Pending& p = *it->second;
    p.answers.results.push_back(simdjson::minify(result));
    if (p.counted && p.answers.results.size() >= p.answers.expected) finish(n);
}

}  // namespace wsrelay
