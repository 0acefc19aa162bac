// The compressor plugins (snappy, zlib, zstd), loaded from the build tree: round trips of empty,
// small, large and incompressible data; corrupt input (truncated, garbage, a wrong announced
// size) as errc::compression_error naming the codec; settings; and each plugin against
// trellis-sim's own codec of the same name, both ways (independent implementations agree).
#include <QtTest/QtTest>

#include <random>

#include "compressors.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/errors.hpp"
#include "trellis/plugins.hpp"
#include "trellis/sdk/compressor.hpp"

namespace sdk = trellis::sdk;
using bytes = std::vector<std::uint8_t>;

namespace {

trellis::plugin_search_options build_tree_only() {
    trellis::plugin_search_options o;
    o.paths = {TRELLIS_PLUGIN_DIR};
    o.use_environment = false;
    o.use_default_locations = false;
    return o;
}

bytes text(std::size_t n) {
    const std::string_view pattern = "{\"name\": \"trellis\", \"tags\": [\"driver\", \"wire\"], \"n\": 12345} ";
    bytes out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(pattern[i % pattern.size()] + (i / 4096) % 7);
    return out;
}

bytes noise(std::size_t n) {
    std::mt19937 rng(15);
    bytes out(n);
    for (auto& b : out) b = static_cast<std::uint8_t>(rng());
    return out;
}

// What decompress throws: its errc and message, or nothing.
struct outcome {
    bool threw = false;
    std::error_code code;
    std::string what;
};

outcome try_decompress(const sdk::compressor& c, const bytes& in, std::size_t announced, bytes& out) {
    outcome o;
    try {
        c.decompress(in, announced, out);
    } catch (const trellis::error& e) {
        o = {true, e.code(), e.what()};
    }
    return o;
}

}  // namespace

class CompressorTest : public QObject {
    Q_OBJECT

    std::unique_ptr<trellis::plugin_registry> registry_;

    std::shared_ptr<sdk::compressor> plugin(const QString& name) {
        return registry_->create_as<sdk::compressor>(sdk::plugin_kind::compressor, name.toStdString());
    }

    void codecs() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("id");
        QTest::newRow("snappy") << "snappy" << 1;
        QTest::newRow("zlib") << "zlib" << 2;
        QTest::newRow("zstd") << "zstd" << 3;
    }

    // Decompressing in must fail with errc::compression_error whose message names the codec
    // and contains expected; out keeps its prefix and nothing more.
    void expect_rejected(const sdk::compressor& c, const bytes& in, std::size_t announced, const char* expected) {
        bytes out = {7, 7};
        const outcome o = try_decompress(c, in, announced, out);
        QVERIFY2(o.threw, "corrupt input was accepted");
        QCOMPARE(o.code, trellis::make_error_code(trellis::errc::compression_error));
        const std::string prefix = std::string(c.name()) + ": ";
        QVERIFY2(o.what.rfind(prefix, 0) == 0, o.what.c_str());
        QVERIFY2(o.what.find(expected) != std::string::npos, o.what.c_str());
        QCOMPARE(out, (bytes{7, 7}));
    }

