#include "metrics/relay_metrics.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace wsrelay::metrics {
namespace {

// A family takes its own label enum as the index, and nothing else.
template <class Family, class Index>
concept IndexableBy = requires(Family& family, Index index) {
    family[index];
};
static_assert(IndexableBy<decltype(WorkerMetrics::dropped), DropReason>);
static_assert(!IndexableBy<decltype(WorkerMetrics::dropped), size_t>);
static_assert(!IndexableBy<decltype(WorkerMetrics::dropped), HandshakeResult>);
static_assert(IndexableBy<decltype(WorkerMetrics::hook_requests), HookEvent>);
static_assert(!IndexableBy<decltype(WorkerMetrics::hook_requests), HookResult>);
static_assert(enumValues<RefreshResult>() ==
              std::array<RefreshResult, 2>{RefreshResult::Ok, RefreshResult::Rejected});
static_assert(std::string_view(kDropReasonNames[DropReason::TooLarge]) == "too_large");

const char* typeName(Type type) {
    return type == Type::Counter ? "counter" : type == Type::Gauge ? "gauge" : "histogram";
}

// Series a family renders: one per label value (or pair), and for a histogram its buckets, +Inf,
// _sum and _count.
size_t seriesCount(const MetricInfo& info) {
    const size_t values = std::max<size_t>(info.label_values.size(), 1) *
                          std::max<size_t>(info.label2_values.size(), 1);
    return values * (info.buckets.empty() ? 1 : info.buckets.size() + 3);
}

// The samples of `name`'s family (name{...}, name_bucket{...}, name_sum..., name_count...).
std::vector<double> familySamples(const std::map<std::string, double>& samples,
                                  const std::string& name) {
    std::vector<double> out;
    for (const auto& [key, value] : samples) {
        if (key.rfind(name, 0) != 0) continue;
        const std::string rest = key.substr(name.size());
        if (rest.empty() || rest[0] == '{' || rest.rfind("_bucket", 0) == 0 ||
            rest.rfind("_sum", 0) == 0 || rest.rfind("_count", 0) == 0) {
            out.push_back(value);
        }
    }
    return out;
}

std::string seriesKey(const std::string& name, const std::string& label, const std::string& value) {
    return name + "{" + label + "=\"" + value + "\"}";
}

bool isMetricName(const std::string& s) {
    static const std::regex re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    return std::regex_match(s, re);
}

bool parseValue(const std::string& s, double& out) {
    if (s == "+Inf") {
        out = HUGE_VAL;
        return true;
    }
    if (s == "-Inf") {
        out = -HUGE_VAL;
        return true;
    }
    if (s == "NaN" || s == "Nan") {
        out = std::nan("");
        return true;
    }
    if (s.empty()) {
        return false;
    }
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end == s.c_str() + s.size();
}

// A parsed exposition: series key ("name" or "name{l="v",...}" as written) → value, plus the
// TYPE of each family. Any deviation from the text format is recorded in `errors`.
struct Exposition {
    std::map<std::string, double> samples;
    std::map<std::string, std::string> types;
    std::set<std::string> helps;
    std::vector<std::string> errors;

