#pragma once

#include <string>
#include <string_view>

namespace wsrelay {

// PEM files named by the configuration (CA bundles, certificates, private keys), read the way
// OpenSSL and libcurl will read them, so `--check-config` refuses what startup would. Each check
// returns "" when the file is usable (or the path is empty: the key is not set), else what is wrong
// with it, without the key name (the caller adds it). Library wsrelay_tls_files: conf/ links it.

// At least one certificate, and nothing that fails to parse as one.
std::string checkPemCertificates(std::string_view path);
// One private key, not encrypted (nobody could type a passphrase).
std::string checkPemPrivateKey(std::string_view path);
// The key of `key_path` belongs to the first certificate of `cert_path`; both files must pass the
// checks above first.
std::string checkKeyMatchesCertificate(std::string_view cert_path, std::string_view key_path);

}  // namespace wsrelay
