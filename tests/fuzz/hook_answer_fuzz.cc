// libFuzzer target for reading the commands of a hook app's answer (relay/hook/hook_answer.h): the
// app is another service, and its answer is untrusted JSON. The properties: nothing crashes; a
// command is found exactly when its member is present and neither null nor false; an error's code
// is 400..499 or 502, and a message is the answer's own string when it gives one, else the fixed
// default.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "relay/hook/hook_answer.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;

using namespace wsrelay;

// Whether `key` is a command by the documented rule, read without hook_answer.
bool isSet(simdjson::dom::object answer, std::string_view key) {
    simdjson::dom::element e;
    if (answer.at_key(key).get(e) != simdjson::SUCCESS) return false;
    if (e.is_null()) return false;
    bool flag = true;
    return !(e.is_bool() && e.get_bool().get(flag) == simdjson::SUCCESS && !flag);
}

// The string at command[key]["message"], if there is one.
bool ownMessage(simdjson::dom::object answer, std::string_view key, std::string_view& out) {
    simdjson::dom::object command;
    return answer.at_key(key).get_object().get(command) == simdjson::SUCCESS &&
           command.at_key("message").get_string().get(out) == simdjson::SUCCESS;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static simdjson::dom::parser parser;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    simdjson::padded_string padded(text);
    simdjson::dom::object answer;
    if (parser.parse(padded).get_object().get(answer) != simdjson::SUCCESS) return 0;

    for (std::string_view key : {"deny", "disconnect", "error"}) {
        simdjson::dom::element e;
        check(hook_answer::command(answer, key, e) == isSet(answer, key), "command rule", text);
    }

    std::string message;
    std::string_view own;
    const bool denied = hook_answer::deny(answer, message);
    check(denied == isSet(answer, "deny"), "deny differs from its command", text);
    if (denied) {
        check(message == (ownMessage(answer, "deny", own) ? own : "denied"), "deny message",
              message);
    }

    int code = 0;
    message.clear();
    const bool failed = hook_answer::error(answer, code, message);
    check(failed == isSet(answer, "error"), "error differs from its command", text);
    if (failed) {
        check((code >= 400 && code < 500) || code == 502, "error code out of range", text);
        check(message == (ownMessage(answer, "error", own) ? own : "hook error"), "error message",
              message);
    }
    return 0;
}
