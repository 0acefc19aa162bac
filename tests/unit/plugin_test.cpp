// The plugin host against real libraries: a good one, a duplicate, a throwing
// factory, another ABI, another build key (Boost, compiler, std::string ABI), no descriptor,
// a file that is no library, a missing path. A scan never runs a factory.
#include <QtTest/QtTest>

#include <QTemporaryDir>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include <dlfcn.h>

#include "trellis/bson/builder.hpp"
#include "trellis/plugins.hpp"
#include "trellis/sdk/cursor_manager.hpp"
#include "trellis/sdk/transport.hpp"

namespace fs = std::filesystem;
using namespace trellis;

// Every dlopen of the process passes here first (this executable's definition comes before
// libc's), so a test can count how often the host opened a file.
namespace {
std::mutex dlopen_mutex;
std::map<std::string, int> dlopen_calls;
}  // namespace
extern "C" void* dlopen(const char* file, int mode) {
    using real_dlopen = void* (*)(const char*, int);
    static const auto next = reinterpret_cast<real_dlopen>(dlsym(RTLD_NEXT, "dlopen"));
    if (file) {
        std::lock_guard lock(dlopen_mutex);
        ++dlopen_calls[fs::path(file).filename().string()];
    }
    return next(file, mode);
}

namespace {
int dlopens_of(const std::string& file_name) {
    std::lock_guard lock(dlopen_mutex);
    const auto it = dlopen_calls.find(file_name);
    return it == dlopen_calls.end() ? 0 : it->second;
}

struct recording_killer final : sdk::cursor_killer {
    std::vector<std::string> calls;
    void kill_cursors(const std::string& server, const std::string& ns, const std::vector<std::int64_t>& ids) override {
        std::string s = server + " " + ns + ":";
        for (auto id : ids) s += " " + std::to_string(id);
        calls.push_back(s);
    }
};

const plugin_info* find(const std::vector<plugin_info>& infos, const std::string& file_name) {
    for (const auto& i : infos)
        if (i.file.filename() == file_name) return &i;
    return nullptr;
}

}  // namespace

class PluginTest : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    fs::path root() const { return fs::path(dir_.path().toStdString()); }

