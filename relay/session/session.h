#pragma once

#include <ev.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "relay/auth/permissions.h"
#include "relay/fanout/hub.h"
#include "relay/fanout/send_queue.h"
#include "relay/fanout/sink.h"
#include "relay/hook/hook_bridge.h"
#include "relay/protocol/close_codes.h"
#include "relay/protocol/protocol.h"
#include "relay/session/flush_scheduler.h"
#include "relay/session/rate_limiter.h"
#include "relay/session/wire.h"

namespace wsrelay {

struct WorkerContext;

// One client WebSocket connection, owned by its worker and touched only on that worker's thread.
// Inbound: reassembles messages, validates UTF-8, runs commands. Outbound: a bounded queue of
// shared frames written in batches when the worker's FlushScheduler says so (at the end of the
// loop turn they arrived in, or once websocket.write_coalesce_ms has passed since the last write),
// or one write per WRITEABLE callback while the wire holds back part of an earlier write. It
// reaches its connection only through its Wire: a unit test builds one from a context and a fake.
class Session final : public Sink {
public:
    // `identity` is null when auth.enabled is false (all is allowed). `wire` outlives the session.
    Session(WorkerContext& ctx, Wire& wire, uint64_t id, std::unique_ptr<Identity> identity);
    ~Session() override;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    uint64_t id() const { return id_; }
    Membership& membership() { return membership_; }
    bool closing() const { return close_code_ != 0; }

    // The connection was admitted: starts keepalive, joins auth.permissions.auto_subscribe and the
    // channels the connect hook gave it, and starts the token's expiry clock.
    void start(const std::vector<std::string>& hook_channels);

    // The client negotiated permessage-deflate: it gets the compressed variant of a frame when
    // there is one (Frame::deflated). Before start().
    void useDeflate();

    // Sink: frames shared with other subscribers. Applies limits.slow_consumer on overflow.
    void push(const FramePtr& frame) override;
    // A reply only this client gets (ack, error, pong). Counts against the same limits.
    void reply(const FramePtr& frame) { push(frame); }
    void error(std::optional<uint64_t> id, protocol::ErrorCode code, std::string_view reason) {
        sendError(id, code, reason);
    }

    // What commands and hook answers do (docs/protocol.md, docs/hook.md). `since` asks to recover
    // the channel's messages after it (a channel with history).
    void subscribeAndAnswer(std::string_view channel, std::optional<uint64_t> id,
                            std::optional<protocol::Position> since = std::nullopt);
    void publishNow(std::string_view channel, std::string_view data, std::optional<uint64_t> id);
    // Server-side subscription changes, told to the client with subscribed/unsubscribed frames.
    // join() is the app's grant (connect answer, hook answer): a token refresh keeps it.
    void join(std::string_view channel);
    // The one way out of a channel short of closing, whoever asks (LeaveReason): the app hears of
    // it in an unsubscribe event (when hook.events has it) behind the connection's other events,
    // and the client in an unsubscribed frame ("reason": hook, forbidden for a token, server),
    // except for its own command, which the caller acks. A client's command is refused (HookBusy,
    // nothing changes) when the app's queue for it is full; any other leave happens anyway, the
    // event counted as overflow and logged.
    enum class LeaveResult : uint8_t { Left, NotSubscribed, HookBusy };
    LeaveResult leave(std::string_view channel, LeaveReason reason);
    // Closes with an app-chosen code (4000-4999) and reason once the queued frames are written.
    void closeWith(int code, std::string_view reason);
    // The JWT's user, or the one the connect hook set; empty when neither.
    const std::string& userId() const;
    // What presence shows of the connection: the connect answer's "info", else the token's info
    // claim; empty = null.
    const std::string& presenceInfo() const {
        return hook_.info.empty() && identity_ ? identity_->info : hook_.info;
    }
    // Its record in the instance's connection registry changed (channels, meta): rewritten at
    // the end of the turn (docs/scaling.md "Leases").
    void recordChanged();
    HookSessionState& hookState() { return hook_; }
    // The app heard of this connection at connect: it hears of its close too, even if refused.
    void markAnnounced() { announced_ = true; }

    // What lws says of a piece of a message handed to onReceive.
    struct Piece {
        bool binary = false;   // the message is a binary one
        bool final = true;     // the piece ends its frame, and the frame is the message's last
        size_t remaining = 0;  // bytes of this frame still to come
    };

    // Connection events (edge.cc). A negative return closes the connection now, with the close
    // reason set on the wire.
    int onReceive(const char* data, size_t len, const Piece& piece);
    int onWriteable();
    // Once per loop turn, for a session that got frames this turn (FlushScheduler): writes
    // them at once when the wire holds nothing back, instead of waiting for a WRITEABLE callback.
    // This spares two epoll_ctl calls and a loop wake-up per delivery (LwsWire::write says when
    // writing outside the callback is safe).
    void flushQueued();
    // For a caller about to flush this session after a few others: each write is a system call
    // that pushes the turn's sessions out of the cache, so their state is fetched ahead, in two
    // steps (the object first, then what it points to).
    void prefetchState() const {
        const char* self = reinterpret_cast<const char*>(this);
        __builtin_prefetch(self);
        __builtin_prefetch(self + 64);
        __builtin_prefetch(self + kWriteStateEnd - 1);
    }
    void prefetchQueue() const {
        queue_.prefetchHead();
        __builtin_prefetch(&wire_);
    }
    // The flush scheduler's bookkeeping for this session.
    FlushSlot& flushSlot() { return flush_slot_; }
    int onTimer();
    void onPong();
    void onPeerClose(const unsigned char* payload, size_t len);
    // The connection is gone: leave the hub, count the disconnect by its close code.
    void onClosed();