    double at(const std::string& key) const {
        auto it = samples.find(key);
        return it == samples.end() ? std::nan("") : it->second;
    }
};

Exposition parse(const std::string& text) {
    Exposition e;
    if (text.empty() || text.back() != '\n') {
        e.errors.push_back("exposition must end with a newline");
    }
    static const std::regex help_re("# HELP ([^ ]+) (.*)");
    static const std::regex type_re("# TYPE ([^ ]+) (counter|gauge|histogram|summary|untyped)");
    // name, optional {label="value",...} (values escape \\, " and newline), one space, value.
    static const std::string pair = R"([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")";
    static const std::regex sample_re("([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{" + pair + "(," + pair +
                                      ")*\\})? ([^ ]+)");
    std::string current_family;
    std::istringstream in(text);
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
        ++line_no;
        const std::string where = "line " + std::to_string(line_no) + ": " + line;
        std::smatch m;
        if (line.empty()) {
            e.errors.push_back(where + " (empty line)");
        } else if (line[0] == '#') {
            if (std::regex_match(line, m, help_re)) {
                if (!isMetricName(m[1]) || !e.helps.insert(m[1]).second) {
                    e.errors.push_back(where + " (bad or repeated HELP)");
                }
            } else if (std::regex_match(line, m, type_re)) {
                if (!isMetricName(m[1]) || e.types.count(m[1]) != 0) {
                    e.errors.push_back(where + " (bad or repeated TYPE)");
                }
                e.types[m[1]] = m[2];
                current_family = m[1];
            } else {
                e.errors.push_back(where + " (unknown comment)");
            }
        } else if (std::regex_match(line, m, sample_re)) {
            double value = 0;
            const std::string key = line.substr(0, line.rfind(' '));
            if (!parseValue(m[m.size() - 1], value)) {
                e.errors.push_back(where + " (bad value)");
            } else if (m[1] != current_family &&
                       !(e.types[current_family] == "histogram" &&
                         (m[1] == current_family + "_bucket" || m[1] == current_family + "_sum" ||
                          m[1] == current_family + "_count"))) {
                e.errors.push_back(where + " (sample outside its TYPE block)");
            } else if (!e.samples.emplace(key, value).second) {
                e.errors.push_back(where + " (duplicate series)");
            }
        } else {
            e.errors.push_back(where + " (not a sample)");
        }
    }
    return e;
}

std::string errorsOf(const Exposition& e) {
    std::string all;
    for (const auto& err : e.errors) {
        all += err + "\n";
    }
    return all;
}

// Open descriptors counted independently of /proc: probe every possible descriptor number.
double probeOpenFds() {
    rlimit limit{};
    EXPECT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
    const rlim_t highest = std::min<rlim_t>(limit.rlim_cur, 1 << 20);
    double open = 0;
    for (rlim_t fd = 0; fd < highest; ++fd) {
        if (fcntl(static_cast<int>(fd), F_GETFD) != -1) {
            ++open;
        }
    }
    return open;
}

bool isProcessMetric(const MetricInfo& info) {
    bool per_worker = false;
// Macro parameters are renamed so they do not capture `info.name`.
#define WSRELAY_TEST_X(f, t, metric, h) per_worker = per_worker || info.name == metric;
#define WSRELAY_TEST_L(f, t, metric, h, l, v) per_worker = per_worker || info.name == metric;
    WSRELAY_METRICS(WSRELAY_TEST_X, WSRELAY_TEST_L)
#undef WSRELAY_TEST_X
#undef WSRELAY_TEST_L
    return !per_worker;
}

TEST(RelayMetricsTest, FreshRegistryRendersEveryFamilyAndEverySeriesAtZero) {
    Registry registry(1);
    const Exposition e = parse(registry.render());
    ASSERT_TRUE(e.errors.empty()) << errorsOf(e);

    for (const MetricInfo& info : describeMetrics()) {
        SCOPED_TRACE(info.name);
        ASSERT_EQ(e.types.count(info.name), 1u);
        EXPECT_EQ(e.types.at(info.name), typeName(info.type));
        EXPECT_EQ(e.helps.count(info.name), 1u);
        if (isProcessMetric(info) && info.label2.empty() && info.buckets.empty()) {
            continue;
        }
        if (!info.label2.empty() || !info.buckets.empty()) {
            const std::vector<double> values = familySamples(e.samples, info.name);
            EXPECT_EQ(values.size(), seriesCount(info));
            for (double v : values) EXPECT_EQ(v, 0.0);
        } else if (info.label.empty()) {
            EXPECT_EQ(e.at(info.name), 0.0);
        } else {
            for (const std::string& value : info.label_values) {
                EXPECT_EQ(e.at(seriesKey(info.name, info.label, value)), 0.0) << value;
            }
        }
    }
}

