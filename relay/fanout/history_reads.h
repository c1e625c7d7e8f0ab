#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/broker.h"
#include "metrics/relay_metrics.h"
#include "relay/protocol/protocol.h"

namespace wsrelay {

// The messages of an answer to the history command or POST /api/history, as the protocol encodes
// them. Offsets of another epoch name messages of a history that is gone: none of the current one
// follow them, so an answer to a `since` of another epoch holds no message (its position tells the
// client the epoch changed). The items point into `answer`.
std::vector<protocol::HistoryItem> historyItems(const HistoryAnswer& answer,
                                                const std::optional<std::string>& since_epoch);

// The read a history command or POST /api/history asks for, with the checks that do not depend on
// who asks: the channel keeps no history (405), or `limit` is over history.max_limit (413).
// Without `limit`, max_limit; without `since`, the newest ones; with it, the oldest after it (to
// page forward), and `since_epoch` for historyItems().
struct HistoryQuery {
    enum class Refusal { None, NoHistory, LimitOverMax };
    Refusal refusal = Refusal::None;
    HistoryRequest request;
    std::optional<std::string> since_epoch;
};
HistoryQuery historyQuery(const HistoryPolicy& policy, uint64_t max_limit,
                          std::optional<uint64_t> limit,
                          const std::optional<protocol::Position>& since);

// A worker's reads of channel histories (Broker::readHistory), whoever wants them: the hub (a
// channel's recovery), a session ({"op":"history"}) or the HTTP API (/api/history). It gives each
// read a token, hands it to the broker while fewer than `max_in_flight` are under way and keeps the
// rest in arrival order, and routes each answer back to its reader. Single-threaded.
//
// Bounded by its readers: the hub has at most one read per open channel, a session one, an API
// request one, and each cancels its read when it goes away, so the queue never holds more reads
// than there are channels, sessions and API requests open on the worker.
class HistoryReads {
public:
    // Gets the answer; `token` is the one read() returned.
    using Done = std::function<void(uint64_t token, HistoryAnswer&& answer)>;

    HistoryReads(metrics::WorkerMetrics& metrics, size_t max_in_flight);
    HistoryReads(const HistoryReads&) = delete;
    HistoryReads& operator=(const HistoryReads&) = delete;

    // The broker reads go to; set once the worker made it (null before, and after stop: reads
    // then wait, and are dropped with the worker).
    void setBroker(Broker* broker);

    // Reads `channel` (request.token is set here). `done` runs exactly once, on a later loop turn
    // (never from inside read()), unless the read is cancelled first. `owner` (nonzero) names the
    // reader for cancelOwner().
    uint64_t read(std::string_view channel, HistoryRequest request, Done done, uint64_t owner = 0);
    // The reader no longer wants the answer: a waiting read is dropped, one under way is answered
    // to nobody. Unknown tokens (answered already) are ignored.
    void cancel(uint64_t token);
    // The same for every read of `owner` (nonzero).
    void cancelOwner(uint64_t owner);
    // BrokerHandler::onHistory: runs the read's `done` and sends the next waiting read.
    void onAnswer(uint64_t token, HistoryAnswer&& answer);

    size_t inFlight() const { return in_flight_.size(); }
    size_t waiting() const { return waiting_.size(); }

private:
    struct Reader {
        Done done;  // empty once cancelled
        uint64_t owner = 0;
    };
    struct Waiting {
        std::string channel;
        HistoryRequest request;
        Reader reader;
    };
    void send(const std::string& channel, const HistoryRequest& request, Reader reader);
    void sendWaiting();

    metrics::WorkerMetrics& metrics_;
    const size_t max_in_flight_;
    Broker* broker_ = nullptr;
    uint64_t next_token_ = 1;
    std::unordered_map<uint64_t, Reader> in_flight_;
    std::deque<Waiting> waiting_;
};

}  // namespace wsrelay
