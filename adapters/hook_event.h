#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

// The events the hook is told about (docs/hook.md): the vocabulary of the hook seam
// (adapters/hook.h) and the `event` label of the hook metrics (metrics/relay_metrics.h).
namespace wsrelay {

enum class HookEvent : uint8_t {
    Connect,
    Subscribe,
    Message,
    Disconnect,
    Unsubscribe,
    Occupied,  // a channel's first subscriber anywhere in the fleet (docs/hook.md)
    Vacated,   // its last one gone everywhere, for hook.vacated_delay_ms
    kCount
};
inline constexpr std::array<const char*, 7> kHookEventNames = {
    "connect", "subscribe", "message", "disconnect", "unsubscribe", "occupied", "vacated"};
static_assert(kHookEventNames.size() == static_cast<size_t>(HookEvent::kCount));

// The event's name in a hook body, the X-Wsrelay-Event header and the metrics.
constexpr const char* hookEventName(HookEvent event) {
    return kHookEventNames[static_cast<size_t>(event)];
}

}  // namespace wsrelay
