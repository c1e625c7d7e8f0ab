#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

namespace wsrelay {

class FleetControl;
class Hub;
class SessionTable;

// The server API's commands as each worker runs them on its own connections (docs/api.md): the
// handlers of `disconnect`, `subscribe`, `unsubscribe`, `channels` and `channel` on the worker's
// FleetControl. A command names its connections by user (the worker's SessionTable index) or by
// connection id (sent to that connection's worker only); each handler returns this worker's share
// of the answer, which the asking worker adds up (FleetApi). Single-threaded, on the worker's loop.
class FleetCommands {
public:
    // `instance`: this process's instance id, which a connection id must carry to be one of ours.
    FleetCommands(SessionTable& sessions, Hub& hub, std::string instance);

    // Registers the handlers on `fleet`, which must not outlive this object.
    void registerOn(FleetControl& fleet);

    // The handlers, each given the command object ({"cmd":..., arguments}) and returning its
    // result. disconnect {user|connection, code, reason} -> {"affected":n}
    std::string disconnect(const simdjson::dom::object& command);
    // subscribe / unsubscribe {user|connection, "channels":[...]} -> {"affected":n}
    std::string subscribe(const simdjson::dom::object& command);
    std::string unsubscribe(const simdjson::dom::object& command);
    // channels {"pattern":P, "limit":L} -> {"channels":[[name,subscribers],...],"truncated":b}: the
    // first `limit` matching channels in byte order, so the asker's merge of every worker's lists
    // is exact for the first `limit` names of the fleet.
    std::string channels(const simdjson::dom::object& command);
    // channel {"channel":C} -> {"subscribers":n}
    std::string channel(const simdjson::dom::object& command);

private:
    template <class F>
    size_t forTargets(const simdjson::dom::object& command, F&& act);

    SessionTable& sessions_;
    Hub& hub_;
    const std::string instance_;
};

}  // namespace wsrelay
