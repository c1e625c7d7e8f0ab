#include "relay/hook_bridge.h"

#include "adapters/redis_payload.h"
#include "relay/log.h"
#include "relay/protocol.h"
#include "relay/session.h"
#include "relay/worker.h"

namespace wsrelay {
namespace {

using protocol::ErrorCode;

// Events of one connection waiting behind the one in flight; beyond this its commands get
// 503 "hook busy" at once, like a full instance.
constexpr size_t kMaxQueuedPerSession = 64;

void appendString(std::string& out, std::string_view key, std::string_view value) {
    out += ",\"";
    out += key;
    out += "\":";
    appendJsonString(value, out);
}

std::string minified(simdjson::dom::element e) { return simdjson::minify(e); }

// The app's {"error":{"code":N,"message":M}}: a 4xx code is passed to the client as is, anything
// else becomes 502.
bool appError(simdjson::dom::object answer, int& code, std::string& message) {
    simdjson::dom::object error;
    if (answer["error"].get_object().get(error) != simdjson::SUCCESS) return false;
    int64_t c = 0;
    code = error["code"].get_int64().get(c) == simdjson::SUCCESS && c >= 400 && c < 500
               ? static_cast<int>(c)
               : static_cast<int>(ErrorCode::HookFailed);
    std::string_view m;
    message = error["message"].get_string().get(m) == simdjson::SUCCESS ? std::string(m)
                                                                        : "hook error";
    return true;
}

bool deny(simdjson::dom::object answer, std::string& message) {
    simdjson::dom::element d;
    if (answer["deny"].get(d) != simdjson::SUCCESS) return false;
    std::string_view m;
    message = d["message"].get_string().get(m) == simdjson::SUCCESS ? std::string(m) : "denied";
    return true;
}

}  // namespace

HookBridge::HookBridge(Worker& worker, Hook& hook) : worker_(worker), hook_(hook) {
    const auto& cfg = worker.config().hook;
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
        r.target = target == "hook" ? PublishRoute::Hook
                   : target == "both" ? PublishRoute::Both
                                      : PublishRoute::Broker;
        routes_.push_back(std::move(r));
    }
}

HookBridge::~HookBridge() = default;

PublishRoute HookBridge::routeFor(std::string_view channel) const {
    for (const Route& r : routes_) {
        if (r.pattern.matches(channel)) return r.target;
    }
    return PublishRoute::Broker;
}

std::string HookBridge::baseBody(Session& session, HookEvent event) const {
    return baseBody(session.id(), session.userId(), session.hookState().meta, event);
}

std::string HookBridge::baseBody(uint64_t connection, const std::string& user,
                                 const std::string& meta, HookEvent event) const {
    std::string body = "{\"event\":\"";
    body += kHookEventNames[static_cast<size_t>(event)];
    body += "\",\"connection\":\"";
    body += std::to_string(connection);
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

bool HookBridge::connect(uint64_t connection, const std::string& user,
                         const std::string& headers_json,
                         std::function<void(ConnectDecision&&)> decide) {
    std::string body = baseBody(connection, user, "null", HookEvent::Connect);
    body += ",\"headers\":" + headers_json + "}";
    auto& m = worker_.metrics();
    const bool sent = hook_.send(
        HookEvent::Connect, std::move(body),
        [this, decide = std::move(decide)](HookResult&& result) {
            auto& m = worker_.metrics();
            m.hook_in_flight.sub();
            m.hook_duration[static_cast<size_t>(HookEvent::Connect)].observe(result.seconds);
            auto count = [&](metrics::HookResult r) {
                m.hook_requests[static_cast<size_t>(HookEvent::Connect)][static_cast<size_t>(r)].add();
            };
            ConnectDecision d;
            simdjson::dom::object answer;
            const bool empty = result.body.find_first_not_of(" \t\r\n") == std::string::npos;
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
                padded_.assign(empty ? std::string_view("{}") : std::string_view(result.body));
                const size_t length = padded_.size();
                padded_.append(simdjson::SIMDJSON_PADDING, '\0');
                int code = 0;
                std::string why;
                if (parser_.parse(padded_.data(), length, false).get_object().get(answer) !=
                        simdjson::SUCCESS ||
                    appError(answer, code, why)) {
                    count(metrics::HookResult::Error);
                    d.message = "hook error";
                } else if (deny(answer, why)) {
                    count(metrics::HookResult::Denied);
                    d.kind = ConnectDecision::Kind::Deny;
                    d.message = why;
                } else {
                    count(metrics::HookResult::Ok);
                    d.kind = ConnectDecision::Kind::Allow;
                    simdjson::dom::element e;
                    std::string_view text;
                    if (answer["user"].get_string().get(text) == simdjson::SUCCESS) d.user = text;
                    if (answer["meta"].get(e) == simdjson::SUCCESS) d.meta = minified(e);
                    simdjson::dom::array list;
                    if (answer["subscribe"].get_array().get(list) == simdjson::SUCCESS) {
                        for (simdjson::dom::element c : list) {
                            if (c.get_string().get(text) == simdjson::SUCCESS) d.channels.emplace_back(text);
                        }
                    }
                    if (answer["publish"].get(e) == simdjson::SUCCESS) publishFromAnswer(e);
                }
            }
            decide(std::move(d));
        });
    if (!sent) {
        m.hook_requests[static_cast<size_t>(HookEvent::Connect)][static_cast<size_t>(metrics::HookResult::Overflow)].add();
        return false;
    }
    m.hook_in_flight.add();
    return true;
}