    // Sends a close frame with `code` once the frames queued before it are written (drain and
    // handshake refusals use this, so {"op":"reconnect"} still reaches the client).
    void closeAfterFlush(CloseCode code);
    // Drops anything queued and closes as soon as the socket allows (slow consumers, bad input).
    void closeNow(CloseCode code);
    // What this session holds against the memory budget: its send queue and any partial message.
    uint64_t queuedBytes() const { return queue_.bytes() + rx_.size(); }
    // The frame at the head of its send queue (null when empty): the same one twice, some time
    // apart, means it wrote nothing meanwhile (MemoryShedder).
    const void* queueHead() const { return queue_.empty() ? nullptr : queue_.front().get(); }
    // Closes it at once for the memory budget (MemoryShedder): 4001 with kMemoryBudgetReason, its
    // queue dropped and counted.
    void shedForMemory();
    static constexpr std::string_view kMemoryBudgetReason = "memory budget";
    // Schedules the drain close at `delay_us` from now (the jitter that spreads reconnects).
    void scheduleDrain(int64_t delay_us);

private:
    // Sets the close code and reason on the wire; the caller returns the -1 to lws.
    int closeImmediately(CloseCode code);
    // The same for what the client sent (1003, 1007, 1009), made to stick (see session.cc).
    int refuseInput(CloseCode code);
    // The reason that goes with the close code this session chose: the app's, or the code's own.
    std::string_view closeReason(int code) const;
    int handleMessage(std::string_view message);
    void runCommand(const protocol::Command& cmd);
    // {"op":"history"} (session_history.cc): one read under way at a time.
    void readHistory(const protocol::Command& cmd);
    void answerHistory(std::optional<uint64_t> id, std::string_view channel,
                       const std::optional<std::string>& since_epoch, const HistoryAnswer& answer);
    // {"op":"presence"} (session_presence.cc): one read under way at a time.
    void readPresence(const protocol::Command& cmd);
    void sendError(std::optional<uint64_t> id, protocol::ErrorCode code, std::string_view reason,
                   std::optional<uint64_t> retry_after_ms = std::nullopt);
    void countBadCommand();
    // limits.rate: false when the command is refused (429 sent, maybe the close with 4429 begun).
    bool admitRate(const protocol::Command& cmd);
    // Every change of the queue's bytes goes through these (the gauge and the memory credit).
    void queued(int64_t bytes);
    void unqueued(int64_t bytes);
    void clearRx();
    // A hint only: fields moved past it cost a cache miss per write, nothing else.
    static constexpr size_t kWriteStateEnd = 128;
    FlushSlot flush_slot_;  // kept by the worker's FlushScheduler

    void requestWrite();
    // One coalesced write of the queue's head (and a due ping); -1 when the socket is gone.
    int writeQueued();
    void armPingTimer();
    // The token (session_token.cc): {"op":"refresh"} replaces it.
    void refresh(const protocol::Command& cmd);
    // Arms auth_timer_ for the next token event: the expiry warning, then the close.
    void armAuthTimer();
    static void onAuthTimer(struct ev_loop* loop, ev_timer* w, int revents);

    // What a write reads, together in the object's first kWriteStateEnd bytes (with the slot
    // above): the worker writes hundreds of sessions per turn, each a cache miss otherwise.
    WorkerContext& ctx_;
    Wire& wire_;
    int close_code_ = 0;  // nonzero once we decided to close; also what onClosed() counts
    bool close_after_flush_ = false;
    bool ping_due_ = false;
    bool awaiting_pong_ = false;
    bool drain_scheduled_ = false;
    bool peer_closed_ = false;
    // permessage-deflate (useDeflate): push() reads it for every frame, so it sits here with what
    // a write reads; the hub reads the membership's copy, at subscribe and unsubscribe only.
    bool deflate_ = false;
    // closeImmediately() answered -1: every later piece of input is answered so too
    // (refuseInput).
    bool refused_ = false;
    SendQueue queue_;
    uint64_t id_;
    Membership membership_;
    std::unique_ptr<Identity> identity_;
    // Token deadlines are rare and far apart: a libev timer (a heap) rather than lws's sorted list.
    ev_timer auth_timer_{};
    bool expiry_warned_ = false;
    HookSessionState hook_;
    std::string close_reason_;    // set by closeWith(); otherwise the code's own reason
    bool announced_ = false;      // the app hears of its disconnect (admitted, or told at connect)
    bool client_closed_ = false;  // the client's close frame came before any close of ours
    bool reading_history_ = false;   // a history command's read is under way (owner: id_)
    bool reading_presence_ = false;  // a presence command's read is under way
    std::string rx_;                 // only used when a message arrives in more than one piece
    uint32_t bad_commands_ = 0;
    uint32_t rate_refusals_ = 0;  // commands refused by limits.rate in a row
    EnumArray<RateKind, TokenBucket> rate_buckets_;
    // Kept with auth only (only a refresh reads them). 432 -> 440 bytes: the same 448-byte malloc
    // chunk, so no memory per connection until the app grants something.
    AppGrants app_grants_;
};

}  // namespace wsrelay
