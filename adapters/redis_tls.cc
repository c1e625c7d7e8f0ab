#include "adapters/redis_tls.h"

#include <arpa/inet.h>
#include <ev.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace wsrelay {
namespace {

// Refuses to prompt for a passphrase (OpenSSL's default callback reads the terminal).
int noPassphrase(char*, int, int, void*) { return -1; }

std::string errorText(unsigned long code) {
    if (code == 0) return "unknown TLS error";
    const char* reason = ERR_reason_error_string(code);
    if (reason != nullptr) return reason;
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    return buffer;
}

bool isIpLiteral(const std::string& host) {
    unsigned char address[sizeof(in6_addr)];
    return inet_pton(AF_INET, host.c_str(), address) == 1 ||
           inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// OpenSSL over the socket of one Redis connection. The handshake runs first, from handshake();
// then read and write map SSL_read/SSL_write. TLS may need the other direction than the call's
// (a read that must write, a write that must read: key updates, alerts); wantedEvents() tells the
// connection, which then retries both calls when that event comes.
class TlsTransport final : public RedisTransport {
public:
    TlsTransport(const RedisTls& tls, int fd, SSL* ssl, std::string name)
        : tls_(tls), fd_(fd), ssl_(ssl), name_(std::move(name)) {}
    ~TlsTransport() override { close(); }

    Result handshake() override {
        ERR_clear_error();
        const int rc = SSL_connect(ssl_);
        if (rc == 1) {
            established_ = true;
            handshake_wants_ = 0;
            return {Io::Done, 0, 0};
        }
        return failure(rc, handshake_wants_);
    }
    Result read(char* buffer, size_t size) override {
        ERR_clear_error();
        size_t n = 0;
        if (SSL_read_ex(ssl_, buffer, size, &n) == 1) {
            read_wants_ = 0;
            received_ = true;
            return {Io::Done, n, 0};
        }
        return failure(0, read_wants_);
    }
    Result write(const char* data, size_t size) override {
        ERR_clear_error();
        size_t n = 0;
        if (SSL_write_ex(ssl_, data, size, &n) == 1) {
            write_wants_ = 0;
            return {Io::Done, n, 0};
        }
        return failure(0, write_wants_);
    }
    // While handshaking: the direction the handshake waits for. Afterwards only the crossed ones;
    // a read waiting to read or a write waiting to write is what the connection watches anyway.
    int wantedEvents() const override {
        if (!established_) return handshake_wants_;
        return (read_wants_ & EV_WRITE) | (write_wants_ & EV_READ);
    }
    // Decrypted bytes, or whole records read ahead, that no socket event will announce.
    bool buffered() const override { return SSL_has_pending(ssl_) == 1; }
    std::string describe(const Result& r) const override {
        return error_.empty() ? RedisTransport::describe(r) : error_;
    }
    void close() override {
        if (ssl_ == nullptr) return;
        if (established_ && !fatal_) SSL_shutdown(ssl_);  // close_notify, best effort
        SSL_free(ssl_);
        ssl_ = nullptr;
        ::close(fd_);
        fd_ = -1;
    }

private:
    Result failure(int rc, int& wants) {
        const int saved_errno = errno;
        const int kind = SSL_get_error(ssl_, rc);
        wants = 0;
        Result closed{Io::Closed, 0, 0};
        switch (kind) {
            case SSL_ERROR_WANT_READ: wants = EV_READ; return {Io::Again, 0, 0};
            case SSL_ERROR_WANT_WRITE: wants = EV_WRITE; return {Io::Again, 0, 0};
            case SSL_ERROR_ZERO_RETURN: return endOfStream(closed);  // close_notify
            case SSL_ERROR_SYSCALL:
                fatal_ = true;
                if (saved_errno != 0 && saved_errno != EAGAIN) closed = {Io::Error, 0, saved_errno};
                return endOfStream(closed);
            default: break;
        }
        fatal_ = true;
        const unsigned long code = ERR_peek_error();
        ERR_clear_error();
        // OpenSSL 3 reports a peer that closed without close_notify as an error; RESP is
        // self-delimiting, so it is an end of stream like any other.
        if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
            ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            return endOfStream(closed);
        }
        error_ = tls_.explain(SSL_get_verify_result(ssl_), code, name_);
        return {Io::Error, 0, 0};
    }

    // In TLS 1.3 a server checks the client's certificate after the client finished its side of
    // the handshake: a refusal arrives as an alert on the first read, or, when the server's close
    // races our first command, as a bare reset or end of stream. Nothing received yet: say so.
    Result endOfStream(Result r) {
        if (!established_ || received_) return r;
        error_ = tls_.closedAfterHandshake(RedisTransport::describe(r));
        return r;
    }

    const RedisTls& tls_;
    int fd_;
    SSL* ssl_;
    const std::string name_;  // the name the certificate is checked against
    bool established_ = false;
    bool received_ = false;  // application data came: an end of stream is an ordinary one
    bool fatal_ = false;     // no close_notify after a fatal error
    int handshake_wants_ = 0;
    int read_wants_ = 0;
    int write_wants_ = 0;
    std::string error_;
};

struct CtxCloser {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

std::runtime_error loadError(const char* key, const std::string& file) {
    const std::string why = errorText(ERR_peek_last_error());
    ERR_clear_error();
    return std::runtime_error(std::string(key) + ": cannot load " + file + ": " + why);
}

}  // namespace

RedisTls::RedisTls(RedisTlsOptions options) : options_(std::move(options)) {
    // OpenSSL writes to the socket with write(2), not send(MSG_NOSIGNAL) as TcpTransport does: a
    // server that closed its end would raise SIGPIPE, and kill the process. The relay ignores
    // SIGPIPE anyway (Server::run), but only later than this context is first used (the startup
    // check), and a test binary does not; so whoever uses TLS to Redis ignores it from here on.
    signal(SIGPIPE, SIG_IGN);
    std::unique_ptr<SSL_CTX, CtxCloser> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw loadError("broker.redis.tls", "an OpenSSL client context");
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    // Nothing a connection does may write to the shared context.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    // Partial writes keep the connection's out buffer logic (an offset into what is queued); the
    // buffer may move between a write that waits and its retry, as it grows.
    SSL_CTX_set_mode(ctx.get(),
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_default_passwd_cb(ctx.get(), noPassphrase);
    if (options_.ca_file.empty()) {
        if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
            throw loadError("broker.redis.tls.ca_file", "the system's CAs (it is not set)");
        }
    } else if (SSL_CTX_load_verify_locations(ctx.get(), options_.ca_file.c_str(), nullptr) != 1) {
        throw loadError("broker.redis.tls.ca_file", options_.ca_file);
    }
    if (options_.cert_file.empty() != options_.key_file.empty()) {
        throw std::runtime_error(
            "broker.redis.tls.cert_file and broker.redis.tls.key_file go together");
    }
    if (!options_.cert_file.empty()) {
        if (SSL_CTX_use_certificate_chain_file(ctx.get(), options_.cert_file.c_str()) != 1) {
            throw loadError("broker.redis.tls.cert_file", options_.cert_file);
        }
        if (SSL_CTX_use_PrivateKey_file(ctx.get(), options_.key_file.c_str(), SSL_FILETYPE_PEM) !=
                1 ||
            SSL_CTX_check_private_key(ctx.get()) != 1) {
            throw loadError("broker.redis.tls.key_file", options_.key_file);
        }
    }
    ctx_ = ctx.release();
}

RedisTls::~RedisTls() { SSL_CTX_free(ctx_); }

std::unique_ptr<RedisTransport> RedisTls::wrap(int fd, const std::string& host,
                                               std::string& error) const {
    const std::string& name = options_.server_name.empty() ? host : options_.server_name;
    SSL* ssl = SSL_new(ctx_);
    bool ok = ssl != nullptr && SSL_set_fd(ssl, fd) == 1;
    if (ok && isIpLiteral(name)) {
        // No SNI for an address (RFC 6066); the certificate must list it as an IP SAN.
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
    } else if (ok) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 &&
             SSL_set1_host(ssl, name.c_str()) == 1;
    }
    if (!ok) {
        error = "cannot set up TLS: " + errorText(ERR_peek_last_error());
        ERR_clear_error();
        if (ssl != nullptr) SSL_free(ssl);  // SSL_set_fd wraps fd in a BIO that does not close it
        return nullptr;
    }
    SSL_set_connect_state(ssl);
    return std::make_unique<TlsTransport>(*this, fd, ssl, name);
}