void HookBridge::subscribe(Session& session, std::string_view channel, std::optional<uint64_t> id) {
    HookSessionState::Pending p;
    p.event = HookEvent::Subscribe;
    p.body = baseBody(session, p.event);
    appendString(p.body, "channel", channel);
    p.body += '}';
    p.channel = channel;
    p.id = id;
    enqueue(session, std::move(p));
}

void HookBridge::message(Session& session, std::string_view channel, std::string_view data,
                         std::optional<uint64_t> id, PublishRoute route) {
    HookSessionState::Pending p;
    p.event = HookEvent::Message;
    p.body = baseBody(session, p.event);
    appendString(p.body, "channel", channel);
    p.body += ",\"data\":";
    p.body += data;
    if (id) p.body += ",\"id\":" + std::to_string(*id);
    p.body += '}';
    p.channel = channel;
    p.data = data;
    p.id = id;
    p.route = route;
    enqueue(session, std::move(p));
}

void HookBridge::send(Session& session, std::string_view data, std::optional<uint64_t> id) {
    HookSessionState::Pending p;
    p.event = HookEvent::Message;
    p.rpc = true;
    p.body = baseBody(session, p.event);
    p.body += ",\"rpc\":true,\"data\":";
    p.body += data;
    if (id) p.body += ",\"id\":" + std::to_string(*id);
    p.body += '}';
    p.id = id;
    enqueue(session, std::move(p));
}

void HookBridge::disconnect(Session& session, int code) {
    disconnect(session.id(), session.userId(), session.hookState().meta, code);
}

void HookBridge::disconnect(uint64_t connection, const std::string& user, const std::string& meta,
                            int code) {
    HookSessionState::Pending p;
    p.event = HookEvent::Disconnect;
    p.body = baseBody(connection, user, meta, p.event);
    p.body += ",\"code\":" + std::to_string(code) + "}";
    // Not queued behind the connection's other events: the session is going away now, so its
    // queue dies with it. What is already in flight stays in flight.
    const uint64_t id = connection;
    auto& m = worker_.metrics();
    if (!hook_.send(p.event, p.body, [this, id, p](HookResult&& r) { onAnswer(id, p, std::move(r)); })) {
        m.hook_requests[static_cast<size_t>(p.event)][static_cast<size_t>(metrics::HookResult::Overflow)].add();
        WSR_LOG(Warn, "hook busy: disconnect event of connection %llu not sent",
                static_cast<unsigned long long>(id));
        return;
    }
    m.hook_in_flight.add();
}

void HookBridge::enqueue(Session& session, HookSessionState::Pending pending) {
    HookSessionState& state = session.hookState();
    if (state.queue.size() >= kMaxQueuedPerSession) {
        worker_.metrics()
            .hook_requests[static_cast<size_t>(pending.event)]
                          [static_cast<size_t>(metrics::HookResult::Overflow)]
            .add();
        session.error(pending.id, ErrorCode::BrokerUnavailable, "hook busy");
        return;
    }
    state.queue.push_back(std::move(pending));
    if (!state.busy) startNext(session);
}

void HookBridge::startNext(Session& session) {
    HookSessionState& state = session.hookState();
    while (!state.busy && !state.queue.empty()) {
        HookSessionState::Pending p = std::move(state.queue.front());
        state.queue.pop_front();
        const uint64_t id = session.id();
        auto& m = worker_.metrics();
        std::string body = p.body;
        if (hook_.send(p.event, std::move(body),
                       [this, id, p](HookResult&& r) { onAnswer(id, p, std::move(r)); })) {
            state.busy = true;
            m.hook_in_flight.add();
            return;
        }
        m.hook_requests[static_cast<size_t>(p.event)][static_cast<size_t>(metrics::HookResult::Overflow)].add();
        session.error(p.id, ErrorCode::BrokerUnavailable, "hook busy");
    }
}

