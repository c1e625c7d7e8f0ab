#pragma once

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wsrelay {

// The app's answer to a connect event.
struct ConnectDecision {
    enum class Kind { Allow, Deny, Fail } kind = Kind::Fail;
    std::string message;  // Deny: the app's message; Fail: what went wrong
    std::string user;     // "user" from the answer
    std::string meta = "null";
    std::string info;                   // "info" (presence), minified; empty = none
    std::vector<std::string> channels;  // "subscribe" from the answer
};

}  // namespace wsrelay

// Reading the commands of the app's answer (docs/hook.md#the-answer). A command member set to null
// or false is the same as one left out: {"deny":null} does not deny, {"disconnect":false} does
// not disconnect. Value members ("reply", "data", "meta") are read by the caller: null is a value
// there.
namespace wsrelay::hook_answer {

// The command `key` ("deny", "disconnect", "error"), when present and neither null nor false.
bool command(simdjson::dom::object answer, std::string_view key, simdjson::dom::element& out);

// {"error":{"code":N,"message":M}}: N when it is 400..499, else 502; M, else "hook error".
bool error(simdjson::dom::object answer, int& code, std::string& message);

// {"deny":{"message":M}}: M, else "denied".
bool deny(simdjson::dom::object answer, std::string& message);

// Reads `body`, the app's 2xx answer to a connect event (blank reads as {}): Fail "hook error"
// when it is not a JSON object or it says error, Deny with deny's message, else Allow with the
// answer's "user" (when a string), "meta" (any JSON, minified) and the strings of "subscribe".
// `publish` is set to an Allow's "publish" member, for the caller to carry out; it stays valid
// until `parser` parses again. `padded` is scratch space for a padded copy of the body.
ConnectDecision connect(simdjson::dom::parser& parser, std::string& padded, std::string_view body,
                        std::optional<simdjson::dom::element>& publish);

}  // namespace wsrelay::hook_answer
