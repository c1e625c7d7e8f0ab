#pragma once

// What a fuzz target does when the property it checks does not hold: say which property and on
// what, then abort, so libFuzzer keeps the input that broke it.

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace wsrelay::fuzz {

[[noreturn]] inline void failure(const char* what, std::string_view detail = {}) {
    std::fprintf(stderr, "fuzz property violated: %s: %.*s\n", what,
                 static_cast<int>(detail.size()), detail.data());
    std::abort();
}

inline void check(bool condition, const char* what, std::string_view detail = {}) {
    if (!condition) failure(what, detail);
}

}  // namespace wsrelay::fuzz