void HookBridge::onAnswer(uint64_t session_id, const HookSessionState::Pending& pending,
                          HookResult&& result) {
    auto& m = worker_.metrics();
    m.hook_in_flight.sub();
    m.hook_duration[static_cast<size_t>(pending.event)].observe(result.seconds);
    Session* session = pending.event == HookEvent::Disconnect ? nullptr
                                                              : worker_.findSession(session_id);
    if (session != nullptr) session->hookState().busy = false;

    auto count = [&](metrics::HookResult r) {
        m.hook_requests[static_cast<size_t>(pending.event)][static_cast<size_t>(r)].add();
    };
    auto fail = [&](metrics::HookResult r, std::string_view reason) {
        count(r);
        if (session != nullptr) session->error(pending.id, ErrorCode::HookFailed, reason);
    };

    simdjson::dom::object answer;
    bool has_answer = false;
    switch (result.outcome) {
        case HookOutcome::Timeout: fail(metrics::HookResult::Timeout, "hook timeout"); break;
        case HookOutcome::Unavailable: fail(metrics::HookResult::Unavailable, "hook unavailable"); break;
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
            if (parser_.parse(padded_.data(), length, false)
                                 .get_object()
                                 .get(answer) != simdjson::SUCCESS) {
                fail(metrics::HookResult::Error, "hook error");
                break;
            }
            int code = 0;
            std::string message;
            if (appError(answer, code, message)) {
                count(metrics::HookResult::Error);
                if (session != nullptr) {
                    session->error(pending.id, static_cast<ErrorCode>(code), message);
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
        if (deny(answer, why)) {
            count(metrics::HookResult::Denied);
            if (session != nullptr) session->error(pending.id, ErrorCode::Forbidden, why);
        } else {
            count(metrics::HookResult::Ok);
            apply(session, pending, answer);
        }
    }
    if (session != nullptr) startNext(*session);
}

void HookBridge::apply(Session* session, const HookSessionState::Pending& pending,
                       simdjson::dom::object answer) {
    simdjson::dom::element e;
    // Publishes run even when the connection has gone: a chat message must not vanish because
    // its sender closed the tab.
    if (answer["publish"].get(e) == simdjson::SUCCESS) publishFromAnswer(e);
    if (session == nullptr || session->closing()) return;

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

    bool answered = false;
    if (answer["reply"].get(e) == simdjson::SUCCESS) {
        session->reply(protocol::encodeReply(pending.id, minified(e)));
        answered = true;
    }
    switch (pending.event) {
        case HookEvent::Subscribe:
            session->subscribeAndAnswer(pending.channel, answered ? std::nullopt : pending.id);
            break;
        case HookEvent::Message:
            if (!pending.rpc && pending.route == PublishRoute::Both) {
                // The app may rewrite what goes to the channel; the broker's result acks it.
                std::string data = answer["data"].get(e) == simdjson::SUCCESS ? minified(e)
                                                                               : pending.data;
                session->publishNow(pending.channel, data, answered ? std::nullopt : pending.id);
            } else if (pending.id && !answered) {
                session->reply(protocol::encodeAck(*pending.id));
            }
            break;
        default:
            break;
    }

    if (answer["disconnect"].get(e) == simdjson::SUCCESS) {
        int64_t code = 4000;
        if (e["code"].get_int64().get(code) != simdjson::SUCCESS || code < 4000 || code > 4999) {
            code = 4000;
        }
        std::string_view reason;
        if (e["reason"].get_string().get(reason) != simdjson::SUCCESS) reason = "disconnected by the app";
        session->closeWith(static_cast<int>(code), reason);
    }
}

void HookBridge::publishFromAnswer(simdjson::dom::element list) {
    simdjson::dom::array items;
    if (list.get_array().get(items) != simdjson::SUCCESS) return;
    const auto max_channel = static_cast<size_t>(worker_.config().limits.max_channel_bytes);
    for (simdjson::dom::element item : items) {
        std::string_view channel;
        simdjson::dom::element data;
        if (item["channel"].get_string().get(channel) != simdjson::SUCCESS ||
            item["data"].get(data) != simdjson::SUCCESS ||
            !protocol::validChannel(channel, max_channel)) {
            WSR_LOG(Warn, "hook answer: a publish without a valid channel and data was ignored");
            continue;
        }
        if (!worker_.broker().usable()) {
            worker_.metrics().broker_publish_failures.add();
            continue;
        }
        const std::string payload = minified(data);
        if (!worker_.admit(channel, payload, metrics::MessageSource::Hook)) continue;  // logged
        worker_.publish(channel, payload, PublishTicket{});
    }
}

}  // namespace wsrelay
