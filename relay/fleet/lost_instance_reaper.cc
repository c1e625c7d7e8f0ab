#include "relay/fleet/lost_instance_reaper.h"

#include <algorithm>
#include <map>

#include "adapters/redis_payload.h"
#include "relay/common/log.h"
#include "relay/fleet/fleet_calls.h"

namespace wsrelay {
namespace {

void appendStrings(simdjson::dom::element list, std::vector<std::string>& out) {
    simdjson::dom::array items;
    if (list.get_array().get(items) != simdjson::SUCCESS) return;
    for (simdjson::dom::element item : items) {
        std::string_view s;
        if (item.get_string().get(s) == simdjson::SUCCESS) out.emplace_back(s);
    }
}

}  // namespace

LostInstanceReaper::LostInstanceReaper(FleetCalls& calls, std::string claimer, SendEvent send,
                                       size_t batch, metrics::WorkerMetrics& metrics)
    : calls_(calls), claimer_(std::move(claimer)), send_(std::move(send)),
      batch_(std::max<size_t>(1, batch)), metrics_(metrics) {}

bool LostInstanceReaper::eventBody(std::string_view connection, std::string_view record,
                                   simdjson::dom::parser& parser, std::string& padded,
                                   std::string& body) {
    padded.assign(record);
    const size_t length = padded.size();
    padded.append(simdjson::SIMDJSON_PADDING, '\0');
    simdjson::dom::object object;
    if (parser.parse(padded.data(), length, false).get_object().get(object) != simdjson::SUCCESS) {
        return false;
    }
    body = "{\"event\":\"disconnect\",\"connection\":";
    appendJsonString(connection, body);
    simdjson::dom::element e;
    body += ",\"user\":";
    body += object["user"].get(e) == simdjson::SUCCESS ? simdjson::minify(e) : "null";
    body += ",\"meta\":";
    body += object["meta"].get(e) == simdjson::SUCCESS ? simdjson::minify(e) : "null";
    body += ",\"code\":1006,\"reason\":\"instance_lost\",\"channels\":";
    simdjson::dom::array channels;
    body += object["channels"].get_array().get(channels) == simdjson::SUCCESS
                ? simdjson::minify(channels)
                : "[]";
    body += '}';
    return true;
}

void LostInstanceReaper::claimed(const std::vector<std::string>& instances) {
    for (const std::string& lost : instances) {
        if (std::find(queue_.begin(), queue_.end(), lost) == queue_.end()) queue_.push_back(lost);
    }
    stalled_ = false;
    if (!reading_ && !queue_.empty()) readBatch();
}

void LostInstanceReaper::readBatch() {
    reading_ = true;
    calls_.call("lease_records", std::string(kFleetKey),
                {claimer_, queue_.front(), std::to_string(batch_)},
                [this](FleetReply&& reply) { onRecords(std::move(reply)); });
}

void LostInstanceReaper::onRecords(FleetReply&& reply) {
    const std::string& lost = queue_.front();
    if (reply.status != FleetStatus::Ok || reply.items.empty()) {
        if (reply.status == FleetStatus::Error) {
            metrics_.fleet_lease_errors.add();
            WSR_LOG(Warn, "lost instance %s: lease_records refused (%s)", lost.c_str(),
                    reply.error.c_str());
        }
        return next(true);  // the broker is down, or refused: the next period tries again
    }
    if (reply.items[0] != "1") {
        WSR_LOG(Info, "lost instance %s: another instance reports its connections now",
                lost.c_str());
        return next(false);
    }
    if (reply.items.size() < 3) {
        WSR_LOG(Info, "lost instance %s: every connection reported", lost.c_str());
        return next(false);
    }
    ids_.clear();
    pending_.clear();
    done_.clear();
    cleanups_.clear();
    batch_failed_ = false;
    const size_t records = (reply.items.size() - 1) / 2;
    ids_.reserve(records);
    pending_.resize(records);
    // One more than the records until the loop is over, so that no settle() below finishes the
    // batch before every event was handed over.
    waiting_ = records + 1;
    for (size_t i = 0; i < records; ++i) {
        ids_.push_back(std::move(reply.items[1 + 2 * i]));
        const std::string& record = reply.items[2 + 2 * i];
        Cleanup& c = pending_[i];
        if (!eventBody(ids_[i], record, parser_, padded_, body_)) {
            // Not ours to understand: removed, with nothing to tell (logged).
            WSR_LOG(Warn, "lost instance %s: connection %s has a malformed record; removed",
                    lost.c_str(), ids_[i].c_str());
            done_.push_back(ids_[i]);
            cleanups_.emplace_back();
            --waiting_;
            continue;
        }
        simdjson::dom::element root;  // parsed again: eventBody's view is gone with its scope
        if (parser_.parse(padded_.data(), record.size(), false).get(root) == simdjson::SUCCESS) {
            std::string_view user;
            if (root["user"].get_string().get(user) == simdjson::SUCCESS) c.user = user;
            simdjson::dom::element list;
            if (root["presence"].get(list) == simdjson::SUCCESS) appendStrings(list, c.presence);
        }
        auto settle = [this, i](bool answered) {
            if (answered) {
                metrics_.fleet_instance_lost_events.add();
                done_.push_back(ids_[i]);
                cleanups_.push_back(std::move(pending_[i]));
            } else {
                metrics_.fleet_instance_lost_retries.add();
                batch_failed_ = true;
            }
            if (--waiting_ == 0) settled();
        };
        if (!send_) {
            settle(true);
            continue;
        }
        if (!send_(std::move(body_), settle)) {
            metrics_.fleet_instance_lost_retries.add();
            batch_failed_ = true;
            --waiting_;
        }
    }
    if (--waiting_ == 0) settled();
}

void LostInstanceReaper::settled() {
    cleanUp();
    if (batch_failed_) {
        WSR_LOG(Warn,
                "lost instance %s: some instance_lost events were not answered; they are sent "
                "again in the next lease period",
                queue_.front().c_str());
        return next(true);
    }
    readBatch();
}

void LostInstanceReaper::cleanUp() {
    if (done_.empty()) return;
    const std::string& lost = queue_.front();
    auto counted = [this](const char* what) {
        return [this, what](FleetReply&& reply) {
            if (reply.status != FleetStatus::Error) return;
            metrics_.fleet_lease_errors.add();
            WSR_LOG(Warn, "lost instance cleanup: %s refused (%s)", what, reply.error.c_str());
        };
    };
    std::map<std::string, std::vector<std::string>> presence;  // channel -> connection ids
    std::map<std::string, std::vector<std::string>> users;     // user -> connection ids
    for (size_t i = 0; i < done_.size(); ++i) {
        const Cleanup& c = cleanups_[i];
        for (const std::string& channel : c.presence) presence[channel].push_back(done_[i]);
        if (!c.user.empty()) users[c.user].push_back(done_[i]);
    }
    for (auto& [channel, ids] : presence) {
        calls_.call("presence_leave", channel, std::move(ids), counted("presence_leave"));
    }
    for (auto& [user, ids] : users) {
        ids.insert(ids.begin(), user);
        calls_.call("user_leave", std::string(kFleetKey), std::move(ids), counted("user_leave"));
    }
    std::vector<std::string> args{lost};
    args.insert(args.end(), done_.begin(), done_.end());
    calls_.call("lease_done", std::string(kFleetKey), std::move(args), counted("lease_done"));
    done_.clear();
    cleanups_.clear();
}

void LostInstanceReaper::next(bool retry_later) {
    reading_ = false;
    if (retry_later) {
        stalled_ = true;
        return;  // the front instance again at the next claimed()
    }
    queue_.pop_front();
    if (!queue_.empty() && !stalled_) readBatch();
}

}  // namespace wsrelay
