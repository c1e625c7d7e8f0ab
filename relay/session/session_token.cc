#include <algorithm>

#include "relay/auth/authenticator.h"
#include "relay/common/clock.h"
#include "relay/session/session.h"
#include "relay/session/worker_context.h"

// A session's token: the expiry warning and the close it schedules, and the refresh command that
// replaces the token (docs/auth.md).
namespace wsrelay {

using protocol::ErrorCode;

void Session::armAuthTimer() {
    struct ev_loop* loop = ctx_.loop;
    ev_timer_stop(loop, &auth_timer_);
    if (!identity_ || identity_->expires_at_ms == 0 || close_code_ != 0) return;
    const auto& auth = ctx_.config.auth;
    const int64_t now = wallClockMs();
    const int64_t close_at = identity_->expires_at_ms + auth.jwt.leeway_ms;
    int64_t due = close_at;
    if (auth.expiry_warning_ms > 0 && !expiry_warned_) {
        const int64_t warn_at = identity_->expires_at_ms - auth.expiry_warning_ms;
        if (now >= warn_at) {
            expiry_warned_ = true;
            reply(protocol::encodeTokenExpiring(identity_->expires_at_ms / 1000, close_at - now));
        } else {
            due = warn_at;
        }
    }
    ev_timer_set(&auth_timer_, static_cast<double>(std::max<int64_t>(due - now, 0)) / 1000.0, 0.);
    ev_timer_start(loop, &auth_timer_);
}

void Session::onAuthTimer(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<Session*>(w->data);
    if (self->close_code_ != 0 || !self->identity_) return;
    const int64_t close_at = self->identity_->expires_at_ms + self->ctx_.config.auth.jwt.leeway_ms;
    if (wallClockMs() >= close_at) {
        self->closeAfterFlush(CloseCode::TokenExpired);
        return;
    }
    self->armAuthTimer();
}

void Session::refresh(const protocol::Command& cmd) {
    auto& m = ctx_.metrics;
    Authenticator* auth = ctx_.authenticator;
    if (auth == nullptr || !identity_) {
        sendError(cmd.id, ErrorCode::BadRequest, "authentication is disabled");
        return;
    }
    auto next = std::make_unique<Identity>();
    const jwt::Failure failure = auth->verify(cmd.token, *next);
    if (failure != jwt::Failure::None || next->user != identity_->user) {
        m.token_refreshes[metrics::RefreshResult::Rejected].add();
        sendError(cmd.id, ErrorCode::Unauthorized,
                  failure != jwt::Failure::None ? jwt::failureText(failure) : "different user");
        return;
    }
    m.token_refreshes[metrics::RefreshResult::Ok].add();
    // Permissions follow the new token: what it no longer grants is left, and the client told.
    // The app's grants are not the token's to take away.
    for (const std::string& channel : ctx_.hub.channelsOf(membership_)) {
        if (app_grants_.contains(channel) || next->permissions.subscribe.matches(channel)) continue;
        leave(channel, LeaveReason::Token);
    }
    identity_ = std::move(next);
    expiry_warned_ = false;
    armAuthTimer();
    if (cmd.id) reply(protocol::encodeAck(*cmd.id));
}

}  // namespace wsrelay
