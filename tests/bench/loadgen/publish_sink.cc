#include "publish_sink.h"

#include "http_publish_sink.h"
#include "redis_publish_sink.h"
#include "ws_publish_sink.h"

namespace wsrelay::loadgen {

std::unique_ptr<PublishSink> makePublishSink(RunState& state, Poller& poller) {
    switch (state.options.publish_via) {
        case PublishVia::Client: break;
        case PublishVia::Redis: return std::make_unique<RedisPublishSink>(state, poller);
        case PublishVia::Http: return std::make_unique<HttpPublishSink>(state, poller);
    }
    return std::make_unique<WsPublishSink>(state, poller);
}

}  // namespace wsrelay::loadgen
