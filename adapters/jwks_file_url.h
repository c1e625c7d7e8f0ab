#pragma once

#include <string>
#include <string_view>

// The path of a file:// JWKS URL: file:///abs/path or file://localhost/abs/path, no
// percent-decoding. Header-only and dependency-free: the fetcher reads the file with it, and conf/
// checks auth.jwt.jwks_url with it, so a relative path is refused by `--check-config` too.
namespace wsrelay::jwt {

// `url` starts with file://. Returns false, with `error` set, when the path is not absolute.
inline bool pathOfFileUrl(std::string_view url, std::string& path, std::string& error) {
    std::string_view rest = url.substr(7);
    if (rest.starts_with("localhost/")) rest.remove_prefix(9);
    if (!rest.starts_with('/')) {
        error = "a file:// URL needs an absolute path (file:///path/to/jwks.json)";
        return false;
    }
    path.assign(rest);
    return true;
}

}  // namespace wsrelay::jwt