private slots:
    void initTestCase() {
        const fs::path built(TRELLIS_TEST_PLUGIN_DIR);
        fs::copy_file(built / "counting.so", root() / "10-counting.so");
        fs::copy_file(built / "counting.so", root() / "20-counting-again.so");
        fs::copy_file(built / "exploding.so", root() / "30-exploding.so");
        fs::copy_file(built / "old_abi.so", root() / "40-old-abi.so");
        fs::copy_file(built / "no_descriptor.so", root() / "50-no-descriptor.so");
        fs::copy_file(built / "mismatch_boost.so", root() / "70-boost.so");
        fs::copy_file(built / "mismatch_compiler.so", root() / "71-compiler.so");
        fs::copy_file(built / "mismatch_cxx11_abi.so", root() / "72-cxx11-abi.so");
        std::ofstream(root() / "60-junk.so") << "this is not a shared library\n";
        std::ofstream(root() / "README.txt") << "ignored: not a library name\n";
    }

    void every_failure_is_reported_and_the_rest_load() {
        plugin_search_options o;
        o.paths = {root(), root() / "missing-dir"};
        o.use_environment = false;
        o.use_default_locations = false;
        plugin_registry registry(o);
        const auto& infos = registry.plugins();
        QCOMPARE(infos.size(), std::size_t(10));

        const plugin_info* good = find(infos, "10-counting.so");
        QVERIFY(good && good->loaded);
        QCOMPARE(good->name, std::string("counting"));
        QVERIFY(good->kind == sdk::plugin_kind::cursor_manager);
        QCOMPARE(good->version, std::string("0.1.0"));

        const plugin_info* dup = find(infos, "20-counting-again.so");
        QVERIFY(dup && !dup->loaded);
        QVERIFY2(dup->error.find("duplicate") != std::string::npos && dup->error.find("10-counting.so") != std::string::npos,
                 dup->error.c_str());

        // Its factory throws, but a scan reads descriptors only: it is listed as loadable, and
        // create() reports the factory (create_errors_name_file_and_reason).
        const plugin_info* boom = find(infos, "30-exploding.so");
        QVERIFY(boom && boom->loaded);
        QVERIFY(boom->kind == sdk::plugin_kind::cursor_manager);

        const plugin_info* old = find(infos, "40-old-abi.so");
        QVERIFY(old && !old->loaded);
        QVERIFY2(old->error.find("SDK ABI version 999") != std::string::npos, old->error.c_str());

        const plugin_info* none = find(infos, "50-no-descriptor.so");
        QVERIFY(none && !none->loaded);
        QVERIFY2(none->error.find("no Trellis plugin descriptor") != std::string::npos, none->error.c_str());

        // Another build key: refused before anything but the key is read, the differing part named.
        const plugin_info* boost = find(infos, "70-boost.so");
        QVERIFY(boost && !boost->loaded);
        QVERIFY2(boost->error.find("built with Boost 1.83, this Trellis uses 1.81") != std::string::npos, boost->error.c_str());
        const plugin_info* compiler = find(infos, "71-compiler.so");
        QVERIFY(compiler && !compiler->loaded);
        QVERIFY2(compiler->error.find("built with Clang 16, this Trellis with GCC 12") != std::string::npos,
                 compiler->error.c_str());
        const plugin_info* abi = find(infos, "72-cxx11-abi.so");
        QVERIFY(abi && !abi->loaded);
        QVERIFY2(abi->error.find("built with _GLIBCXX_USE_CXX11_ABI=0, this Trellis with _GLIBCXX_USE_CXX11_ABI=1") !=
                     std::string::npos,
                 abi->error.c_str());

        const plugin_info* junk = find(infos, "60-junk.so");
        QVERIFY(junk && !junk->loaded);
        QVERIFY2(junk->error.find("not a shared library") != std::string::npos, junk->error.c_str());

        const plugin_info* missing = find(infos, "missing-dir");
        QVERIFY(missing && !missing->loaded);
        QVERIFY2(missing->error.find("missing") != std::string::npos, missing->error.c_str());
    }

    void create_passes_settings_and_keeps_the_library_loaded() {
        plugin_search_options o;
        o.paths = {root()};
        o.use_environment = false;
        o.use_default_locations = false;
        std::shared_ptr<sdk::cursor_manager> manager;
        {
            plugin_registry registry(o);
            const bson::document settings = bson::make_document(bson::kvp("batch", 2));
            manager = registry.create_as<sdk::cursor_manager>(sdk::plugin_kind::cursor_manager, "counting", settings);
        }
        // The registry is gone; the object still works because it holds its library.
        recording_killer killer;
        manager->on_cursor_closed({11, "db.c", "h:1", 1}, killer);
        QVERIFY(killer.calls.empty());
        manager->on_cursor_closed({12, "db.c", "h:1", 1}, killer);
        QCOMPARE(killer.calls, (std::vector<std::string>{"h:1 db.c: 11 12"}));
        manager->on_cursor_closed({13, "db.d", "h:2", 1}, killer);
        manager->flush(killer);
        QCOMPARE(killer.calls.back(), std::string("h:2 db.d: 13"));
    }

    void create_errors_name_file_and_reason() {
        plugin_search_options o;
        o.paths = {root()};
        o.use_environment = false;
        o.use_default_locations = false;
        plugin_registry registry(o);
        try {
            registry.create(sdk::plugin_kind::cursor_manager, "exploding");
            QFAIL("a failed plugin must not be created");
        } catch (const plugin_error& e) {
            QVERIFY(e.path().ends_with("30-exploding.so"));
            QCOMPARE(e.kind(), std::string("cursor_manager"));
            QVERIFY2(std::string(e.what()).find("factory threw: exploding refuses to start") != std::string::npos, e.what());
        }
        try {
            registry.create(sdk::plugin_kind::cursor_manager, "nope");
            QFAIL("an unknown plugin must not be created");
        } catch (const plugin_error& e) {
            QVERIFY2(std::string(e.what()).find("no cursor_manager plugin named \"nope\" (found: counting, exploding)") != std::string::npos,
                     e.what());
        }
        try {
            registry.create_as<sdk::transport>(sdk::plugin_kind::cursor_manager, "counting");
            QFAIL("a cursor manager is not a transport");
        } catch (const plugin_error& e) {
            QVERIFY(std::string(e.what()).find("does not implement") != std::string::npos);
        }
    }

    void a_library_that_fails_to_load_is_opened_once() {
        // The loader's reason (an undefined symbol) comes from the one dlopen that failed, not
        // from opening the file a second time.
        QTemporaryDir dir;
        const fs::path file = fs::path(dir.path().toStdString()) / "80-unresolved.so";
        fs::copy_file(fs::path(TRELLIS_TEST_PLUGIN_DIR) / "unresolved.so", file);
        plugin_search_options o;
        o.paths = {file.parent_path()};
        o.use_environment = false;
        o.use_default_locations = false;
        const int before = dlopens_of("80-unresolved.so");
        plugin_registry registry(o);
        const auto& infos = registry.plugins();
        QCOMPARE(infos.size(), std::size_t(1));
        QVERIFY(!infos[0].loaded);
        QVERIFY2(infos[0].error.find("cannot be loaded: ") == 0 &&
                     infos[0].error.find("undefined symbol: trellis_test_symbol_nobody_defines") != std::string::npos,
                 infos[0].error.c_str());
        QCOMPARE(dlopens_of("80-unresolved.so") - before, 1);
        // A good library still loads (the host's dlopen, then Boost.DLL's reference to it).
        const fs::path good = fs::path(dir.path().toStdString()) / "81-counting.so";
        fs::copy_file(fs::path(TRELLIS_TEST_PLUGIN_DIR) / "counting.so", good);
        fs::remove(file);
        plugin_registry again(o);
        QCOMPARE(again.plugins().size(), std::size_t(1));
        QVERIFY2(again.plugins()[0].loaded, again.plugins()[0].error.c_str());
    }

    void build_key_mismatch_names_the_part() {
        auto host = sdk::this_build_key();
        QCOMPARE(build_key_mismatch(host, host), std::string());
        auto other = host;
        other.boost_version = 108300;
        QCOMPARE(build_key_mismatch(other, host), std::string("built with Boost 1.83, this Trellis uses 1.81"));
        other = host;
        other.trellis_abi = 1;
        QCOMPARE(build_key_mismatch(other, host), "built for Trellis SDK ABI 1, this Trellis uses " + std::to_string(trellis::sdk::abi_version));
        other = host;
        other.standard_library = "libc++";
        QCOMPARE(build_key_mismatch(other, host), std::string("built with libc++, this Trellis with libstdc++"));
    }

    void authenticators_declare_their_mechanisms() {
        plugin_registry registry;
        std::map<std::string, std::vector<std::string>> provided;
        for (const auto& i : registry.plugins())
            if (i.kind == sdk::plugin_kind::authenticator && i.loaded) provided[i.name] = i.provides;
        QCOMPARE(provided["scram"], (std::vector<std::string>{"SCRAM-SHA-1", "SCRAM-SHA-256"}));
        QCOMPARE(provided["plain"], (std::vector<std::string>{"PLAIN"}));
        QCOMPARE(provided["x509"], (std::vector<std::string>{"MONGODB-X509"}));
    }

    void environment_then_build_tree() {
        qputenv("TRELLIS_PLUGIN_PATH", QByteArray::fromStdString((root() / "10-counting.so").string()));
        plugin_registry registry;
        const auto& infos = registry.plugins();
        qunsetenv("TRELLIS_PLUGIN_PATH");
        QVERIFY(!infos.empty());
        QCOMPARE(infos.front().name, std::string("counting"));  // the environment comes first
        bool plain = false, tls = false;
        for (const auto& i : infos) {
            if (i.kind == sdk::plugin_kind::transport && i.name == "plain" && i.loaded) plain = true;
            if (i.kind == sdk::plugin_kind::transport && i.name == "tls" && i.loaded) tls = true;
        }
        QVERIFY(plain);
        QVERIFY(tls);
    }
};

QTEST_GUILESS_MAIN(PluginTest)
#include "plugin_test.moc"
