#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <type_traits>

namespace wsrelay {

// One element per value of the scoped enum E, indexed by E itself: a counter family can only be
// indexed by the enum of its label, and no call site turns an enum into a number. E's values must
// run 0, 1, ... and end with kCount, which is not an element.
template <class E, class T>
class EnumArray {
    static_assert(std::is_enum_v<E> && !std::is_convertible_v<E, std::underlying_type_t<E>>,
                  "EnumArray is indexed by a scoped enum");

public:
    using Key = E;
    static constexpr size_t kSize = static_cast<size_t>(E::kCount);

    constexpr EnumArray() = default;
    // Every element, in the enum's order; a list of another length does not compile.
    template <class... Values>
    requires(sizeof...(Values) == kSize &&
             (std::convertible_to<Values, T> && ...)) constexpr EnumArray(Values... values)
        : items_{static_cast<T>(values)...} {}

    constexpr T& operator[](E key) { return items_[index(key)]; }
    constexpr const T& operator[](E key) const { return items_[index(key)]; }

    static constexpr size_t size() { return kSize; }
    // In the enum's order, for loops over every element (rendering, describing).
    constexpr auto begin() { return items_.begin(); }
    constexpr auto end() { return items_.end(); }
    constexpr auto begin() const { return items_.begin(); }
    constexpr auto end() const { return items_.end(); }

private:
    static constexpr size_t index(E key) { return static_cast<size_t>(key); }

    std::array<T, kSize> items_{};
};

// Every value of E in order, kCount excluded: for (HookEvent e : enumValues<HookEvent>()).
template <class E>
constexpr std::array<E, static_cast<size_t>(E::kCount)> enumValues() {
    std::array<E, static_cast<size_t>(E::kCount)> values{};
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<E>(i);
    return values;
}

}  // namespace wsrelay
