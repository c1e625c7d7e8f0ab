// A session's presence command: {"op":"presence"} (docs/protocol.md "Presence").
#include <string>

#include "relay/fanout/channel_rules.h"
#include "relay/fanout/publisher.h"
#include "relay/fleet/channel_presence.h"
#include "relay/session/session.h"
#include "relay/session/session_table.h"
#include "relay/session/worker_context.h"

namespace wsrelay {

using protocol::ErrorCode;

void Session::readPresence(const protocol::Command& cmd) {
    // Who is in a channel is for those who may be in it, as its history is.
    if (identity_ && !identity_->permissions.subscribe.matches(cmd.channel)) {
        sendError(cmd.id, ErrorCode::Forbidden, "not allowed to subscribe to this channel");
        return;
    }
    if (ctx_.presence == nullptr || !ctx_.channels.presence(cmd.channel).enabled) {
        sendError(cmd.id, ErrorCode::NoPresence, protocol::kNoPresence);
        return;
    }
    // One read per session at a time, as for history.
    if (reading_presence_) {
        sendError(cmd.id, ErrorCode::RateLimited, "a presence read is in flight");
        return;
    }
    if (!ctx_.publisher.usable()) {
        sendError(cmd.id, ErrorCode::BrokerUnavailable, "broker unavailable");
        return;
    }
    reading_presence_ = true;
    ctx_.presence->members(
        cmd.channel, ctx_.config.presence.max_members,
        [&sessions = ctx_.sessions, session = id_, id = cmd.id,
         channel = std::string(cmd.channel)](ChannelPresence::Members&& answer) {
            // Session ids are not reused: a session that closed meanwhile is not found.
            Session* s = sessions.find(session);
            if (s == nullptr) return;
            s->reading_presence_ = false;
            if (answer.status != FleetStatus::Ok) {
                s->sendError(id, ErrorCode::BrokerUnavailable, protocol::kPresenceUnavailable);
                return;
            }
            FramePtr frame = protocol::encodePresence(id, channel, answer.members, answer.cut);
            // An answer no send queue could hold would close the connection as a slow consumer.
            if (frame->size() > static_cast<uint64_t>(s->ctx_.config.limits.send_queue_bytes)) {
                s->sendError(id, ErrorCode::LimitExceeded,
                             "presence answer too large for limits.send_queue_bytes: lower "
                             "presence.max_members");
                return;
            }
            s->reply(frame);
        });
}

}  // namespace wsrelay