std::string RedisTls::explain(long verify_result, unsigned long ssl_error,
                              const std::string& name) const {
    if (verify_result == X509_V_ERR_HOSTNAME_MISMATCH ||
        verify_result == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        return std::string("TLS handshake failed: certificate verify failed: ") +
               X509_verify_cert_error_string(verify_result) +
               ": the server's certificate is not for '" + name +
               "' (broker.redis.tls.server_name sets the name to check)";
    }
    if (verify_result != X509_V_OK) {
        return std::string("TLS handshake failed: certificate verify failed: ") +
               X509_verify_cert_error_string(verify_result) +
               (options_.ca_file.empty()
                    ? " (checked against the system's CAs: set broker.redis.tls.ca_file)"
                    : " (checked against broker.redis.tls.ca_file " + options_.ca_file + ")");
    }
    std::string out = "TLS failed: " + errorText(ssl_error);
    if (ERR_GET_LIB(ssl_error) != ERR_LIB_SSL) return out;
    switch (ERR_GET_REASON(ssl_error)) {
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
            if (options_.cert_file.empty()) {
                out += " (the server may require a client certificate: "
                       "broker.redis.tls.cert_file and broker.redis.tls.key_file)";
            }
            break;
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
            out +=
                options_.cert_file.empty()
                    ? std::string(" (the server refused the connection's certificate)")
                    : " (the server refused broker.redis.tls.cert_file " + options_.cert_file + ")";
            break;
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
            out += " (is this a TLS port? rediss:// needs the server's tls-port)";
            break;
        default: break;
    }
    return out;
}