private slots:
    void initTestCase() { registry_ = std::make_unique<trellis::plugin_registry>(build_tree_only()); }

    void ids_and_names_data() { codecs(); }
    void ids_and_names() {
        QFETCH(QString, name);
        QFETCH(int, id);
        auto c = plugin(name);
        QCOMPARE(QString::fromUtf8(c->name().data(), static_cast<int>(c->name().size())), name);
        QCOMPARE(int(c->id()), id);
    }

    void round_trips_data() { codecs(); }
    void round_trips() {
        QFETCH(QString, name);
        auto c = plugin(name);
        for (const bytes& data : {bytes{}, bytes{'h', 'i'}, text(1000), text(8 * 1024 * 1024), noise(1024 * 1024)}) {
            // compress and decompress append: what out held stays.
            bytes packed = {0xAA};
            c->compress(data, packed);
            QCOMPARE(packed.front(), std::uint8_t(0xAA));
            packed.erase(packed.begin());
            // Compressible data shrinks: the 8 MiB text to a small fraction.
            if (data.size() == 8 * 1024 * 1024) QVERIFY2(packed.size() < data.size() / 8, std::to_string(packed.size()).c_str());
            bytes back = {1, 2, 3};
            c->decompress(packed, data.size(), back);
            QCOMPARE(back.size(), data.size() + 3);
            QVERIFY(std::equal(data.begin(), data.end(), back.begin() + 3));
        }
    }

    void truncated_input_is_rejected_data() { codecs(); }
    void truncated_input_is_rejected() {
        QFETCH(QString, name);
        auto c = plugin(name);
        const bytes data = text(100'000);
        bytes packed;
        c->compress(data, packed);
        for (std::size_t keep : {packed.size() / 2, packed.size() - 1, std::size_t(1), std::size_t(0)}) {
            const bytes cut(packed.begin(), packed.begin() + static_cast<long>(keep));
            // A cut inside the data is called what it is.
            expect_rejected(*c, cut, data.size(), keep >= 2 ? "truncated" : "invalid compressed data");
        }
    }

    void garbage_is_rejected_data() { codecs(); }
    void garbage_is_rejected() {
        QFETCH(QString, name);
        auto c = plugin(name);
        expect_rejected(*c, noise(5000), 20'000, "invalid compressed data");
        // Valid data with bytes flipped in the middle.
        const bytes data = text(100'000);
        bytes packed;
        c->compress(data, packed);
        for (std::size_t i = packed.size() / 3; i < packed.size() / 3 + 16; ++i) packed[i] ^= 0x5A;
        bytes out;
        const outcome o = try_decompress(*c, packed, data.size(), out);
        // Flipped bytes may still decode (snappy has no checksum) but never to the original.
        if (o.threw) {
            QCOMPARE(o.code, trellis::make_error_code(trellis::errc::compression_error));
            QVERIFY2(o.what.find("invalid compressed data") != std::string::npos, o.what.c_str());
        } else {
            QCOMPARE(out.size(), data.size());
            QVERIFY(out != data);
        }
    }

    void wrong_announced_size_is_rejected_data() { codecs(); }
    void wrong_announced_size_is_rejected() {
        QFETCH(QString, name);
        auto c = plugin(name);
        const bytes data = text(50'000);
        bytes packed;
        c->compress(data, packed);
        // Announced larger than the data: the data ends early. Smaller: it would overflow.
        expect_rejected(*c, packed, data.size() + 1, "invalid compressed data");
        expect_rejected(*c, packed, data.size() - 1, "invalid compressed data");
        expect_rejected(*c, packed, 0, "invalid compressed data");
        // The message says which sizes disagree (snappy and zstd record the size in their data).
        if (name != "zlib") expect_rejected(*c, packed, data.size() + 1, std::to_string(data.size() + 1).c_str());
    }

    void settings_are_checked() {
        auto level = [](int l) { return trellis::bson::make_document(trellis::bson::kvp("level", l)); };
        auto refuses = [&](const char* name, const trellis::bson::document& settings, const char* expected) {
            try {
                registry_->create_as<sdk::compressor>(sdk::plugin_kind::compressor, name, settings.view());
            } catch (const trellis::error& e) {
                QVERIFY2(std::string(e.what()).find(expected) != std::string::npos, e.what());
                return;
            }
            QFAIL("bad settings were accepted");
        };
        // zstd takes a level, used for real: level 19 packs tighter than level 1.
        auto fast = registry_->create_as<sdk::compressor>(sdk::plugin_kind::compressor, "zstd", level(1).view());
        auto tight = registry_->create_as<sdk::compressor>(sdk::plugin_kind::compressor, "zstd", level(19).view());
        const bytes data = text(2 * 1024 * 1024);
        bytes a, b;
        fast->compress(data, a);
        tight->compress(data, b);
        QVERIFY2(b.size() < a.size(), (std::to_string(b.size()) + " vs " + std::to_string(a.size())).c_str());
        refuses("zstd", level(23), "level must be from");
        refuses("zstd", trellis::bson::make_document(trellis::bson::kvp("level", "high")), "level must be an integer");
        refuses("zstd", trellis::bson::make_document(trellis::bson::kvp("speed", 1)), "unknown setting \"speed\"");
        refuses("snappy", level(1), "snappy has no settings");
    }

    // The simulator's codecs are written separately from the plugins: each side's output must
    // be what the other expects.
    void plugins_and_simulator_agree_data() { codecs(); }
    void plugins_and_simulator_agree() {
        QFETCH(QString, name);
        auto c = plugin(name);
        auto sim = trellis::sim::make_compressor(name.toStdString());
        QVERIFY(sim);
        QCOMPARE(sim->id(), c->id());
        for (const bytes& data : {bytes{'x'}, text(3 * 1024 * 1024), noise(70'000)}) {
            bytes from_plugin, from_sim, out1, out2;
            c->compress(data, from_plugin);
            sim->compress(data, from_sim);
            sim->decompress(from_plugin, data.size(), out1);
            c->decompress(from_sim, data.size(), out2);
            QVERIFY(out1 == data);
            QVERIFY(out2 == data);
        }
        QCOMPARE(sim->compressor_in.load(), std::int64_t(1 + 3 * 1024 * 1024 + 70'000));
        QCOMPARE(sim->decompressor_out.load(), std::int64_t(1 + 3 * 1024 * 1024 + 70'000));
    }
};

QTEST_GUILESS_MAIN(CompressorTest)
#include "compressor_test.moc"
