#pragma once

#include <mutex>
#include <string>

namespace wsrelay::loadgen {

// The first error of a run, kept for its report. Any thread; taken only when something failed.
class FirstError {
public:
    void note(const std::string& what) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (first_.empty()) first_ = what;
    }
    std::string get() {
        std::lock_guard<std::mutex> lock(mutex_);
        return first_;
    }

private:
    std::mutex mutex_;
    std::string first_;
};

}  // namespace wsrelay::loadgen
