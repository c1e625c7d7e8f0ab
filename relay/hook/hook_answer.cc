#include "relay/hook/hook_answer.h"

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
    message = e["message"].get_string().get(m) == simdjson::SUCCESS ? std::string(m)
                                                                    : "hook error";
    return true;
}

bool deny(simdjson::dom::object answer, std::string& message) {
    simdjson::dom::element d;
    if (!command(answer, "deny", d)) return false;
    std::string_view m;
    message = d["message"].get_string().get(m) == simdjson::SUCCESS ? std::string(m) : "denied";
    return true;
}

}  // namespace wsrelay::hook_answer
