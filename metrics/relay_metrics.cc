#include "metrics/relay_metrics.h"

#include <dirent.h>
#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string_view>

#ifndef WSRELAY_VERSION
#error "WSRELAY_VERSION must be defined (metrics/CMakeLists.txt does)"
#endif

namespace wsrelay::metrics {

namespace {

constexpr size_t kOtherCloseIndex = kCloseCodes.size() - 1;

constexpr size_t indexOf500() {
    for (size_t i = 0; i < kErrorCodes.size(); ++i) {
        if (kErrorCodes[i] == 500) {
            return i;
        }
    }
    return kErrorCodes.size();
}
constexpr size_t kInternalErrorIndex = indexOf500();
static_assert(kInternalErrorIndex < kErrorCodes.size(), "kErrorCodes must contain 500");

// Process-level metrics, computed at render time rather than bumped by workers.
enum class ProcessMetric : size_t {
    BuildInfo,
    ResidentMemory,
    CpuSeconds,
    OpenFds,
    MaxFds,
    StartTime,
    Workers,
    Ready,
    Draining,
    BrokerUp,
    ProbeAge,
    MemoryBudget,
    kCount,
};

struct ProcessMetricDef {
    ProcessMetric id;
    const char* name;
    Type type;
    const char* help;
    const char* label;        // nullptr: unlabelled
    const char* label_value;  // the one value `label` takes
};

constexpr std::array<ProcessMetricDef, static_cast<size_t>(ProcessMetric::kCount)> kProcessMetrics =
    {{
        {ProcessMetric::BuildInfo, "wsrelay_build_info", Type::Gauge,
         "Always 1; the version label carries the wsrelay version", "version", WSRELAY_VERSION},
        {ProcessMetric::ResidentMemory, "wsrelay_process_resident_memory_bytes", Type::Gauge,
         "Resident set size of the process in bytes", nullptr, nullptr},
        {ProcessMetric::CpuSeconds, "wsrelay_process_cpu_seconds_total", Type::Counter,
         "User and system CPU time consumed by the process in seconds", nullptr, nullptr},
        {ProcessMetric::OpenFds, "wsrelay_process_open_fds", Type::Gauge, "Open file descriptors",
         nullptr, nullptr},
        {ProcessMetric::MaxFds, "wsrelay_process_max_fds", Type::Gauge,
         "Soft limit on open file descriptors (RLIMIT_NOFILE)", nullptr, nullptr},
        {ProcessMetric::StartTime, "wsrelay_process_start_time_seconds", Type::Gauge,
         "Start time of the process since the Unix epoch in seconds", nullptr, nullptr},
        {ProcessMetric::Workers, "wsrelay_workers", Type::Gauge, "Worker threads", nullptr,
         nullptr},
        {ProcessMetric::Ready, "wsrelay_ready", Type::Gauge,
         "1 when /readyz answers 200, 0 otherwise", nullptr, nullptr},
        {ProcessMetric::Draining, "wsrelay_draining", Type::Gauge,
         "1 while the server is draining connections, 0 otherwise", nullptr, nullptr},
        {ProcessMetric::BrokerUp, "wsrelay_broker_up", Type::Gauge,
         "1 when every worker's broker connection is usable, 0 otherwise", nullptr, nullptr},
        {ProcessMetric::ProbeAge, "wsrelay_broker_probe_age_seconds", Type::Gauge,
         "Seconds since the least recent successful delivery probe of any worker "
         "(0 without probes)",
         nullptr, nullptr},
        {ProcessMetric::MemoryBudget, "wsrelay_memory_budget_bytes", Type::Gauge,
         "Bytes the process may queue before it refuses publishes and sheds queues (0: no budget)",
         nullptr, nullptr},
    }};

// Unlabelled histograms written by the workers.
struct HistogramDef {
    const char* name;
    const char* help;
    Histogram WorkerMetrics::*field;
};
constexpr std::array<HistogramDef, 3> kHistograms = {{
    {"wsrelay_broker_publish_duration_seconds",
     "Time from queueing a publish to the broker accepting it",
     &WorkerMetrics::broker_publish_duration},
    {"wsrelay_broker_probe_duration_seconds", "Round trip of delivery probes through the broker",
     &WorkerMetrics::broker_probe_duration},
    {"wsrelay_delivery_latency_seconds",
     "Time from a message entering the relay fleet to its write to a client socket",
     &WorkerMetrics::delivery_latency},
}};

constexpr bool processTableInOrder() {
    for (size_t i = 0; i < kProcessMetrics.size(); ++i) {
        if (static_cast<size_t>(kProcessMetrics[i].id) != i) {
            return false;
        }
    }
    return true;
}
static_assert(processTableInOrder(), "kProcessMetrics must be indexed by ProcessMetric");

using Workers = std::vector<std::unique_ptr<WorkerMetrics>>;

int64_t sumSlot(const Workers& workers, Slot WorkerMetrics::*field) {
    int64_t sum = 0;
    for (const auto& w : workers) {
        sum += ((*w).*field).value();
    }
    return sum;
}

// A labelled family's sums across workers, in the order of its label values.
template <class Series>
std::vector<int64_t> sumSlots(const Workers& workers, Series WorkerMetrics::*field) {
    std::vector<int64_t> sums(std::size(workers.front().get()->*field), 0);
    for (const auto& w : workers) {
        size_t i = 0;
        for (const Slot& slot : (*w).*field) sums[i++] += slot.value();
    }
    return sums;
}

prometheus::MetricFamily makeFamily(const char* name, const char* help, Type type) {
    prometheus::MetricFamily family;
    family.name = name;
    family.help = help;
    family.type = type == Type::Counter ? prometheus::MetricType::Counter
                  : type == Type::Gauge ? prometheus::MetricType::Gauge
                                        : prometheus::MetricType::Histogram;
    return family;
}

constexpr const char* kHookRequestsName = "wsrelay_hook_requests_total";
constexpr const char* kHookRequestsHelp = "Hook requests by event and outcome";
constexpr const char* kHookDurationName = "wsrelay_hook_request_duration_seconds";
constexpr const char* kHookDurationHelp =
    "Time from sending a hook request to its answer, retries included, by event";
constexpr const char* kIpLimitedName = "wsrelay_ip_limited_total";
constexpr const char* kIpLimitedHelp =
    "Connections and API requests the per-address limits refused (or would have, in a dry run)";

constexpr const char* kRateLimitedName = "wsrelay_rate_limited_total";
constexpr const char* kRateLimitedHelp =
    "Client commands over their kind's limits.rate, by kind and by what became of them "
    "(refused with 429, or only counted under limits.rate.dry_run)";

// A counter family with two labels, every pair rendered: `slot(worker, a, b)` is one worker's
// series for the pair, summed across workers.
template <class A, class B, class NameA, class NameB, class SlotOf>
void addCrossedCounter(std::vector<prometheus::MetricFamily>& families, const Workers& workers,
                       const char* name, const char* help, const char* label_a, NameA name_a,
                       const char* label_b, NameB name_b, SlotOf slot) {
    families.push_back(makeFamily(name, help, Type::Counter));
    for (const A a : enumValues<A>()) {
        for (const B b : enumValues<B>()) {
            int64_t sum = 0;
            for (const auto& w : workers) sum += slot(*w, a, b).value();
            prometheus::ClientMetric sample;
            sample.label.push_back({label_a, name_a(a)});
            sample.label.push_back({label_b, name_b(b)});
            sample.counter.value = static_cast<double>(sum);
            families.back().metric.push_back(std::move(sample));
        }
    }
}

void addSample(prometheus::MetricFamily& family, Type type, double value,
               const char* label = nullptr, const char* label_value = nullptr) {
    prometheus::ClientMetric sample;
    if (label != nullptr) {
        sample.label.push_back({label, label_value});
    }
    if (type == Type::Counter) {
        sample.counter.value = value;
    } else {
        sample.gauge.value = value;
    }
    family.metric.push_back(std::move(sample));
}

// One histogram sample: `histograms` summed, with an optional label.
prometheus::ClientMetric histogramSample(const std::vector<const Histogram*>& histograms,
                                         const char* label = nullptr,
                                         const char* label_value = nullptr) {
    std::array<int64_t, kLatencyBuckets.size() + 1> counts{};
    int64_t sum_us = 0;
    for (const Histogram* h : histograms) {
        for (size_t i = 0; i < counts.size(); ++i) counts[i] += h->count(i);
        sum_us += h->sumMicros();
    }
    prometheus::ClientMetric sample;
    if (label != nullptr) sample.label.push_back({label, label_value});
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        cumulative += static_cast<uint64_t>(counts[i]);
        sample.histogram.bucket.push_back({cumulative, kLatencyBuckets[i]});
    }
    cumulative += static_cast<uint64_t>(counts.back());
    sample.histogram.sample_count = cumulative;
    sample.histogram.sample_sum = static_cast<double>(sum_us) / 1e6;
    return sample;
}

// Age of the least recent probe among workers that send probes; 0 if none does.
double probeAgeSeconds(const Workers& workers) {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    const int64_t now_us = int64_t{now.tv_sec} * 1000000 + now.tv_nsec / 1000;
    int64_t oldest = 0;
    for (const auto& w : workers) {
        const int64_t last = w->probe_last_ok_us.value();
        if (last != 0 && (oldest == 0 || last < oldest)) oldest = last;
    }
    return oldest == 0 ? 0.0 : static_cast<double>(std::max<int64_t>(0, now_us - oldest)) / 1e6;
}

std::string readFile(const char* path) {
    std::ifstream in(path);
    if (!in) {
        return {};
    }
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// Whitespace-separated fields of /proc/self/stat after the command name, which is in parentheses
// and may itself contain spaces or parentheses. Element 0 is field 3 (state) of proc(5).
std::vector<std::string> procSelfStatFields() {
    const std::string stat = readFile("/proc/self/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) {
        return {};
    }
    std::vector<std::string> fields;
    std::istringstream in(stat.substr(close + 1));
    for (std::string field; in >> field;) {
        fields.push_back(std::move(field));
    }
    return fields;
}

// proc(5) field number → index into procSelfStatFields().
constexpr size_t statField(size_t field_number) { return field_number - 3; }

double parseDouble(const std::string& text) {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    return end == text.c_str() ? 0.0 : value;
}

double clockTicksPerSecond() {
    const long ticks = sysconf(_SC_CLK_TCK);
    return ticks > 0 ? static_cast<double>(ticks) : 100.0;
}

double cpuSeconds() {
    const auto fields = procSelfStatFields();
    if (fields.size() <= statField(15)) {
        return 0.0;
    }
    return (parseDouble(fields[statField(14)]) + parseDouble(fields[statField(15)])) /
           clockTicksPerSecond();
}

double residentMemoryBytes() {
    std::istringstream in(readFile("/proc/self/statm"));
    double size_pages = 0;
    double resident_pages = 0;
    if (!(in >> size_pages >> resident_pages)) {
        return 0.0;
    }
    const long page_size = sysconf(_SC_PAGESIZE);
    return resident_pages * static_cast<double>(page_size > 0 ? page_size : 4096);
}

double openFds() {
    DIR* dir = opendir("/proc/self/fd");
    if (dir == nullptr) {
        return 0.0;
    }
    // The directory stream holds a descriptor of its own, which is not the process's.
    const std::string own = std::to_string(dirfd(dir));
    double count = 0;
    while (const dirent* entry = readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name.empty() || name[0] == '.' || name == own) {
            continue;
        }
        ++count;
    }
    closedir(dir);
    return count;
}

double maxFds() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return 0.0;
    }
    if (limit.rlim_cur == RLIM_INFINITY) {
        return std::numeric_limits<double>::infinity();
    }
    return static_cast<double>(limit.rlim_cur);
}

