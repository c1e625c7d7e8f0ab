#include "relay/hook/hook_bridge.h"

#include <algorithm>

#include "adapters/redis_payload.h"
#include "relay/common/log.h"
#include "relay/fanout/publisher.h"
#include "relay/fleet/fleet_id.h"
#include "relay/hook/hook_answer.h"
#include "relay/protocol/protocol.h"
#include "relay/session/session.h"
#include "relay/session/session_table.h"
#include "relay/session/worker_context.h"

namespace wsrelay {
namespace {

using protocol::ErrorCode;

// Events of one connection waiting behind its current one; beyond this its commands get
// 503 "hook busy" at once, like a full instance.
constexpr size_t kMaxQueuedPerConnection = 64;

void appendString(std::string& out, std::string_view key, std::string_view value) {
    out += ",\"";
    out += key;
    out += "\":";
    appendJsonString(value, out);
}

std::string minified(simdjson::dom::element e) { return simdjson::minify(e); }

// hook.max_queued_bytes is per instance: each worker bounds its share, like hook.max_in_flight.
HookQueues::Limits queueLimits(const Config::Hook& cfg, int workers) {
    HookQueues::Limits limits;
    limits.events_per_connection = kMaxQueuedPerConnection;
    limits.bytes_per_connection = static_cast<uint64_t>(cfg.max_queued_bytes_per_connection);
    limits.bytes = static_cast<uint64_t>(cfg.max_queued_bytes / std::max(1, workers));
    return limits;
}

}  // namespace

HookBridge::HookBridge(WorkerContext& ctx, Hook& hook)
    : ctx_(ctx), hook_(hook), queues_(queueLimits(ctx.config.hook, ctx.shared.workers)) {
    const auto& cfg = ctx.config.hook;
    for (const std::string& name : cfg.events) {
        for (size_t i = 0; i < kHookEventNames.size(); ++i) {
            if (name == kHookEventNames[i]) events_ |= 1u << i;
        }
    }
    // Routed publishes and send always reach the app.
    events_ |= 1u << static_cast<unsigned>(HookEvent::Message);
    for (const std::string& route : cfg.routes) {
        const size_t eq = route.rfind('=');
        Route r;
        r.pattern.add(route.substr(0, eq));
        const std::string_view target = std::string_view(route).substr(eq + 1);
        r.target = target == "hook"   ? PublishRoute::Hook
                   : target == "both" ? PublishRoute::Both
                                      : PublishRoute::Broker;
        routes_.push_back(std::move(r));
    }
}

HookBridge::~HookBridge() { ctx_.memory.sub(counted_bytes_); }

PublishRoute HookBridge::routeFor(std::string_view channel) const {
    for (const Route& r : routes_) {
        if (r.pattern.matches(channel)) return r.target;
    }
    return PublishRoute::Broker;
}

std::string HookBridge::baseBody(uint64_t connection, const std::string& user,
                                 const std::string& meta, HookEvent event) const {
    std::string body = "{\"event\":\"";
    body += hookEventName(event);
    body += "\",\"connection\":\"";
    body += fleet::connectionId(ctx_.shared.instance_id, connection);
    body += "\",\"user\":";
    if (user.empty()) {
        body += "null";
    } else {
        appendJsonString(user, body);
    }
    body += ",\"meta\":";
    body += meta;
    return body;
}

std::string HookBridge::body(uint64_t connection, const PendingHookEvent& event) {
    static const std::string kNoUser;
    static const std::string kNoMeta = "null";
    const std::string* user = &kNoUser;
    const std::string* meta = &kNoMeta;
    if (const HookQueues::Closed* gone = queues_.closed(connection)) {
        user = &gone->user;
        meta = &gone->meta;
    } else if (Session* session = ctx_.sessions.find(connection)) {
        user = &session->userId();
        meta = &session->hookState().meta;
    }
    std::string out = baseBody(connection, *user, *meta, event.event);
    switch (event.event) {
        case HookEvent::Subscribe: appendString(out, "channel", event.channel); break;
        case HookEvent::Message:
            if (event.rpc) {
                out += ",\"rpc\":true";
            } else {
                appendString(out, "channel", event.channel);
            }
            out += ",\"data\":";
            out += event.data;
            if (event.id) out += ",\"id\":" + std::to_string(*event.id);
            break;
        case HookEvent::Disconnect: out += ",\"code\":" + std::to_string(event.code); break;
        default: break;
    }
    out += '}';
    return out;
}

void HookBridge::syncQueuedBytes() {
    const auto bytes = static_cast<int64_t>(queues_.bytes());
    ctx_.metrics.hook_queued_bytes.set(bytes);
    // The memory budget counts them too (relay/common/memory_budget.h).
    if (bytes > counted_bytes_) ctx_.memory.add(bytes - counted_bytes_);
    if (bytes < counted_bytes_) ctx_.memory.sub(counted_bytes_ - bytes);
    counted_bytes_ = bytes;
}

void HookBridge::count(HookEvent event, metrics::HookResult result) {
    ctx_.metrics.hook_requests[event][result].add();
}

bool HookBridge::connect(uint64_t connection, const std::string& user,
                         const std::string& headers_json,
                         std::function<void(ConnectDecision&&)> decide) {
    std::string body = baseBody(connection, user, "null", HookEvent::Connect);
    body += ",\"headers\":" + headers_json + "}";
    const bool sent = hook_.send(
        HookEvent::Connect, std::move(body),
        [this, decide = std::move(decide)](HookResult&& result) {
            auto& m = ctx_.metrics;
            m.hook_in_flight.sub();
            --connects_in_flight_;
            m.hook_duration[HookEvent::Connect].observe(result.seconds);
            auto count = [&](metrics::HookResult r) { this->count(HookEvent::Connect, r); };
            ConnectDecision d;
            if (result.outcome == HookOutcome::Timeout) {
                count(metrics::HookResult::Timeout);
                d.message = "hook timeout";
            } else if (result.outcome == HookOutcome::Unavailable) {
                count(metrics::HookResult::Unavailable);
                d.message = "hook unavailable";
            } else if (result.outcome != HookOutcome::Ok) {
                count(metrics::HookResult::Error);
                d.message = "hook error";
            } else {
                std::optional<simdjson::dom::element> publish;
                d = hook_answer::connect(parser_, padded_, result.body, publish);
                count(d.kind == ConnectDecision::Kind::Allow  ? metrics::HookResult::Ok
                      : d.kind == ConnectDecision::Kind::Deny ? metrics::HookResult::Denied
                                                              : metrics::HookResult::Error);
                size_t over_budget = 0;  // counted and logged
                if (publish) {
                    warnUnpublished(HookEvent::Connect, publishFromAnswer(*publish, over_budget));
                }
            }
            decide(std::move(d));
            sendReady();  // a request slot is free
            syncQueuedBytes();
        });
    if (!sent) {
        count(HookEvent::Connect, metrics::HookResult::Overflow);
        return false;
    }
    ++connects_in_flight_;
    ctx_.metrics.hook_in_flight.add();
    return true;
}

void HookBridge::subscribe(Session& session, std::string_view channel, std::optional<uint64_t> id,
                           std::optional<protocol::Position> since) {
    PendingHookEvent e;
    e.event = HookEvent::Subscribe;
    e.channel = channel;
    e.id = id;
    if (since) {
        e.since = since->offset;
        e.since_epoch = since->epoch;
    }
    enqueue(session, std::move(e));
}

void HookBridge::message(Session& session, std::string_view channel, std::string_view data,
                         std::optional<uint64_t> id, PublishRoute route) {
    PendingHookEvent e;
    e.event = HookEvent::Message;
    e.channel = channel;
    e.data = data;
    e.id = id;
    e.route = route;
    enqueue(session, std::move(e));
}

void HookBridge::send(Session& session, std::string_view data, std::optional<uint64_t> id) {
    PendingHookEvent e;
    e.event = HookEvent::Message;
    e.rpc = true;
    e.data = data;
    e.id = id;
    enqueue(session, std::move(e));
}

void HookBridge::closed(uint64_t connection, std::string user, std::string meta,
                        std::optional<int> disconnect_code) {
    std::optional<PendingHookEvent> disconnect;
    if (disconnect_code) {
        disconnect.emplace();
        disconnect->event = HookEvent::Disconnect;
        disconnect->code = *disconnect_code;
    }
    // The disconnect goes after the connection's queued events; when there are none, it goes now,
    // or as soon as a request slot is free.
    if (queues_.close(connection, std::move(user), std::move(meta), std::move(disconnect))) {
        if (queues_.anyReady() || !sendCurrent(connection)) queues_.wait(connection);
    }
    syncQueuedBytes();
}

void HookBridge::enqueue(Session& session, PendingHookEvent event) {
    const uint64_t connection = session.id();
    const HookEvent kind = event.event;
    const std::optional<uint64_t> id = event.id;
    switch (queues_.push(connection, std::move(event))) {
        case HookQueues::Push::Queued: syncQueuedBytes(); return;
        case HookQueues::Push::Current:
            // Nothing of this connection is pending: it goes now, or is refused like a full
            // instance (nothing is queued at max_in_flight; events waiting for a slot mean the
            // hook is at max_in_flight).
            if (!queues_.anyReady() && sendCurrent(connection)) {
                syncQueuedBytes();
                return;
            }
            queues_.finish(connection);
            break;
        case HookQueues::Push::Full: break;
    }
    count(kind, metrics::HookResult::Overflow);
    session.error(id, ErrorCode::BrokerUnavailable, "hook busy");
}

bool HookBridge::sendCurrent(uint64_t connection) {
    PendingHookEvent& e = *queues_.current(connection);
    if (!hook_.send(e.event, body(connection, e),
                    [this, connection](HookResult&& r) { onAnswer(connection, std::move(r)); })) {
        return false;
    }
    queues_.sent(connection);
    // The request holds the data now; the event keeps it only for a `both` route, which
    // publishes it once the app has answered.
    if (e.event == HookEvent::Message && (e.rpc || e.route != PublishRoute::Both)) {
        std::string().swap(e.data);
    }
    ctx_.metrics.hook_in_flight.add();
    return true;
}

void HookBridge::sendReady() {
    while (const std::optional<uint64_t> connection = queues_.firstReady()) {
        if (!sendCurrent(*connection)) return;
        queues_.popReady();
    }
}

size_t HookBridge::abandon() {
    auto& m = ctx_.metrics;
    size_t in_flight = connects_in_flight_;
    for (size_t i = 0; i < connects_in_flight_; ++i) {
        count(HookEvent::Connect, metrics::HookResult::Abandoned);
    }
    const size_t connects = connects_in_flight_;
    connects_in_flight_ = 0;
    const size_t events = queues_.abandon([&](const PendingHookEvent& e, bool sent) {
        count(e.event, metrics::HookResult::Abandoned);
        if (sent) ++in_flight;
    });
    m.hook_in_flight.sub(static_cast<int64_t>(in_flight));
    syncQueuedBytes();
    const size_t total = connects + events;
    if (total > 0) {
        WSR_LOG(Warn,
                "stopping: %zu hook events abandoned: %zu sent and not answered, %zu never sent "
                "(hook.timeout_ms + 1 s have passed)",
                total, in_flight, total - in_flight);
    }
    return total;
}

void HookBridge::onAnswer(uint64_t connection, HookResult&& result) {
    auto& m = ctx_.metrics;
    m.hook_in_flight.sub();
    const PendingHookEvent event = queues_.finish(connection);
    m.hook_duration[event.event].observe(result.seconds);
    // Null once the connection has closed; a disconnect's never exists.
    Session* session =
        event.event == HookEvent::Disconnect ? nullptr : ctx_.sessions.find(connection);

    auto fail = [&](metrics::HookResult r, std::string_view reason) {
        count(event.event, r);
        if (session != nullptr) session->error(event.id, ErrorCode::HookFailed, reason);
    };

    simdjson::dom::object answer;
    bool has_answer = false;
    switch (result.outcome) {
        case HookOutcome::Timeout: fail(metrics::HookResult::Timeout, "hook timeout"); break;
        case HookOutcome::Unavailable:
            fail(metrics::HookResult::Unavailable, "hook unavailable");
            break;
        case HookOutcome::Error:
        case HookOutcome::Ok: {
            const bool empty = result.body.find_first_not_of(" \t\r\n") == std::string::npos;
            if (result.outcome == HookOutcome::Error && empty) {
                fail(metrics::HookResult::Error, "hook error");
                break;
            }
            // An empty 2xx (204) carries no commands: read as {}.
            padded_.assign(empty ? std::string_view("{}") : std::string_view(result.body));
            const size_t length = padded_.size();
            padded_.append(simdjson::SIMDJSON_PADDING, '\0');
            if (parser_.parse(padded_.data(), length, false).get_object().get(answer) !=
                simdjson::SUCCESS) {
                fail(metrics::HookResult::Error, "hook error");
                break;
            }
            int code = 0;
            std::string message;
            if (hook_answer::error(answer, code, message)) {
                count(event.event, metrics::HookResult::Error);
                if (session != nullptr) {
                    session->error(event.id, static_cast<ErrorCode>(code), message);
                }
                break;
            }
            if (result.outcome == HookOutcome::Error) {
                fail(metrics::HookResult::Error, "hook error");
                break;
            }
            has_answer = true;
            break;
        }
        case HookOutcome::kCount: break;
    }
    if (has_answer) {
        std::string why;
        if (hook_answer::deny(answer, why)) {
            count(event.event, metrics::HookResult::Denied);
            if (session != nullptr) session->error(event.id, ErrorCode::Forbidden, why);
        } else {
            count(event.event, metrics::HookResult::Ok);
            apply(session, event, answer);
        }
    }
    // A request slot is free: the connection's next event competes for it with those waiting.
    if (queues_.current(connection) != nullptr) {
        if (queues_.anyReady() || !sendCurrent(connection)) queues_.wait(connection);
    }
    sendReady();
    syncQueuedBytes();
}

void HookBridge::apply(Session* session, const PendingHookEvent& pending,
                       simdjson::dom::object answer) {
    simdjson::dom::element e;
    // Publishes run even when the connection has gone: a chat message must not vanish because
    // its sender closed the tab.
    size_t unpublished = 0;  // the broker could not take them
    size_t over_budget = 0;  // refused: the memory budget is full (counted and logged)
    if (answer["publish"].get(e) == simdjson::SUCCESS) {
        unpublished = publishFromAnswer(e, over_budget);
    }
    if (session == nullptr || session->closing()) {
        warnUnpublished(pending.event, unpublished);
        return;
    }

    if (answer["meta"].get(e) == simdjson::SUCCESS) session->hookState().meta = minified(e);
    simdjson::dom::array list;
    std::string_view channel;
    if (answer["unsubscribe"].get_array().get(list) == simdjson::SUCCESS) {
        for (simdjson::dom::element c : list) {
            if (c.get_string().get(channel) == simdjson::SUCCESS) session->leave(channel, "hook");
        }
    }
    if (answer["subscribe"].get_array().get(list) == simdjson::SUCCESS) {
        for (simdjson::dom::element c : list) {
            if (c.get_string().get(channel) == simdjson::SUCCESS) session->join(channel);
        }
    }

    simdjson::dom::element reply;
    const bool answered = answer["reply"].get(reply) == simdjson::SUCCESS;
    if (pending.event == HookEvent::Message && (unpublished > 0 || over_budget > 0)) {
        // What the command asked for was published through the app, and the broker could not
        // take it (or the memory budget is full): the client gets that error, not a reply or an
        // ack that would say it went out.
        session->error(
            pending.id, ErrorCode::BrokerUnavailable,
            unpublished > 0 ? std::string_view("broker unavailable") : protocol::kMemoryBudgetFull);
    } else {
        warnUnpublished(pending.event, unpublished);
        if (answered) session->reply(protocol::encodeReply(pending.id, minified(reply)));
        switch (pending.event) {
            case HookEvent::Subscribe: {
                std::optional<protocol::Position> since;
                if (pending.since) since = protocol::Position{*pending.since, pending.since_epoch};
                session->subscribeAndAnswer(pending.channel, answered ? std::nullopt : pending.id,
                                            since);
                break;
            }
            case HookEvent::Message:
                if (!pending.rpc && pending.route == PublishRoute::Both) {
                    // The app may rewrite what goes to the channel; the broker's result acks it.
                    std::string data =
                        answer["data"].get(e) == simdjson::SUCCESS ? minified(e) : pending.data;
                    session->publishNow(pending.channel, data,
                                        answered ? std::nullopt : pending.id);
                } else if (pending.id && !answered) {
                    session->reply(protocol::encodeAck(*pending.id));
                }
                break;
            default: break;
        }
    }

    if (hook_answer::command(answer, "disconnect", e)) {
        int64_t code = 4000;
        if (e["code"].get_int64().get(code) != simdjson::SUCCESS || code < 4000 || code > 4999) {
            code = 4000;
        }
        std::string_view reason;
        if (e["reason"].get_string().get(reason) != simdjson::SUCCESS)
            reason = "disconnected by the app";
        session->closeWith(static_cast<int>(code), reason);
    }
}

void HookBridge::warnUnpublished(HookEvent event, size_t count) {
    if (count == 0) return;
    WSR_LOG(Warn,
            "the answer to a %s hook event had %zu publishes the broker could not take "
            "(unavailable); nobody was told",
            hookEventName(event), count);
}

size_t HookBridge::publishFromAnswer(simdjson::dom::element list, size_t& over_budget) {
    simdjson::dom::array items;
    if (list.get_array().get(items) != simdjson::SUCCESS) return 0;
    size_t refused = 0;
    const auto max_channel = static_cast<size_t>(ctx_.config.limits.max_channel_bytes);
    for (simdjson::dom::element item : items) {
        std::string_view channel;
        simdjson::dom::element data;
        if (item["channel"].get_string().get(channel) != simdjson::SUCCESS ||
            item["data"].get(data) != simdjson::SUCCESS ||
            !protocol::validChannel(channel, max_channel)) {
            WSR_LOG(Warn, "hook answer: a publish without a valid channel and data was ignored");
            continue;
        }
        if (!ctx_.publisher.usable()) {
            ctx_.metrics.broker_publish_failures.add();
            ++refused;
            continue;
        }
        const std::string payload = minified(data);
        if (!ctx_.publisher.admit(channel, payload, metrics::MessageSource::Hook))
            continue;                                                  // logged
        if (ctx_.publisher.budgetFull(metrics::PublishEntry::Hook)) {  // counted and logged
            ++over_budget;
            continue;
        }
        ctx_.publisher.publish(channel, payload, PublishTicket{});
    }
    return refused;
}

}  // namespace wsrelay
