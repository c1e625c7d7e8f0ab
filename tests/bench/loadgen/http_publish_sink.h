#pragma once

// --publish-via http: a few HTTP/1.1 keep-alive connections (--http-connections), one request in
// flight on each (no pipelining), so a message waits for a free connection and its timestamp is
// taken when it is handed to one. wsrelay: POST the URL with {"channel":C,"data":PAYLOAD} and
// X-API-Key; raw: POST URL?channel=C with the payload as the body. A non-2xx answer, or a
// connection lost before the answer, is a failed publish. A connection the server closes (e.g.
// after its keep-alive request limit) is opened again.

#include <netinet/in.h>

#include <memory>
#include <string>
#include <vector>

#include "publish_sink.h"
#include "tcp_connection.h"

namespace wsrelay::loadgen {

class HttpPublishSink : public PublishSink, public TcpHandler {
public:
    HttpPublishSink(RunState& state, Poller& poller);

    // PublishSink
    bool start() override;
    bool ready() const override;
    bool canPublish() const override;
    void publish(uint32_t channel, std::string_view payload) override;
    void flush() override;
    bool settled() const override { return outstanding_ == 0; }
    uint64_t failures() const override { return failures_; }

    // TcpHandler
    void onTcpOpen(TcpConnection& conn) override;
    size_t onTcpData(TcpConnection& conn, std::string_view data) override;
    void onTcpClosed(TcpConnection& conn, std::string_view error) override;

private:
    struct Slot {
        std::unique_ptr<TcpConnection> conn;
        bool opened = false;         // connected since the last start
        bool busy = false;           // a request is waiting for its answer
        bool reconnect = false;      // closed after having been open: open again on flush()
        int until_close_status = 0;  // an answer without a length, whose body ends at the close
    };

    bool connect(Slot& slot);
    void answered(Slot& slot, int status, std::string_view head);

    RunState& state_;
    std::vector<Slot> slots_;
    sockaddr_in addr_{};
    std::string authority_;
    std::string path_;
    std::string address_error_;
    size_t cursor_ = 0;
    uint64_t outstanding_ = 0;
    uint64_t failures_ = 0;
    std::string request_;
    std::string body_;
};

}  // namespace wsrelay::loadgen