// Boot time (btime in /proc/stat) plus the process's start in clock ticks since boot; the time of
// the call if /proc cannot tell.
double processStartTimeSeconds() {
    const auto fields = procSelfStatFields();
    std::istringstream stat(readFile("/proc/stat"));
    double boot_time = -1;
    for (std::string line; std::getline(stat, line);) {
        if (line.rfind("btime ", 0) == 0) {
            boot_time = parseDouble(line.substr(6));
            break;
        }
    }
    if (boot_time <= 0 || fields.size() <= statField(22)) {
        return static_cast<double>(std::time(nullptr));
    }
    return boot_time + parseDouble(fields[statField(22)]) / clockTicksPerSecond();
}

}  // namespace

size_t closeCodeIndex(int code) {
    for (size_t i = 0; i < kOtherCloseIndex; ++i) {
        if (kCloseCodes[i] == code) {
            return i;
        }
    }
    return kOtherCloseIndex;
}

size_t errorCodeIndex(int code) {
    for (size_t i = 0; i < kErrorCodes.size(); ++i) {
        if (kErrorCodes[i] == code) {
            return i;
        }
    }
    return kInternalErrorIndex;
}

std::vector<MetricInfo> describeMetrics() {
    std::vector<MetricInfo> infos;
#define WSRELAY_DESCRIBE_X(field, type, name, help)                                                \
    infos.push_back({name, Type::type, help, "", {}, "", {}, {}});
#define WSRELAY_DESCRIBE_L(field, type, name, help, label, names)                                  \
    infos.push_back({name, Type::type, help, label, {names.begin(), names.end()}, "", {}, {}});
    WSRELAY_METRICS(WSRELAY_DESCRIBE_X, WSRELAY_DESCRIBE_L)
#undef WSRELAY_DESCRIBE_X
#undef WSRELAY_DESCRIBE_L
    infos.push_back({kHookRequestsName,
                     Type::Counter,
                     kHookRequestsHelp,
                     "event",
                     {kHookEventNames.begin(), kHookEventNames.end()},
                     "result",
                     {kHookResultNames.begin(), kHookResultNames.end()},
                     {}});
    infos.push_back({kRateLimitedName,
                     Type::Counter,
                     kRateLimitedHelp,
                     "kind",
                     {kRateKindNames.begin(), kRateKindNames.end()},
                     "result",
                     {kRateResultNames.begin(), kRateResultNames.end()},
                     {}});
    infos.push_back({kHookDurationName,
                     Type::Histogram,
                     kHookDurationHelp,
                     "event",
                     {kHookEventNames.begin(), kHookEventNames.end()},
                     "",
                     {},
                     {kLatencyBuckets.begin(), kLatencyBuckets.end()}});
    infos.push_back({kIpLimitedName,
                     Type::Counter,
                     kIpLimitedHelp,
                     "limit",
                     {kIpLimitNames.begin(), kIpLimitNames.end()},
                     "result",
                     {kIpLimitResultNames.begin(), kIpLimitResultNames.end()},
                     {}});
    for (const auto& def : kHistograms) {
        infos.push_back({def.name,
                         Type::Histogram,
                         def.help,
                         "",
                         {},
                         "",
                         {},
                         {kLatencyBuckets.begin(), kLatencyBuckets.end()}});
    }
    for (const auto& def : kProcessMetrics) {
        MetricInfo info{def.name, def.type, def.help, "", {}, "", {}, {}};
        if (def.label != nullptr) {
            info.label = def.label;
            info.label_values = {def.label_value};
        }
        infos.push_back(std::move(info));
    }
    return infos;
}

