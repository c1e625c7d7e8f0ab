#include "ws_publish_sink.h"

#include "process_info.h"

namespace wsrelay::loadgen {

WsPublishSink::WsPublishSink(RunState& state, Poller& poller) : state_(state) {
    const size_t count = state.options.protocol == Protocol::Raw ? state.channel_names.size() : 1;
    for (size_t i = 0; i < count; ++i) {
        conns_.push_back(std::make_unique<WsConnection>(poller, *this, uint32_t(i)));
    }
    is_open_.assign(count, false);
}

bool WsPublishSink::start() {
    const bool raw = state_.options.protocol == Protocol::Raw;
    for (auto& conn : conns_) {
        const uint32_t i = conn->index();
        const std::string query = raw ? "channel=" + state_.channel_names[i] : std::string();
        if (!conn->start(state_.endpoints[0], sourceAddress(i, state_.options.sources), query)) {
            state_.reportError("publisher: " + conn->error());
            return false;
        }
    }
    return true;
}

void WsPublishSink::publish(uint32_t channel, std::string_view payload) {
    if (state_.options.protocol == Protocol::Raw) {
        conns_[channel]->sendText(payload);
        return;
    }
    frame_.clear();
    frame_ += "{\"op\":\"publish\",\"channel\":\"";
    frame_ += state_.channel_names[channel];
    frame_ += "\",\"data\":";
    frame_ += payload;
    frame_ += '}';
    conns_[0]->sendText(frame_);
}

bool WsPublishSink::settled() const {
    for (const auto& conn : conns_) {
        if (conn->pendingBytes() != 0) return false;
    }
    return true;
}

void WsPublishSink::onOpen(WsConnection& conn) {
    is_open_[conn.index()] = true;
    ++open_;
}

void WsPublishSink::onText(WsConnection&, std::string_view message) {
    if (state_.options.protocol == Protocol::Raw) return;
    if (message.find("\"op\":\"error\"") != std::string_view::npos) {
        ++failures_;
        state_.reportError("publisher got " + std::string(message.substr(0, 200)));
    }
}

void WsPublishSink::onClosed(WsConnection& conn, uint16_t close_code, std::string_view error) {
    if (is_open_[conn.index()]) --open_;
    is_open_[conn.index()] = false;
    state_.reportError("publisher closed (" + std::to_string(close_code) + ") " +
                       std::string(error));
    state_.setup_failed = true;
}

}  // namespace wsrelay::loadgen
