#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

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

}  // namespace wsrelay::hook_answer
