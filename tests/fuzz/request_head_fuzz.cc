// libFuzzer target for what the upgrade gate reads from a socket before libwebsockets does: the
// request head (HeadReader's readHead, which lifts the bearer subprotocol token), the head parser,
// the path normalizer and the query decoder.
// The properties: nothing crashes or reads out of bounds; a head handed over is a prefix of what
// was sent and ends at its blank line; the head given to lws never carries a bearer entry; a
// normalized path is absolute and holds no empty, "." or ".." segment.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "relay/admission/head_reader.h"
#include "relay/auth/subprotocol_token.h"
#include "relay/http/request_head.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using wsrelay::fuzz::check;

using namespace wsrelay;

void checkPath(std::string_view target) {
    std::string path;
    if (!normalizedPath(target, path)) return;
    check(!path.empty() && path.front() == '/', "normalized path not absolute", path);
    check(path.find("//") == std::string::npos, "empty segment left", path);
    check(path.find('\0') == std::string::npos, "NUL in path", path);
    const std::string_view p(path);
    size_t pos = 1;
    while (pos <= p.size()) {
        size_t slash = p.find('/', pos);
        if (slash == std::string_view::npos) slash = p.size();
        const std::string_view segment = p.substr(pos, slash - pos);
        check(segment != "." && segment != "..", "dot segment left", path);
        pos = slash + 1;
    }
    std::string again;
    // A normalized path only changes again where it holds a '%' that decodes (it was "%25").
    if (path.find('%') == std::string::npos) {
        check(normalizedPath(path, again) && again == path, "normalizing is not idempotent", path);
    }
}

// Whether a Sec-WebSocket-Protocol header of `text` still offers a wsrelay.bearer.* entry.
bool offersBearer(std::string_view text) {
    RequestHead head;
    if (!parseRequestHead(text, head)) return false;
    for (const auto& [name, value] : head.headers) {
        if (!equalsIgnoreCase(name, "sec-websocket-protocol")) continue;
        std::string_view rest = value;
        while (!rest.empty()) {
            const size_t comma = rest.find(',');
            std::string_view entry = rest.substr(0, comma);
            while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) {
                entry.remove_prefix(1);
            }
            if (entry.starts_with(kBearerSubprotocolPrefix)) return true;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return false;
}

void checkHead(std::string_view text) {
    RequestHead head;
    if (!parseRequestHead(text, head)) return;
    checkPath(head.target);
    std::string value;
    (void)urlDecode(head.query("token"), value);
    for (const auto& [name, v] : head.headers) {
        (void)listHasToken(v, "upgrade");
        (void)head.headerCount(name);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const HeadRead read = readHead(input);
    switch (read.outcome) {
        case HeadRead::Outcome::Ready: {
            check(input.starts_with(read.head), "head is not a prefix of the input", read.head);
            check(read.head.ends_with("\r\n\r\n"), "head does not end at its blank line",
                  read.head);
            check(read.head.find("\r\n\r\n") + 4 == read.head.size(), "head runs past its end",
                  read.head);
            check(read.consumed.empty() == read.token.empty(), "token without a rewritten head");
            if (!read.consumed.empty()) {
                check(read.consumed.ends_with("\r\n\r\n"), "rewritten head unterminated");
                check(!offersBearer(read.consumed), "bearer entry left in the head lws reads",
                      read.consumed);
                checkHead(read.consumed);
            }
            checkHead(read.head);
            break;
        }
        case HeadRead::Outcome::Incomplete:
            check(input.find("\r\n\r\n") == std::string_view::npos, "complete head not read");
            break;
        default: break;
    }
    checkPath(input.substr(0, std::min<size_t>(input.size(), 512)));
    return 0;
}
