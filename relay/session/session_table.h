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
    // Calls `f` for at least `max` sessions (whole hash buckets), or every one if there are
    // fewer, starting where the last call stopped: a bounded scan spread over calls. A rehash in
    // between may make it skip or repeat some. `f` must not add or remove sessions.
    template <class F>
    size_t forSome(size_t max, F&& f) {
        const size_t buckets = sessions_.bucket_count();
        size_t visited = 0;
        for (size_t n = 0; n < buckets && visited < max; ++n) {
            if (cursor_ >= buckets) cursor_ = 0;
            for (auto it = sessions_.begin(cursor_); it != sessions_.end(cursor_); ++it) {
                f(*it->second);
                ++visited;
            }
            ++cursor_;
        }
        return visited;
    }

private:
    std::unordered_map<uint64_t, Session*> sessions_;
    uint64_t next_id_;
    size_t cursor_ = 0;  // forSome(): the next bucket
};

}  // namespace wsrelay
