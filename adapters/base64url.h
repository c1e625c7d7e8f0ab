#pragma once

#include <string>
#include <string_view>

// Base64url (RFC 4648 §5) as JWS and JWK use it (RFC 7515 §2: no padding).
namespace wsrelay {

// Strict: only A-Z a-z 0-9 - _, no whitespace, no length that leaves 1 spare character, and the
// unused low bits of the last character must be zero (one canonical spelling per byte string).
// '=' is refused unless `allow_padding`, and then only as the exact padding of the final group.
// Replaces `out`; on false its content is unspecified.
bool base64UrlDecode(std::string_view in, std::string& out, bool allow_padding = false);

// Unpadded.
std::string base64UrlEncode(std::string_view in);

}  // namespace wsrelay
