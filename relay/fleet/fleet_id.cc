#include "relay/fleet/fleet_id.h"

#include <unistd.h>

#include <charconv>
#include <random>

namespace wsrelay::fleet {
namespace {
constexpr std::string_view kAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr int kWorkerShift = 48;  // relay/session/session_table.h
}  // namespace

std::string makeInstanceId() {
    // random_device alone may be a deterministic generator on some platforms: the pid and the
    // clock make two containers that both run as pid 1 differ anyway.
    std::seed_seq seed{std::random_device{}(), static_cast<unsigned>(getpid()),
                       static_cast<unsigned>(std::random_device{}())};
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
    std::string id(kInstanceIdChars, '0');
    for (char& c : id) c = kAlphabet[pick(rng)];
    return id;
}

bool validInstanceId(std::string_view id) {
    if (id.size() != kInstanceIdChars) return false;
    for (char c : id) {
        if (kAlphabet.find(c) == std::string_view::npos) return false;
    }
    return true;
}

std::string workerAddress(std::string_view instance, int worker) {
    std::string out(instance);
    out += '.';
    out += std::to_string(worker);
    return out;
}

std::string connectionId(std::string_view instance, uint64_t session) {
    std::string out(instance);
    out += '.';
    out += std::to_string(session);
    return out;
}

std::optional<ConnectionRef> parseConnectionId(std::string_view id) {
    if (id.size() > kMaxConnectionIdBytes) return std::nullopt;
    const size_t dot = id.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    ConnectionRef ref;
    ref.instance = id.substr(0, dot);
    if (!validInstanceId(ref.instance)) return std::nullopt;
    const std::string_view number = id.substr(dot + 1);
    if (number.empty() || number.front() == '0') return std::nullopt;
    const char* end = number.data() + number.size();
    const auto [ptr, ec] = std::from_chars(number.data(), end, ref.session);
    if (ec != std::errc() || ptr != end) return std::nullopt;
    ref.worker = static_cast<int>(ref.session >> kWorkerShift);
    return ref;
}

std::string inboxChannel(std::string_view worker_address) {
    std::string out(kChannelPrefix);
    out += "w:";
    out += worker_address;
    return out;
}

}  // namespace wsrelay::fleet
