#pragma once

// A throwaway redis-server for one test: a child process on a free loopback port, no persistence,
// killed by PID. Plus a small synchronous hiredis client for the test thread.

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace wsrelay::testing {

struct ReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
    void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

// Synchronous client: blocking calls, for the test thread only.
class RedisClient {
public:
    explicit RedisClient(ContextPtr context) : context_(std::move(context)) {}
    bool ok() const { return context_ && context_->err == 0; }

    ReplyPtr command(const std::vector<std::string>& args) {
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (const std::string& a : args) {
            argv.push_back(a.data());
            lens.push_back(a.size());
        }
        void* reply = redisCommandArgv(context_.get(), static_cast<int>(argv.size()), argv.data(),
                                       lens.data());
        return ReplyPtr(static_cast<redisReply*>(reply));
    }

    // PUBSUB NUMSUB for each channel, in order; -1 each if the command failed.
    std::vector<long long> numsub(const std::vector<std::string>& channels) {
        std::vector<std::string> args = {"PUBSUB", "NUMSUB"};
        args.insert(args.end(), channels.begin(), channels.end());
        ReplyPtr r = command(args);
        std::vector<long long> out(channels.size(), -1);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != channels.size() * 2) return out;
        for (size_t i = 0; i < channels.size(); ++i) out[i] = r->element[i * 2 + 1]->integer;
        return out;
    }
    long long numsub(const std::string& channel) { return numsub(std::vector{channel})[0]; }

    // "calls" of one command in INFO commandstats; 0 when it was never called.
    long long commandCalls(const std::string& command) {
        ReplyPtr r = this->command({"INFO", "commandstats"});
        if (!r || r->type != REDIS_REPLY_STRING) return -1;
        const std::string info(r->str, r->len);
        const std::string key = "cmdstat_" + command + ":calls=";
        const size_t at = info.find(key);
        if (at == std::string::npos) return 0;
        return std::stoll(info.substr(at + key.size()));
    }

    // The next reply pushed by the server (a message, after SUBSCRIBE); null on timeout.
    ReplyPtr next() {
        void* reply = nullptr;
        if (redisGetReply(context_.get(), &reply) != REDIS_OK) return nullptr;
        return ReplyPtr(static_cast<redisReply*>(reply));
    }

    long long publish(const std::string& channel, const std::string& payload) {
        ReplyPtr r = command({"PUBLISH", channel, payload});
        return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    }

private:
    ContextPtr context_;
};

class RedisServer {
public:
    static constexpr const char* kBinary = "/usr/bin/redis-server";
    static bool available() { return access(kBinary, X_OK) == 0; }

    RedisServer() = default;
    ~RedisServer() { kill(); }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    // Extra redis-server arguments (e.g. --requirepass) for the next start().
    void setArgs(std::vector<std::string> args) { extra_args_ = std::move(args); }
    // A configuration file, passed first (redis-server --sentinel needs one it can rewrite).
    void setConfigFile(std::string path) { config_file_ = std::move(path); }

    // Starts on a free port, or on the previous one after kill(); waits until it answers PING
    // (or NOAUTH, when a password is required).
    bool start(std::string& error) {
        if (port_ == 0) port_ = freePort();
        if (port_ <= 0) {
            error = "no free port";
            return false;
        }
        const std::string port = std::to_string(port_);
        std::vector<std::string> args = {
            "redis-server", "--port", port,    "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no",     "--dir", "/tmp",   "--logfile", ""};
        args.insert(args.end(), extra_args_.begin(), extra_args_.end());
        if (!config_file_.empty()) args.insert(args.begin() + 1, config_file_);
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = fork();
        if (pid_ < 0) {
            error = "fork failed";
            return false;
        }
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test binary
            const int null = open("/dev/null", O_RDWR);
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            execv(kBinary, argv.data());
            _exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                error = "redis-server exited during startup (port " + port + ")";
                return false;
            }
            RedisClient client = this->client();
            if (client.ok()) {
                ReplyPtr r = client.command({"PING"});
                if (r && r->type == REDIS_REPLY_STATUS && std::string(r->str) == "PONG") {
                    return true;
                }
                const bool noauth =
                    r && r->type == REDIS_REPLY_ERROR && std::string(r->str).starts_with("NOAUTH");
                if (noauth) return true;
            }
            const timespec pause{0, 5 * 1000 * 1000};  // between polls, not a wait for an event
            nanosleep(&pause, nullptr);
        }
        kill();
        error = "redis-server did not answer PING within 10 s";
        return false;
    }

    void kill() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

    RedisClient client() const {
        const timeval timeout{1, 0};
        ContextPtr context(redisConnectWithTimeout("127.0.0.1", port_, timeout));
        // Every blocking call of the test thread is bounded.
        if (context && context->err == 0) redisSetTimeout(context.get(), timeval{5, 0});
        return RedisClient(std::move(context));
    }

    // A loopback port nothing listens on right now.
    static int freePort() {
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(addr);
        int port = -1;
        if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
            getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
            port = ntohs(addr.sin_port);
        }
        close(fd);
        return port;
    }

private:
    int port_ = 0;
    pid_t pid_ = -1;
    std::vector<std::string> extra_args_;
    std::string config_file_;
};

}  // namespace wsrelay::testing