std::string RedisTls::closedAfterHandshake(const std::string& how) const {
    return "the server ended the connection (" + how +
           ") right after the TLS handshake, before any reply" +
           (options_.cert_file.empty()
                ? " (the server may require a client certificate: broker.redis.tls.cert_file and "
                  "broker.redis.tls.key_file)"
                : " (the server may refuse broker.redis.tls.cert_file " + options_.cert_file + ")");
}

std::string RedisTls::check(const std::string& host, int port, double timeout_s) const {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return "";
    int fd = -1;
    for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
        fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        // Bounds connect (Linux applies the send timeout to it), the handshake and the reply.
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(timeout_s);
        tv.tv_usec = static_cast<suseconds_t>((timeout_s - static_cast<double>(tv.tv_sec)) * 1e6);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            ::close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(found);
    if (fd < 0) return "";  // not reachable: the broker keeps trying
    std::string error;
    std::unique_ptr<RedisTransport> tls = wrap(fd, host, error);
    if (!tls) {
        ::close(fd);
        return error;
    }
    // Again is a timeout: a slow server is no verdict on TLS; nor is an errno during the
    // handshake (a reset) - a TLS error carries none.
    RedisTransport::Result r = tls->handshake();
    if (r.io != RedisTransport::Io::Done) {
        return r.io == RedisTransport::Io::Error && r.error == 0 ? tls->describe(r) : "";
    }
    // After the handshake, any end before the reply is the server refusing this client.
    constexpr std::string_view kPing = "*1\r\n$4\r\nPING\r\n";
    r = tls->write(kPing.data(), kPing.size());
    if (r.io == RedisTransport::Io::Done) {
        char reply[64];
        r = tls->read(reply, sizeof(reply));
    }
    return r.io == RedisTransport::Io::Error || r.io == RedisTransport::Io::Closed
               ? tls->describe(r)
               : "";
}

}  // namespace wsrelay