TEST(RelayMetricsTest, RenderedFamiliesAreExactlyTheDescribedOnes) {
    Registry registry(3);
    const Exposition e = parse(registry.render());
    ASSERT_TRUE(e.errors.empty()) << errorsOf(e);

    std::set<std::string> described;
    size_t described_series = 0;
    for (const MetricInfo& info : describeMetrics()) {
        EXPECT_TRUE(described.insert(info.name).second) << "declared twice: " << info.name;
        described_series += seriesCount(info);
    }
    std::set<std::string> rendered;
    for (const auto& [name, type] : e.types) {
        rendered.insert(name);
    }
    EXPECT_EQ(rendered, described);
    EXPECT_EQ(e.samples.size(), described_series);
}

TEST(RelayMetricsTest, DeclarationsFollowPrometheusConventions) {
    for (const MetricInfo& info : describeMetrics()) {
        SCOPED_TRACE(info.name);
        EXPECT_EQ(info.name.rfind("wsrelay_", 0), 0u);
        EXPECT_TRUE(isMetricName(info.name));
        const bool total =
            info.name.size() > 6 && info.name.compare(info.name.size() - 6, 6, "_total") == 0;
        EXPECT_EQ(total, info.type == Type::Counter);
        EXPECT_FALSE(info.help.empty());
        // prometheus-cpp 1.0.1 writes HELP unescaped.
        EXPECT_EQ(info.help.find_first_of("\\\n"), std::string::npos);
        EXPECT_EQ(info.label.empty(), info.label_values.empty());
        std::set<std::string> unique(info.label_values.begin(), info.label_values.end());
        EXPECT_EQ(unique.size(), info.label_values.size());
    }
}

TEST(RelayMetricsTest, BumpsOnTwoWorkersAreSummed) {
    Registry registry(2);
    WorkerMetrics& w0 = registry.worker(0);
    WorkerMetrics& w1 = registry.worker(1);
    w0.connections.add(3);
    w1.connections.add(4);
    w1.connections.sub();
    w0.messages_sent.add(10);
    w1.messages_sent.add(5);
    w0.bytes_sent.add(1000);
    w1.bytes_sent.add(24);
    w0.send_queue_bytes.add(100);
    w0.send_queue_bytes.sub(40);
    w1.broker_messages.add();
    w0.broker_messages.add();
    w0.channels.add(2);
    w1.channels.add(2);

    EXPECT_EQ(w0.connections.value(), 3);
    EXPECT_EQ(w1.connections.value(), 3);

    const Exposition e = parse(registry.render());
    ASSERT_TRUE(e.errors.empty()) << errorsOf(e);
    EXPECT_EQ(e.at("wsrelay_connections"), 6.0);
    EXPECT_EQ(e.at("wsrelay_messages_sent_total"), 15.0);
    EXPECT_EQ(e.at("wsrelay_sent_bytes_total"), 1024.0);
    EXPECT_EQ(e.at("wsrelay_send_queue_bytes"), 60.0);
    EXPECT_EQ(e.at("wsrelay_broker_messages_total"), 2.0);
    EXPECT_EQ(e.at("wsrelay_channels"), 4.0);
    EXPECT_EQ(e.at("wsrelay_messages_received_total"), 0.0);
    EXPECT_EQ(e.at("wsrelay_workers"), 2.0);
}

