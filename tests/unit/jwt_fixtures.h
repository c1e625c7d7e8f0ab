#pragma once

#include <memory>
#include <string>

#include "adapters/jwks_fetcher.h"
#include "adapters/jwt_key_set.h"
#include "gtest/gtest.h"

// Keys and tokens made by PyJWT (fixtures/make_jwt_fixtures.py), not by the code under test.
namespace wsrelay::jwt::testing {

inline std::string fixturePath(const std::string& name) {
    return std::string(WSRELAY_SOURCE_DIR) + "/tests/unit/fixtures/jwt/" + name;
}

inline std::string fixture(const std::string& name) {
    std::string text, error;
    EXPECT_TRUE(readFile(fixturePath(name), text, error)) << error;
    return text;
}

inline std::string token(const std::string& name) { return fixture(name + ".txt"); }

// The configured secret and every supported PEM key: all without kid.
inline KeySet staticKeys() {
    KeySet keys;
    std::string error;
    EXPECT_TRUE(keys.addSecret(fixture("secret.txt"), error)) << error;
    EXPECT_TRUE(keys.addPem(fixture("all_public.pem"), error)) << error;
    return keys;
}

inline KeySet jwksKeys(const std::string& file = "jwks.json") {
    KeySet keys;
    std::string error;
    EXPECT_TRUE(keys.addJwks(fixture(file), error)) << error;
    return keys;
}

inline std::shared_ptr<const KeySet> shared(KeySet keys) {
    return std::make_shared<const KeySet>(std::move(keys));
}

}  // namespace wsrelay::jwt::testing
