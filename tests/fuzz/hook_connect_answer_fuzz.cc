// libFuzzer target for reading a hook app's answer to a connect event (hook_answer::connect,
// relay/hook/hook_answer.h): the bytes of the app's 2xx answer, untrusted JSON deciding whether a
// connection is let in, as which user, with which metadata and channels.
// The properties: nothing crashes or reads past the body; an answer that is not a JSON object or
// sets error fails with "hook error", one that sets deny (else) is denied with its own message or
// "denied", any other is allowed with exactly the answer's string "user", its "meta" minified
// (JSON that minifies to itself), the strings of its "subscribe" list and its "publish" member;
// an allow written back as an answer reads the same.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis_payload.h"
#include "relay/hook/hook_answer.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;
using wsrelay::fuzz::failure;

using namespace wsrelay;
using Kind = ConnectDecision::Kind;

// Whether `key` is a command by the documented rule (docs/hook.md), read without hook_answer.
bool isSet(simdjson::dom::object answer, std::string_view key) {
    simdjson::dom::element e;
    if (answer.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return false;
    bool flag = true;
    return !(e.is_bool() && e.get_bool().get(flag) == simdjson::SUCCESS && !flag);
}

bool sameDecision(const ConnectDecision& a, const ConnectDecision& b) {
    return a.kind == b.kind && a.message == b.message && a.user == b.user && a.meta == b.meta &&
           a.channels == b.channels;
}

// An answer allowing what `d` allows.
std::string answerOf(const ConnectDecision& d) {
    std::string out = R"({"user":)";
    appendJsonString(d.user, out);
    out += R"(,"meta":)" + d.meta + R"(,"subscribe":[)";
    for (size_t i = 0; i < d.channels.size(); ++i) {
        if (i > 0) out += ',';
        appendJsonString(d.channels[i], out);
    }
    return out + "]}";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static simdjson::dom::parser parser;
    static simdjson::dom::parser reference_parser;
    static std::string padded;
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    std::optional<simdjson::dom::element> publish;
    const ConnectDecision d = hook_answer::connect(parser, padded, body, publish);

    const bool blank = body.find_first_not_of(" \t\r\n") == std::string_view::npos;
    simdjson::padded_string copy(blank ? std::string_view("{}") : body);
    simdjson::dom::object answer;
    const bool is_object = reference_parser.parse(copy).get(answer) == simdjson::SUCCESS;

    if (!is_object || isSet(answer, "error")) {
        check(d.kind == Kind::Fail && d.message == "hook error", "error answer not a failure",
              body);
    } else if (isSet(answer, "deny")) {
        check(d.kind == Kind::Deny, "deny answer not a denial", body);
        simdjson::dom::object command;
        std::string_view own;
        const bool has_own = answer.at_key("deny").get(command) == simdjson::SUCCESS &&
                             command.at_key("message").get(own) == simdjson::SUCCESS;
        check(d.message == (has_own ? own : "denied"), "deny message", d.message);
    } else {
        check(d.kind == Kind::Allow && d.message.empty(), "answer not an allow", body);
    }
    if (d.kind != Kind::Allow) {
        check(d.user.empty() && d.meta == "null" && d.channels.empty() && !publish,
              "a refusal carries what only an allow sets", body);
        return 0;
    }

    std::string_view user;
    if (answer.at_key("user").get(user) != simdjson::SUCCESS) user = {};
    check(d.user == user, "user is not the answer's string", d.user);

    simdjson::dom::element meta;
    if (answer.at_key("meta").get(meta) == simdjson::SUCCESS) {
        check(d.meta == simdjson::minify(meta), "meta is not the answer's, minified", d.meta);
    } else {
        check(d.meta == "null", "meta without one in the answer", d.meta);
    }

    std::vector<std::string> channels;
    simdjson::dom::array list;
    if (answer.at_key("subscribe").get(list) == simdjson::SUCCESS) {
        for (simdjson::dom::element c : list) {
            std::string_view name;
            if (c.get(name) == simdjson::SUCCESS) channels.emplace_back(name);
        }
    }
    check(d.channels == channels, "channels are not the strings of subscribe", body);

    simdjson::dom::element publish_member;
    const bool has_publish = answer.at_key("publish").get(publish_member) == simdjson::SUCCESS;
    check(publish.has_value() == has_publish, "publish member lost or made up", body);
    if (has_publish) {
        check(simdjson::minify(*publish) == simdjson::minify(publish_member),
              "publish member is not the answer's", body);
    }

    // The meta is JSON that minifies to itself, and the allow written back reads the same.
    simdjson::dom::element reparsed;
    simdjson::padded_string meta_copy(d.meta);
    if (reference_parser.parse(meta_copy).get(reparsed) != simdjson::SUCCESS) {
        failure("meta is not JSON", d.meta);
    }
    check(simdjson::minify(reparsed) == d.meta, "meta not minified", d.meta);
    const std::string written = answerOf(d);
    std::optional<simdjson::dom::element> again_publish;
    const ConnectDecision again = hook_answer::connect(parser, padded, written, again_publish);
    check(sameDecision(again, d) && !again_publish, "written back, the allow reads differently",
          written);
    return 0;
}