TEST(RelayMetricsTest, LabelValuesLandOnTheirSeries) {
    Registry registry(2);
    WorkerMetrics& w0 = registry.worker(0);
    WorkerMetrics& w1 = registry.worker(1);
    w0.handshakes[HandshakeResult::Ok].add(7);
    w1.handshakes[HandshakeResult::Ok].add(1);
    w1.handshakes[HandshakeResult::Origin].add(2);
    w0.dropped[DropReason::SlowConsumerDropOldest].add(5);
    w1.dropped[DropReason::ClientGone].add(1);
    w0.disconnects[closeCodeIndex(4001)].add(2);
    w1.disconnects[closeCodeIndex(4001)].add(1);
    w1.disconnects[closeCodeIndex(1006)].add(1);
    w0.disconnects[closeCodeIndex(3999)].add(1);
    w1.disconnects[closeCodeIndex(0)].add(1);
    w0.errors[errorCodeIndex(429)].add(4);
    w1.errors[errorCodeIndex(418)].add(1);
    w1.errors[errorCodeIndex(500)].add(1);

    const Exposition e = parse(registry.render());
    ASSERT_TRUE(e.errors.empty()) << errorsOf(e);
    const auto handshake = [&](const char* v) {
        return e.at(seriesKey("wsrelay_handshakes_total", "result", v));
    };
    EXPECT_EQ(handshake("ok"), 8.0);
    EXPECT_EQ(handshake("origin"), 2.0);
    EXPECT_EQ(handshake("limit"), 0.0);
    EXPECT_EQ(handshake("path"), 0.0);
    EXPECT_EQ(handshake("draining"), 0.0);

    const auto dropped = [&](const char* v) {
        return e.at(seriesKey("wsrelay_dropped_messages_total", "reason", v));
    };
    EXPECT_EQ(dropped("slow_consumer_drop"), 5.0);
    EXPECT_EQ(dropped("slow_consumer_close"), 0.0);
    EXPECT_EQ(dropped("client_gone"), 1.0);

    const auto disconnects = [&](const char* v) {
        return e.at(seriesKey("wsrelay_disconnects_total", "code", v));
    };
    EXPECT_EQ(disconnects("4001"), 3.0);
    EXPECT_EQ(disconnects("1006"), 1.0);
    EXPECT_EQ(disconnects("other"), 2.0);
    EXPECT_EQ(disconnects("1000"), 0.0);

    const auto errors = [&](const char* v) {
        return e.at(seriesKey("wsrelay_error_frames_total", "code", v));
    };
    EXPECT_EQ(errors("429"), 4.0);
    EXPECT_EQ(errors("500"), 2.0);
    EXPECT_EQ(errors("400"), 0.0);
}

TEST(RelayMetricsTest, CloseCodeIndexMapsKnownCodesAndFoldsTheRestIntoOther) {
    const size_t other = kCloseCodes.size() - 1;
    EXPECT_STREQ(kCloseCodeNames[other], "other");
    for (size_t i = 0; i < other; ++i) {
        EXPECT_EQ(closeCodeIndex(kCloseCodes[i]), i);
        EXPECT_EQ(std::to_string(kCloseCodes[i]), kCloseCodeNames[i]);
    }
    for (int code : {0, -1, 999, 1004, 1005, 1015, 3000, 4000, 4999, 65535}) {
        EXPECT_EQ(closeCodeIndex(code), other) << code;
    }
}

TEST(RelayMetricsTest, ErrorCodeIndexMapsKnownCodesAndFoldsTheRestInto500) {
    size_t index_500 = kErrorCodes.size();
    for (size_t i = 0; i < kErrorCodes.size(); ++i) {
        EXPECT_EQ(errorCodeIndex(kErrorCodes[i]), i);
        EXPECT_EQ(std::to_string(kErrorCodes[i]), kErrorCodeNames[i]);
        if (kErrorCodes[i] == 500) {
            index_500 = i;
        }
    }
    ASSERT_LT(index_500, kErrorCodes.size());
    for (int code : {0, 200, 402, 418, 501, 504, 999}) {
        EXPECT_EQ(errorCodeIndex(code), index_500) << code;
    }
}