Registry::Registry(int workers)
    : worker_count_(workers), start_time_seconds_(processStartTimeSeconds()) {
    if (workers < 1) {
        throw std::invalid_argument("metrics::Registry needs at least one worker");
    }
    workers_.reserve(static_cast<size_t>(workers) + 1);
    for (int i = 0; i <= workers; ++i) {
        workers_.push_back(std::make_unique<WorkerMetrics>());
    }
}

std::string Registry::render() const {
    std::vector<prometheus::MetricFamily> families;
    families.reserve(32);

#define WSRELAY_RENDER_X(field, type, name, help)                                                  \
    families.push_back(makeFamily(name, help, Type::type));                                        \
    addSample(families.back(), Type::type,                                                         \
              static_cast<double>(sumSlot(workers_, &WorkerMetrics::field)));
#define WSRELAY_RENDER_L(field, type, name, help, label, names)                                    \
    {                                                                                              \
        families.push_back(makeFamily(name, help, Type::type));                                    \
        const auto sums = sumSlots(workers_, &WorkerMetrics::field);                               \
        size_t i = 0;                                                                              \
        for (const char* value : names) {                                                          \
            addSample(families.back(), Type::type, static_cast<double>(sums[i++]), label, value);  \
        }                                                                                          \
    }
    WSRELAY_METRICS(WSRELAY_RENDER_X, WSRELAY_RENDER_L)
#undef WSRELAY_RENDER_X
#undef WSRELAY_RENDER_L

    addCrossedCounter<HookEvent, HookResult>(
        families, workers_, kHookRequestsName, kHookRequestsHelp, "event",
        [](HookEvent ev) { return hookEventName(ev); }, "result",
        [](HookResult res) { return kHookResultNames[res]; },
        [](const WorkerMetrics& w, HookEvent ev, HookResult res) -> const Slot& {
            return w.hook_requests[ev][res];
        });
    addCrossedCounter<RateKind, RateResult>(
        families, workers_, kRateLimitedName, kRateLimitedHelp, "kind",
        [](RateKind kind) { return kRateKindNames[kind]; }, "result",
        [](RateResult result) { return kRateResultNames[result]; },
        [](const WorkerMetrics& w, RateKind kind, RateResult result) -> const Slot& {
            return w.rate_limited[kind][result];
        });
    addCrossedCounter<IpLimit, IpLimitResult>(
        families, workers_, kIpLimitedName, kIpLimitedHelp, "limit",
        [](IpLimit limit) { return kIpLimitNames[limit]; }, "result",
        [](IpLimitResult result) { return kIpLimitResultNames[result]; },
        [](const WorkerMetrics& w, IpLimit limit, IpLimitResult result) -> const Slot& {
            return w.ip_limited[limit][result];
        });
    families.push_back(makeFamily(kHookDurationName, kHookDurationHelp, Type::Histogram));
    for (const HookEvent ev : enumValues<HookEvent>()) {
        std::vector<const Histogram*> parts;
        for (const auto& w : workers_) parts.push_back(&w->hook_duration[ev]);
        families.back().metric.push_back(histogramSample(parts, "event", hookEventName(ev)));
    }
    for (const auto& def : kHistograms) {
        families.push_back(makeFamily(def.name, def.help, Type::Histogram));
        std::vector<const Histogram*> parts;
        for (const auto& w : workers_) parts.push_back(&((*w).*def.field));
        families.back().metric.push_back(histogramSample(parts));
    }

    const ReadyState ready = ready_probe_ ? ready_probe_() : ReadyState{};
    EnumArray<ProcessMetric, double> values;
    auto set = [&values](ProcessMetric id, double value) { values[id] = value; };
    set(ProcessMetric::BuildInfo, 1);
    set(ProcessMetric::ResidentMemory, residentMemoryBytes());
    set(ProcessMetric::CpuSeconds, cpuSeconds());
    set(ProcessMetric::OpenFds, openFds());
    set(ProcessMetric::MaxFds, maxFds());
    set(ProcessMetric::StartTime, start_time_seconds_);
    set(ProcessMetric::Workers, static_cast<double>(worker_count_));
    set(ProcessMetric::Ready, ready.ready ? 1 : 0);
    set(ProcessMetric::Draining, ready.draining ? 1 : 0);
    set(ProcessMetric::BrokerUp, ready.broker_up ? 1 : 0);
    set(ProcessMetric::ProbeAge, probeAgeSeconds(workers_));
    set(ProcessMetric::MemoryBudget, static_cast<double>(memory_budget_bytes_));
    for (const auto& def : kProcessMetrics) {
        families.push_back(makeFamily(def.name, def.help, def.type));
        addSample(families.back(), def.type, values[def.id], def.label, def.label_value);
    }

    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    return out.str();
}

}  // namespace wsrelay::metrics
