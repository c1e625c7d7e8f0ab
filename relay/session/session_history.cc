// A session's history command: {"op":"history"} (docs/protocol.md "History and recovery").
#include <string>
#include <vector>

#include "relay/fanout/channel_rules.h"
#include "relay/fanout/history_reads.h"
#include "relay/fanout/publisher.h"
#include "relay/session/session.h"
#include "relay/session/session_table.h"
#include "relay/session/worker_context.h"

namespace wsrelay {

using protocol::ErrorCode;

void Session::readHistory(const protocol::Command& cmd) {
    // The subscribe grant decides who may read a channel's past, as who may hear its present.
    if (identity_ && !identity_->permissions.subscribe.matches(cmd.channel)) {
        sendError(cmd.id, ErrorCode::Forbidden, "not allowed to subscribe to this channel");
        return;
    }
    HistoryQuery query =
        historyQuery(ctx_.channels.history(cmd.channel),
                     static_cast<uint64_t>(ctx_.config.history.max_limit), cmd.limit, cmd.since);
    if (query.refusal == HistoryQuery::Refusal::NoHistory) {
        sendError(cmd.id, ErrorCode::NoHistory, protocol::kNoHistory);
        return;
    }
    if (query.refusal == HistoryQuery::Refusal::LimitOverMax) {
        sendError(cmd.id, ErrorCode::LimitExceeded, protocol::kLimitOverMax);
        return;
    }
    // One read per session at a time: what a session can queue on the worker stays one read.
    if (reading_history_) {
        sendError(cmd.id, ErrorCode::RateLimited, protocol::kHistoryReadInFlight);
        return;
    }
    if (!ctx_.publisher.usable()) {
        sendError(cmd.id, ErrorCode::BrokerUnavailable, "broker unavailable");
        return;
    }
    reading_history_ = true;
    ctx_.history->read(
        cmd.channel, query.request,
        [&sessions = ctx_.sessions, session = id_, id = cmd.id, channel = std::string(cmd.channel),
         since_epoch = std::move(query.since_epoch)](uint64_t, HistoryAnswer&& answer) {
            // Cancelled when the session closes, so it is still there.
            if (Session* s = sessions.find(session)) {
                s->reading_history_ = false;
                s->answerHistory(id, channel, since_epoch, answer);
            }
        },
        id_);
}

void Session::answerHistory(std::optional<uint64_t> id, std::string_view channel,
                            const std::optional<std::string>& since_epoch,
                            const HistoryAnswer& answer) {
    if (answer.status != HistoryStatus::Ok) {
        sendError(id, ErrorCode::BrokerUnavailable, protocol::kHistoryUnavailable);
        return;
    }
    const std::vector<protocol::HistoryItem> items = historyItems(answer, since_epoch);
    FramePtr frame =
        protocol::encodeHistory(id, channel, items, {answer.top.offset, answer.top.epoch});
    // An answer no send queue could hold would close the connection as a slow consumer.
    if (frame->size() > static_cast<uint64_t>(ctx_.config.limits.send_queue_bytes)) {
        sendError(id, ErrorCode::LimitExceeded,
                  "history answer too large for limits.send_queue_bytes: ask for fewer messages");
        return;
    }
    reply(frame);
}

}  // namespace wsrelay
