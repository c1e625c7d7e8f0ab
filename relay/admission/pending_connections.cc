#include "relay/admission/pending_connections.h"

#include <netinet/in.h>

#include <cstring>
#include <string_view>

#include "relay/admission/upgrade_gate.h"

namespace wsrelay {

AddressKey addressKey(const sockaddr_storage& peer) {
    AddressKey key{};
    if (peer.ss_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(peer);
        key[10] = 0xff;
        key[11] = 0xff;
        std::memcpy(key.data() + 12, &v4.sin_addr, 4);
    } else if (peer.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(peer);
        std::memcpy(key.data(), &v6.sin6_addr, 16);
    }
    return key;
}

size_t PendingConnections::AddressHash::operator()(const AddressKey& a) const {
    return std::hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(a.data()), a.size()));
}

PendingConnections::~PendingConnections() = default;

PendingConnections::Admit PendingConnections::add(int fd, const AddressKey& address, double now) {
    if (max_per_address_ != 0) {
        auto it = per_address_.find(address);
        if (it != per_address_.end() && it->second >= max_per_address_) {
            return Admit::OverAddressLimit;
        }
    }
    if (by_fd_.size() - closing_ >= max_) return Admit::Full;
    auto owned = std::make_unique<PendingConnection>();
    PendingConnection& c = *owned;
    c.fd = fd;
    c.address = address;
    c.since = now;
    by_fd_[fd] = std::move(owned);
    ++per_address_[address];
    link(c);
    return Admit::Added;
}

PendingConnection* PendingConnections::find(int fd) {
    auto it = by_fd_.find(fd);
    return it == by_fd_.end() ? nullptr : it->second.get();
}

PendingConnection* PendingConnections::find(lws* wsi) {
    auto it = by_wsi_.find(wsi);
    return it == by_wsi_.end() ? nullptr : it->second;
}

void PendingConnections::attach(PendingConnection& c, lws* wsi) {
    c.wsi = wsi;
    by_wsi_[wsi] = &c;
}

void PendingConnections::setStage(PendingConnection& c, PendingConnection::Stage stage,
                                  double now) {
    using Stage = PendingConnection::Stage;
    if (c.stage == Stage::Closing) --closing_;
    if (stage == Stage::Closing) ++closing_;
    c.stage = stage;
    unlink(c);
    if (stage == Stage::Parked || stage == Stage::Closing) return;
    c.since = now;
    link(c);
}

void PendingConnections::remove(PendingConnection& c) {
    unlink(c);
    if (c.stage == PendingConnection::Stage::Closing) --closing_;
    if (auto it = per_address_.find(c.address); it != per_address_.end() && --it->second == 0) {
        per_address_.erase(it);
    }
    if (c.wsi != nullptr) by_wsi_.erase(c.wsi);
    by_fd_.erase(c.fd);  // destroys c
}

void PendingConnections::link(PendingConnection& c) {
    c.older = newest_;
    c.newer = nullptr;
    if (newest_ != nullptr) newest_->newer = &c;
    newest_ = &c;
    if (oldest_ == nullptr) oldest_ = &c;
    c.listed = true;
}

void PendingConnections::unlink(PendingConnection& c) {
    if (!c.listed) return;
    if (c.older != nullptr) c.older->newer = c.newer;
    if (c.newer != nullptr) c.newer->older = c.older;
    if (oldest_ == &c) oldest_ = c.newer;
    if (newest_ == &c) newest_ = c.older;
    c.older = c.newer = nullptr;
    c.listed = false;
}

}  // namespace wsrelay
