#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

namespace wsrelay {

class Session;

// A worker's open sessions by id, and the ids new ones get. Single-threaded.
class SessionTable {
public:
    // Ids start at (worker index << 48) + 1: unique in the instance, readable in logs.
    explicit SessionTable(int worker_index)
        : next_id_((static_cast<uint64_t>(worker_index) << 48) + 1) {}

    uint64_t allocateId() { return next_id_++; }
    Session* find(uint64_t id) const {
        auto it = sessions_.find(id);
        return it == sessions_.end() ? nullptr : it->second;
    }
    void add(uint64_t id, Session* session) { sessions_.emplace(id, session); }
    void remove(uint64_t id) { sessions_.erase(id); }
    size_t size() const { return sessions_.size(); }
    bool empty() const { return sessions_.empty(); }
    template <class F>
    void forEach(F&& f) {
        for (auto& [id, session] : sessions_) f(*session);
    }

private:
    std::unordered_map<uint64_t, Session*> sessions_;
    uint64_t next_id_;
};

}  // namespace wsrelay
