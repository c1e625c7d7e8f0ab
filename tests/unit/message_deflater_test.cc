#include "relay/protocol/message_deflater.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>

#include "decoded_frame.h"
#include "metrics/relay_metrics.h"
#include "relay/edge/edge.h"
#include "relay/fanout/hub.h"
#include "relay/protocol/protocol.h"

namespace wsrelay::protocol {
namespace {

constexpr std::string_view kTail("\x00\x00\xff\xff", 4);

// What a client does with a compressed message (RFC 7692 7.2.2): append the tail, inflate.
// `z` is the client's inflater, kept across messages when it keeps its context.
std::string inflateMessage(z_stream& z, std::string_view payload) {
    std::string in(payload);
    in.append(kTail);
    z.next_in = reinterpret_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    std::string out;
    char buf[4096];
    do {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        const int rc = inflate(&z, Z_SYNC_FLUSH);
        EXPECT_TRUE(rc == Z_OK || rc == Z_BUF_ERROR) << rc;
        if (rc != Z_OK && rc != Z_BUF_ERROR) break;
        out.append(buf, sizeof buf - z.avail_out);
    } while (z.avail_in > 0 || z.avail_out == 0);
    return out;
}

std::string inflateMessage(std::string_view payload) {
    z_stream z{};
    EXPECT_EQ(inflateInit2(&z, -15), Z_OK);
    std::string out = inflateMessage(z, payload);
    inflateEnd(&z);
    return out;
}

// A JSON array of `n` bytes or a little more, compressible like real data.
std::string jsonOf(size_t n, unsigned seed = 1) {
    static const char* const kWords[] = {"price", "volume", "symbol", "bid", "ask", "status"};
    std::mt19937 rng(seed);
    std::string s = "[";
    while (s.size() < n) {
        s += "{\"" + std::string(kWords[rng() % 6]) + "\":" + std::to_string(rng() % 100000) + "},";
    }
    s += "{}]";
    return s;
}

// A JSON string of `n` random letters out of 4: about 2 bits a byte after compression.
std::string fourLetters(size_t n) {
    std::mt19937 rng(7);
    std::string s = "\"";
    for (size_t i = 0; i < n; ++i) s += "acgt"[rng() % 4];
    return s + "\"";
}

std::string_view payloadOf(const FramePtr& frame) { return decode(frame->bytes()).payload; }

TEST(MessageDeflaterTest, CompressedFrameInflatesToThePlainPayload) {
    MessageDeflater deflater(1, 0);
    FramePtr plain = encodeMessage("prices", jsonOf(1000));
    plain->setEnteredMicros(42);
    MessageDeflater::Result r = deflater.compress(*plain);
    ASSERT_TRUE(r.frame);
    const DecodedFrame f = decode(r.frame->bytes());
    EXPECT_EQ(static_cast<uint8_t>(r.frame->bytes()[0]), 0xC1);  // FIN, RSV1, text
    EXPECT_FALSE(f.masked);
    EXPECT_EQ(f.payload_len, f.payload.size());
    EXPECT_LT(r.frame->size(), plain->size());
    EXPECT_EQ(r.in_bytes, payloadOf(plain).size());
    EXPECT_EQ(r.out_bytes, f.payload.size());
    EXPECT_EQ(inflateMessage(f.payload), payloadOf(plain));
    EXPECT_EQ(r.frame->enteredMicros(), 42);
}

TEST(MessageDeflaterTest, TheSyncFlushTailIsRemoved) {
    MessageDeflater deflater(1, 0);
    FramePtr plain = encodeMessage("c", jsonOf(800));
    const FramePtr compressed = deflater.compress(*plain).frame;  // the payload's owner
    const std::string_view payload = payloadOf(compressed);
    ASSERT_GT(payload.size(), kTail.size());
    EXPECT_NE(payload.substr(payload.size() - kTail.size()), kTail);
}

// A client that did not ask for server_no_context_takeover keeps its inflater from message to
// message: every message must inflate with it, none may end the stream (a final block would).
TEST(MessageDeflaterTest, MessagesInflateWithOneInflaterThatKeepsItsContext) {
    MessageDeflater deflater(6, 0);
    z_stream z{};
    ASSERT_EQ(inflateInit2(&z, -15), Z_OK);
    for (unsigned i = 0; i < 5; ++i) {
        FramePtr plain = encodeMessage("c", jsonOf(600 + 100 * i, i));
        FramePtr compressed = deflater.compress(*plain).frame;
        ASSERT_TRUE(compressed);
        EXPECT_EQ(inflateMessage(z, payloadOf(compressed)), payloadOf(plain)) << i;
    }
    inflateEnd(&z);
}

TEST(MessageDeflaterTest, PayloadsUnderTheMinimumAreNotCompressed) {
    FramePtr plain = encodeMessage("c", jsonOf(600));
    const size_t payload = payloadOf(plain).size();
    MessageDeflater over(1, payload + 1);
    MessageDeflater::Result r = over.compress(*plain);
    EXPECT_FALSE(r.frame);
    EXPECT_EQ(r.in_bytes, 0u);
    MessageDeflater at(1, payload);
    EXPECT_TRUE(at.compress(*plain).frame);
}

TEST(MessageDeflaterTest, AFrameThatWouldNotBeSmallerIsNotBuilt) {
    MessageDeflater deflater(1, 0);
    // Too short to gain anything.
    MessageDeflater::Result tiny = deflater.compress(*encodeMessage("c", "1"));
    EXPECT_FALSE(tiny.frame);
    EXPECT_GT(tiny.in_bytes, 0u);
    // Random bytes do not compress.
    std::mt19937 rng(3);
    std::string noise(3000, '\0');
    for (char& c : noise) c = static_cast<char>(rng());
    Frame* raw = Frame::allocate(4 + noise.size());
    const size_t header = writeTextHeader(raw->data(), noise.size());
    std::memcpy(raw->data() + header, noise.data(), noise.size());
    raw->setSize(header + noise.size());
    FramePtr plain(raw);
    MessageDeflater::Result r = deflater.compress(*plain);
    EXPECT_FALSE(r.frame);
    EXPECT_EQ(r.in_bytes, noise.size());
    // The stream is reset for the next message.
    FramePtr next = encodeMessage("c", jsonOf(1000));
    FramePtr compressed = deflater.compress(*next).frame;
    ASSERT_TRUE(compressed);
    EXPECT_EQ(inflateMessage(payloadOf(compressed)), payloadOf(next));
}

TEST(MessageDeflaterTest, HeaderWithRsv1AtEachLengthBound) {
    for (uint64_t len : {uint64_t{0}, uint64_t{125}, uint64_t{126}, uint64_t{65535},
                         uint64_t{65536}, uint64_t{1} << 32}) {
        char out[10];
        const size_t n = writeFrameHeader(out, 0xC1, len);
        EXPECT_EQ(n, frameHeaderSize(len));
        EXPECT_EQ(n, len <= 125 ? 2u : len <= 65535 ? 4u : 10u);
        const DecodedFrame f = decode(std::string_view(out, n));
        EXPECT_EQ(static_cast<uint8_t>(out[0]), 0xC1);
        EXPECT_EQ(f.header_len, n);
        EXPECT_EQ(f.payload_len, len) << len;
    }
}

// Compressed payloads whose lengths need each of the three header forms.
TEST(MessageDeflaterTest, CompressedFramesOfEveryHeaderLength) {
    MessageDeflater deflater(1, 0);
    const std::string inputs[] = {std::string("\"") + std::string(2000, 'a') + "\"",
                                  fourLetters(2000), fourLetters(300000)};
    const size_t headers[] = {2, 4, 10};
    for (size_t i = 0; i < 3; ++i) {
        FramePtr plain = encodeMessage("c", inputs[i]);
        FramePtr compressed = deflater.compress(*plain).frame;
        ASSERT_TRUE(compressed) << i;
        const DecodedFrame f = decode(compressed->bytes());
        EXPECT_EQ(f.header_len, headers[i]) << f.payload_len;
        EXPECT_EQ(f.payload_len, f.payload.size());
        EXPECT_EQ(compressed->size(), f.header_len + f.payload.size());
        EXPECT_EQ(static_cast<uint8_t>(compressed->bytes()[0]), 0xC1);
        EXPECT_EQ(inflateMessage(f.payload), payloadOf(plain)) << i;
    }
}

class RecordingSink : public Sink {
public:
    void push(const FramePtr& frame) override { frames.push_back(frame); }
    std::vector<FramePtr> frames;
};

class NoListener : public HubListener {
public:
    void onChannelOpened(std::string_view) override {}
    void onChannelClosed(std::string_view) override {}
};

struct Client {
    explicit Client(bool deflate) {
        if (deflate) membership.setDeflate();
    }
    RecordingSink sink;
    Membership membership{sink};
};

TEST(HubCompressionTest, OneCompressedVariantPerMessageOnlyWhenAMemberNegotiatedIt) {
    NoListener listener;
    MessageDeflater deflater(1, 512);
    auto metrics = std::make_unique<metrics::WorkerMetrics>();
    Hub hub(listener, 1 << 20, {}, HubCompression{&deflater, metrics.get()});
    Client plain(false), zipped(true), other(false);
    hub.subscribe(plain.membership, "mixed", 10);
    hub.subscribe(zipped.membership, "mixed", 10);
    hub.subscribe(other.membership, "plain", 10);

    const std::string big = jsonOf(1000);
    hub.deliver("mixed", big);
    hub.deliver("mixed", "{\"small\":true}");
    hub.deliver("plain", big);
    ASSERT_EQ(plain.sink.frames.size(), 2u);
    ASSERT_EQ(zipped.sink.frames.size(), 2u);
    // Both members get the same shared frame; the sink picks the variant.
    EXPECT_EQ(plain.sink.frames[0].get(), zipped.sink.frames[0].get());
    ASSERT_TRUE(zipped.sink.frames[0]->deflated());
    EXPECT_EQ(inflateMessage(payloadOf(zipped.sink.frames[0]->deflated())),
              payloadOf(zipped.sink.frames[0]));
    EXPECT_FALSE(zipped.sink.frames[1]->deflated());  // under compression_min_bytes
    ASSERT_EQ(other.sink.frames.size(), 1u);
    EXPECT_FALSE(other.sink.frames[0]->deflated());  // nobody on "plain" negotiated it
    EXPECT_EQ(metrics->compressed_frames.value(), 1);
    EXPECT_EQ(metrics->compression_bytes[metrics::CompressionStage::In].value(),
              static_cast<int64_t>(payloadOf(plain.sink.frames[0]).size()));
    EXPECT_EQ(metrics->compression_bytes[metrics::CompressionStage::Out].value(),
              static_cast<int64_t>(payloadOf(zipped.sink.frames[0]->deflated()).size()));

    // Once the deflate member is gone, nothing is compressed on the channel.
    hub.unsubscribe(zipped.membership, "mixed");
    hub.deliver("mixed", big);
    ASSERT_EQ(plain.sink.frames.size(), 3u);
    EXPECT_FALSE(plain.sink.frames[2]->deflated());
}

TEST(HubCompressionTest, WithoutACompressorNothingIsCompressed) {
    NoListener listener;
    Hub hub(listener, 1 << 20);
    Client zipped(true);
    hub.subscribe(zipped.membership, "c", 10);
    hub.deliver("c", jsonOf(1000));
    ASSERT_EQ(zipped.sink.frames.size(), 1u);
    EXPECT_FALSE(zipped.sink.frames[0]->deflated());
}

// lws's own deflater would compress a data frame written with lws_write(LWS_WRITE_TEXT/BINARY)
// on a connection that negotiated permessage-deflate, and the client's inflater would then be
// out of step with the frames the hub compressed. Every lws_write in the relay must write raw
// bytes (LWS_WRITE_RAW, or LWS_WRITE_HTTP* before the upgrade), which lws passes by its extension.
TEST(LwsWriteTest, TheRelayNeverWritesDataFramesThroughLws) {
    namespace fs = std::filesystem;
    const std::regex call(R"(lws_write\s*\(([^;]*)\))");
    const std::regex allowed(R"(LWS_WRITE_(RAW|HTTP|HTTP_FINAL|HTTP_HEADERS)\b)");
    size_t calls = 0;
    for (const char* dir : {"relay", "adapters"}) {
        for (const auto& entry :
             fs::recursive_directory_iterator(fs::path(WSRELAY_SOURCE_DIR) / dir)) {
            const auto ext = entry.path().extension();
            if (ext != ".cc" && ext != ".h") continue;
            std::ifstream in(entry.path());
            std::stringstream text;
            text << in.rdbuf();
            const std::string source = text.str();
            for (std::sregex_iterator it(source.begin(), source.end(), call), end; it != end;
                 ++it) {
                ++calls;
                const std::string args = (*it)[1].str();
                EXPECT_TRUE(std::regex_search(args, allowed))
                    << entry.path() << ": lws_write(" << args << ")";
                EXPECT_EQ(args.find("LWS_WRITE_TEXT"), std::string::npos) << entry.path();
                EXPECT_EQ(args.find("LWS_WRITE_BINARY"), std::string::npos) << entry.path();
                EXPECT_EQ(args.find("LWS_WRITE_CONTINUATION"), std::string::npos) << entry.path();
            }
        }
    }
    EXPECT_GE(calls, 3u);  // the scan found the calls there are
}

TEST(DeflateOfferTest, OffersLws416WouldMishandleAreDeclined) {
    EXPECT_TRUE(edge::deflateOfferAcceptable("permessage-deflate"));
    EXPECT_TRUE(edge::deflateOfferAcceptable("permessage-deflate; client_max_window_bits"));
    EXPECT_TRUE(edge::deflateOfferAcceptable(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"));
    EXPECT_FALSE(edge::deflateOfferAcceptable("permessage-deflate; server_max_window_bits=10"));
    // lws 4.1.6 would drop its inflater after each message the client compresses with context.
    EXPECT_FALSE(edge::deflateOfferAcceptable("permessage-deflate; server_no_context_takeover"));
}

}  // namespace
}  // namespace wsrelay::protocol
