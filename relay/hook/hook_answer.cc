#include "relay/hook/hook_answer.h"

#include "adapters/jwt_verifier.h"
#include "relay/protocol/protocol.h"

namespace wsrelay::hook_answer {

bool command(simdjson::dom::object answer, std::string_view key, simdjson::dom::element& out) {
    if (answer[key].get(out) != simdjson::SUCCESS || out.is_null()) return false;
    bool flag = true;
    return out.get_bool().get(flag) != simdjson::SUCCESS || flag;
}

bool error(simdjson::dom::object answer, int& code, std::string& message) {
    simdjson::dom::element e;
    if (!command(answer, "error", e)) return false;
    // An error that is not an object has no code or message (a look-up in it fails).
    int64_t c = 0;
    code = e["code"].get_int64().get(c) == simdjson::SUCCESS && c >= 400 && c < 500
               ? static_cast<int>(c)
               : static_cast<int>(protocol::ErrorCode::HookFailed);
    std::string_view m;
    message = e["message"].get_string().get(m) == simdjson::SUCCESS ? std::string(m) : "hook error";
    return true;
}

bool deny(simdjson::dom::object answer, std::string& message) {
    simdjson::dom::element d;
    if (!command(answer, "deny", d)) return false;
    std::string_view m;
    message = d["message"].get_string().get(m) == simdjson::SUCCESS ? std::string(m) : "denied";
    return true;
}

ConnectDecision connect(simdjson::dom::parser& parser, std::string& padded, std::string_view body,
                        std::optional<simdjson::dom::element>& publish) {
    ConnectDecision d;
    publish.reset();
    const bool empty = body.find_first_not_of(" \t\r\n") == std::string_view::npos;
    padded.assign(empty ? std::string_view("{}") : body);
    const size_t length = padded.size();
    padded.append(simdjson::SIMDJSON_PADDING, '\0');
    simdjson::dom::object answer;
    int code = 0;
    std::string why;
    if (parser.parse(padded.data(), length, false).get_object().get(answer) != simdjson::SUCCESS ||
        error(answer, code, why)) {
        d.message = "hook error";
    } else if (deny(answer, why)) {
        d.kind = ConnectDecision::Kind::Deny;
        d.message = why;
    } else {
        d.kind = ConnectDecision::Kind::Allow;
        simdjson::dom::element e;
        std::string_view text;
        if (answer["user"].get_string().get(text) == simdjson::SUCCESS) d.user = text;
        if (answer["meta"].get(e) == simdjson::SUCCESS) d.meta = simdjson::minify(e);
        if (answer["info"].get(e) == simdjson::SUCCESS && !e.is_null()) {
            d.info = simdjson::minify(e);
            // Shown to every member of the connection's presence channels: bounded.
            if (d.info.size() > jwt::kMaxInfoBytes) {
                d = ConnectDecision{};
                d.message =
                    "hook error: info over " + std::to_string(jwt::kMaxInfoBytes) + " bytes";
                return d;
            }
        }
        simdjson::dom::array list;
        if (answer["subscribe"].get_array().get(list) == simdjson::SUCCESS) {
            for (simdjson::dom::element c : list) {
                if (c.get_string().get(text) == simdjson::SUCCESS) d.channels.emplace_back(text);
            }
        }
        if (answer["publish"].get(e) == simdjson::SUCCESS) publish = e;
    }
    return d;
}

}  // namespace wsrelay::hook_answer