TEST(RelayMetricsTest, ProcessMetricsArePresentAndPlausible) {
    Registry registry(2);
    const Exposition before = parse(registry.render());
    ASSERT_TRUE(before.errors.empty()) << errorsOf(before);

    rusage usage{};
    ASSERT_EQ(getrusage(RUSAGE_SELF, &usage), 0);
    const double rss = before.at("wsrelay_process_resident_memory_bytes");
    EXPECT_GT(rss, 0.0);
    EXPECT_LE(rss, static_cast<double>(usage.ru_maxrss) * 1024 + (1 << 20));  // maxrss: KiB
    const double cpu = before.at("wsrelay_process_cpu_seconds_total");
    const auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
    EXPECT_GE(cpu, 0.0);
    EXPECT_LE(cpu, seconds(usage.ru_utime) + seconds(usage.ru_stime) + 0.05);
    const double open_fds = before.at("wsrelay_process_open_fds");
    EXPECT_GE(open_fds, 3.0);  // at least stdin, stdout, stderr
    EXPECT_EQ(open_fds, probeOpenFds());
    EXPECT_GE(before.at("wsrelay_process_max_fds"), open_fds);
    const double start = before.at("wsrelay_process_start_time_seconds");
    const double now = static_cast<double>(std::time(nullptr));
    EXPECT_GT(start, 1.5e9);
    EXPECT_LE(start, now + 1);
    EXPECT_EQ(before.at("wsrelay_workers"), 2.0);

    // The build info series is the only one of its family, with a non-empty version.
    size_t build_series = 0;
    for (const auto& [key, value] : before.samples) {
        if (key.rfind("wsrelay_build_info", 0) == 0) {
            ++build_series;
            EXPECT_EQ(value, 1.0);
            EXPECT_EQ(key.rfind("wsrelay_build_info{version=\"", 0), 0u) << key;
            EXPECT_NE(key, "wsrelay_build_info{version=\"\"}");
        }
    }
    EXPECT_EQ(build_series, 1u);
#ifdef WSRELAY_VERSION
    EXPECT_EQ(before.at(seriesKey("wsrelay_build_info", "version", WSRELAY_VERSION)), 1.0);
#endif

    // Open descriptors are counted, not estimated: a pipe adds exactly two.
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const Exposition during = parse(registry.render());
    close(fds[0]);
    close(fds[1]);
    EXPECT_EQ(during.at("wsrelay_process_open_fds"), open_fds + 2);
    EXPECT_EQ(during.at("wsrelay_process_start_time_seconds"), start);
    EXPECT_GE(during.at("wsrelay_process_cpu_seconds_total"),
              before.at("wsrelay_process_cpu_seconds_total"));
}

TEST(RelayMetricsTest, ReadyAndDrainingComeFromTheProbe) {
    Registry registry(1);
    Exposition e = parse(registry.render());
    EXPECT_EQ(e.at("wsrelay_ready"), 0.0);
    EXPECT_EQ(e.at("wsrelay_draining"), 0.0);

    ReadyState state{true, false};
    registry.setReadyProbe([&state] { return state; });
    e = parse(registry.render());
    EXPECT_EQ(e.at("wsrelay_ready"), 1.0);
    EXPECT_EQ(e.at("wsrelay_draining"), 0.0);

    state = {false, true};
    e = parse(registry.render());
    EXPECT_EQ(e.at("wsrelay_ready"), 0.0);
    EXPECT_EQ(e.at("wsrelay_draining"), 1.0);
}

TEST(RelayMetricsTest, BrokerUpComesFromTheProbe) {
    Registry registry(1);
    ReadyState state{true, false, true};
    registry.setReadyProbe([&state] { return state; });
    EXPECT_EQ(parse(registry.render()).at("wsrelay_broker_up"), 1.0);
    state.broker_up = false;
    EXPECT_EQ(parse(registry.render()).at("wsrelay_broker_up"), 0.0);
}

