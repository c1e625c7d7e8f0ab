#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace wsrelay {

class Session;

// A worker's open sessions by id and by user, and the ids new ones get. Single-threaded.
class SessionTable {
public:
    // Ids start at (worker index << 48) + 1: unique in the instance, readable in logs.
    explicit SessionTable(int worker_index)
        : next_id_((static_cast<uint64_t>(worker_index) << 48) + 1) {}

    uint64_t allocateId() { return next_id_++; }
    Session* find(uint64_t id) const {
        auto it = sessions_.find(id);
        return it == sessions_.end() ? nullptr : it->second.session;
    }
    // `user`: the session's user (Session::userId(), fixed for its life); empty when it has none.
    void add(uint64_t id, Session* session, std::string_view user = {}) {
        Users::value_type* slot = nullptr;
        if (!user.empty()) {
            auto it = users_.find(user);
            if (it == users_.end()) it = users_.emplace(std::string(user), Members{}).first;
            it->second.insert(session);
            slot = &*it;
        }
        sessions_.emplace(id, Entry{session, slot});
    }
    void remove(uint64_t id) {
        auto it = sessions_.find(id);
        if (it == sessions_.end()) return;
        if (Users::value_type* slot = it->second.user) {
            slot->second.erase(it->second.session);
            if (slot->second.empty()) users_.erase(users_.find(slot->first));
        }
        sessions_.erase(it);
    }
    size_t size() const { return sessions_.size(); }
    bool empty() const { return sessions_.empty(); }
    template <class F>
    void forEach(F&& f) {
        for (auto& [id, entry] : sessions_) f(*entry.session);
    }
    // Calls `f` for every session of `user` (none for an empty user): one look-up, no scan, so a
    // fleet-wide command for one user costs each worker only that user's sessions. `f` must not add
    // or remove sessions.
    template <class F>
    void forUser(std::string_view user, F&& f) {
        if (user.empty()) return;
        auto it = users_.find(user);
        if (it == users_.end()) return;
        for (Session* session : it->second) f(*session);
    }
    size_t userCount() const { return users_.size(); }
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
                f(*it->second.session);
                ++visited;
            }
            ++cursor_;
        }
        return visited;
    }

private:
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using Members = std::unordered_set<Session*>;
    using Users = std::unordered_map<std::string, Members, Hash, std::equal_to<>>;
    struct Entry {
        Session* session;
        Users::value_type* user;  // its user's entry (stable: map nodes do not move); null: none
    };
    std::unordered_map<uint64_t, Entry> sessions_;
    Users users_;
    uint64_t next_id_;
    size_t cursor_ = 0;  // forSome(): the next bucket
};

}  // namespace wsrelay
