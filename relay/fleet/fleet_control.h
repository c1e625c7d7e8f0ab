#pragma once

#include <ev.h>
#include <simdjson.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wsrelay {

class FleetCalls;
namespace metrics {
struct WorkerMetrics;
}

// A worker's end of the fleet's control channels (docs/scaling.md "The fleet"). Every worker of
// every instance subscribes the control channel and its own inbox (channels()); a command sent to
// the control channel reaches them all, one sent to an inbox reaches that worker. A command is a
// JSON object {"q":<request id>,"cmd":<name>,...}: the worker runs the handler registered for the
// name against its own connections and publishes {"a":<request id>,"r":<handler's result>} to the
// asker's inbox. The asker learns from the publish how many workers it reached (Redis's PUBLISH
// count), so it knows when every answer is in, or gives up at fleet.command_timeout_ms. In memory
// mode the in-process broker carries the same messages between the workers of the one instance.
// Single-threaded, on the worker's loop; everything goes through the worker's FleetCalls.
class FleetControl {
public:
    struct Options {
        std::string instance;  // this process's instance id
        int worker = 0;
        double timeout_s = 1.0;     // fleet.command_timeout_ms
        size_t max_pending = 1024;  // fleet.max_pending_commands: asks under way at once
    };
    FleetControl(struct ev_loop* loop, FleetCalls& calls, Options options,
                 metrics::WorkerMetrics* metrics = nullptr);
    ~FleetControl();
    FleetControl(const FleetControl&) = delete;
    FleetControl& operator=(const FleetControl&) = delete;

    // The internal channels the worker subscribes through its broker: the control channel and its
    // inbox.
    std::vector<std::string> channels() const;
    // This worker's address, `<instance>.<worker>`.
    const std::string& address() const { return address_; }
    const std::string& instance() const { return options_.instance; }

    // A command handler acts on this worker's connections and returns its result as JSON text
    // (an object, e.g. {"affected":2}). It runs on the worker's thread, from onMessage().
    using Handler = std::function<std::string(const simdjson::dom::object& command)>;
    void on(std::string cmd, Handler handler);

    struct Answers {
        std::vector<std::string> results;  // each worker's handler result, in arrival order
        uint64_t expected = 0;             // workers the command reached
        bool unavailable = false;          // it could not be sent: the broker is down
        // Workers that were reached and did not answer in time.
        uint64_t unanswered() const {
            return expected > results.size() ? expected - results.size() : 0;
        }
    };
    using Done = std::function<void(Answers&&)>;
    enum class Ask : uint8_t { Sent, Busy };
    // Sends `cmd` with `fields` (JSON object members without the braces, e.g. "user":"42"; may be
    // empty) to every worker of the fleet (`target` empty) or to the worker at address `target`;
    // `done` runs once, on a later loop turn: when every reached worker answered, at the timeout,
    // or at once (0 expected) when nobody holds the channel. Busy (and `done` never runs) when
    // max_pending asks are under way.
    Ask ask(std::string_view target, std::string_view cmd, std::string_view fields, Done done);
    // The same without an answer: nobody replies to it.
    void tell(std::string_view target, std::string_view cmd, std::string_view fields);

    // A message on one of channels() (the worker routes every fleet channel here).
    void onMessage(std::string_view channel, std::string_view data);

    size_t pendingAsks() const { return pending_.size(); }

private:
    struct Pending;
    static void onTimeout(struct ev_loop* loop, ev_timer* w, int revents);
    std::string targetChannel(std::string_view target) const;
    void handleCommand(const simdjson::dom::object& message, std::string_view cmd);
    void handleReply(const simdjson::dom::object& message, std::string_view id);
    void finish(uint64_t id);

    struct ev_loop* const loop_;
    FleetCalls& calls_;
    const Options options_;
    metrics::WorkerMetrics* const metrics_;
    const std::string address_;
    const std::string inbox_;
    std::unordered_map<std::string, Handler> handlers_;
    std::unordered_map<uint64_t, std::unique_ptr<Pending>> pending_;
    uint64_t next_id_ = 1;
    simdjson::dom::parser parser_;
};

}  // namespace wsrelay