TEST(RelayMetricsTest, UnlabelledHistogramsSumWorkersIntoCumulativeBuckets) {
    Registry registry(2);
    registry.worker(0).delivery_latency.observeMicros(500);      // on the 0.5 ms bound: that bucket
    registry.worker(1).delivery_latency.observeMicros(501);      // just above: the next one
    registry.worker(1).delivery_latency.observeMicros(-30);      // a clock stepped back: 0
    registry.worker(0).delivery_latency.observeMicros(9000000);  // past 5 s: +Inf only
    registry.worker(1).broker_publish_duration.observe(0.002);
    const Exposition e = parse(registry.render());
    ASSERT_TRUE(e.errors.empty()) << errorsOf(e);
    const auto bucket = [&](const char* name, const char* le) {
        return e.at(seriesKey(std::string(name) + "_bucket", "le", le));
    };
    EXPECT_EQ(bucket("wsrelay_delivery_latency_seconds", "0.0005"), 2.0);
    EXPECT_EQ(bucket("wsrelay_delivery_latency_seconds", "0.001"), 3.0);
    EXPECT_EQ(bucket("wsrelay_delivery_latency_seconds", "5"), 3.0);
    EXPECT_EQ(bucket("wsrelay_delivery_latency_seconds", "+Inf"), 4.0);
    EXPECT_EQ(e.at("wsrelay_delivery_latency_seconds_count"), 4.0);
    EXPECT_NEAR(e.at("wsrelay_delivery_latency_seconds_sum"), 9.001001, 1e-9);
    EXPECT_EQ(bucket("wsrelay_broker_publish_duration_seconds", "0.001"), 0.0);
    EXPECT_EQ(bucket("wsrelay_broker_publish_duration_seconds", "0.0025"), 1.0);
    EXPECT_EQ(e.at("wsrelay_broker_probe_duration_seconds_count"), 0.0);
}

TEST(RelayMetricsTest, ProbeAgeIsThatOfTheLeastRecentProbingWorker) {
    Registry registry(3);
    EXPECT_EQ(parse(registry.render()).at("wsrelay_broker_probe_age_seconds"), 0.0)
        << "no worker probes: 0";
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    const int64_t now_us = int64_t{now.tv_sec} * 1000000 + now.tv_nsec / 1000;
    registry.worker(0).probe_last_ok_us.set(now_us - 2000000);
    registry.worker(1).probe_last_ok_us.set(now_us - 30000000);
    // worker 2 sends no probes (0) and does not count
    const double age = parse(registry.render()).at("wsrelay_broker_probe_age_seconds");
    EXPECT_GE(age, 30.0);
    EXPECT_LT(age, 40.0);
}

TEST(RelayMetricsTest, RejectsZeroWorkers) {
    EXPECT_THROW(Registry(0), std::invalid_argument);
    EXPECT_THROW(Registry(-1), std::invalid_argument);
}

// Workers bump their own series while another thread renders: no lock is shared, every rendered
// counter is monotonic, and once the workers stop the totals are exact.
TEST(RelayMetricsTest, RenderWhileWorkersBumpIsConsistent) {
    constexpr int kWorkers = 2;
    constexpr int64_t kBumps = 20000;
    Registry registry(kWorkers);
    std::atomic<int> finished{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kWorkers; ++i) {
        threads.emplace_back([&registry, &finished, i] {
            WorkerMetrics& w = registry.worker(i);
            for (int64_t n = 0; n < kBumps; ++n) {
                w.messages_sent.add();
                w.bytes_sent.add(3);
                w.connections.add();
                w.connections.sub();
                w.disconnects[closeCodeIndex(1000)].add();
            }
            finished.fetch_add(1);
        });
    }
    double last_sent = 0;
    double last_disconnects = 0;
    int renders = 0;
    while (finished.load() < kWorkers || renders < 2) {
        const Exposition e = parse(registry.render());
        ASSERT_TRUE(e.errors.empty()) << errorsOf(e);
        const double sent = e.at("wsrelay_messages_sent_total");
        const double disconnects = e.at(seriesKey("wsrelay_disconnects_total", "code", "1000"));
        EXPECT_GE(sent, last_sent);
        EXPECT_GE(disconnects, last_disconnects);
        EXPECT_LE(sent, kWorkers * kBumps);
        EXPECT_GE(e.at("wsrelay_connections"), 0.0);
        EXPECT_LE(e.at("wsrelay_connections"), kWorkers);
        last_sent = sent;
        last_disconnects = disconnects;
        ++renders;
    }
    for (auto& t : threads) {
        t.join();
    }
    const Exposition e = parse(registry.render());
    EXPECT_EQ(e.at("wsrelay_messages_sent_total"), kWorkers * kBumps);
    EXPECT_EQ(e.at("wsrelay_sent_bytes_total"), 3 * kWorkers * kBumps);
    EXPECT_EQ(e.at("wsrelay_connections"), 0.0);
    EXPECT_EQ(e.at(seriesKey("wsrelay_disconnects_total", "code", "1000")), kWorkers * kBumps);
}

TEST(RelayMetricsTest, ExpositionParserRejectsMalformedText) {
    EXPECT_FALSE(parse("# TYPE a counter\na 1\n").errors.size());
    EXPECT_FALSE(
        parse("# HELP a h\n# TYPE a gauge\na{x=\"q\\\"\\n\",y=\"2\"} 1e+17\n").errors.size());
    EXPECT_TRUE(parse("# TYPE a counter\na 1").errors.size());            // no final newline
    EXPECT_TRUE(parse("# TYPE a counter\na one\n").errors.size());        // bad value
    EXPECT_TRUE(parse("# TYPE a counter\na{x=\"1\"}1\n").errors.size());  // no space
    EXPECT_TRUE(parse("# TYPE a counter\na{x=1} 1\n").errors.size());     // unquoted label
    EXPECT_TRUE(parse("# TYPE a counter\nb 1\n").errors.size());          // outside its family
    EXPECT_TRUE(parse("# TYPE a counter\na 1\na 2\n").errors.size());     // duplicate series
    EXPECT_TRUE(parse("# TYPE a counter\n# TYPE a gauge\na 1\n").errors.size());
}

std::string readDocs() {
    std::ifstream in(std::string(WSRELAY_SOURCE_DIR) + "/docs/metrics.md");
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

TEST(RelayMetricsDocsTest, DocsNameEveryMetricAndEveryLabelValue) {
    const std::string docs = readDocs();
    ASSERT_FALSE(docs.empty()) << "docs/metrics.md not found under " << WSRELAY_SOURCE_DIR;
    for (const MetricInfo& info : describeMetrics()) {
        SCOPED_TRACE(info.name);
        EXPECT_NE(docs.find("`" + info.name + "`"), std::string::npos);
        if (info.name == "wsrelay_build_info") {
            continue;  // its one label value is the build's version
        }
        for (const std::string& value : info.label_values) {
            EXPECT_NE(docs.find("`" + value + "`"), std::string::npos) << value;
        }
        for (const std::string& value : info.label2_values) {
            EXPECT_NE(docs.find("`" + value + "`"), std::string::npos) << value;
        }
    }
}

TEST(RelayMetricsDocsTest, DocsNameNoUndeclaredMetric) {
    const std::string docs = readDocs();
    ASSERT_FALSE(docs.empty());
    std::set<std::string> declared;
    for (const MetricInfo& info : describeMetrics()) {
        declared.insert(info.name);
        if (info.type == Type::Histogram) {
            // The series PromQL names: a histogram's buckets, sum and count.
            for (const char* suffix : {"_bucket", "_sum", "_count"})
                declared.insert(info.name + suffix);
        }
    }
    static const std::regex name_re("wsrelay_[a-z0-9_]*[a-z0-9]");
    size_t mentioned = 0;
    for (auto it = std::sregex_iterator(docs.begin(), docs.end(), name_re);
         it != std::sregex_iterator(); ++it) {
        ++mentioned;
        EXPECT_EQ(declared.count(it->str()), 1u) << "docs name an undeclared metric: " << it->str();
    }
    EXPECT_GE(mentioned, declared.size());
}

}  // namespace
}  // namespace wsrelay::metrics
