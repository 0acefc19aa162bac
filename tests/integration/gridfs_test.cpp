// GridFS buckets (trellis/gridfs.hpp) against trellis-sim: what is stored (files and chunks
// documents, indexes), byte-identical round trips, the typed errors for damaged files, delete,
// rename, revisions by name, blocking and async faces, and the commands sent ($eq on ids).
#include <QtTest/QtTest>

#include <boost/asio.hpp>
#include <future>
#include <map>
#include <mutex>
#include <numeric>
#include <sstream>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/gridfs.hpp"
#include "trellis/sim/deployment.hpp"
#include "sim_rig.hpp"
#include "fail_point.hpp"

namespace asio = boost::asio;
namespace bson = trellis::bson;
namespace gridfs = trellis::gridfs;
namespace sim = trellis::sim;

namespace {

using trellis_test::doc;

using rig = trellis_test::sim_rig;

std::vector<std::uint8_t> pattern(std::size_t n, unsigned seed) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
    return v;
}

template <class E, class F>
E expect_throw(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e;
    }
    throw std::runtime_error("the expected exception was not thrown");
}

}  // namespace

class GridfsTest : public QObject {
    Q_OBJECT

    std::unique_ptr<rig> rig_;
    trellis::database db() { return (*rig_->client)["gridfs"]; }

private slots:
    void initTestCase() { rig_ = std::make_unique<rig>(); }
    void cleanupTestCase() { rig_.reset(); }
    void init() { db().drop(); }

    void multi_chunk_upload_then_download_is_byte_identical() {
        gridfs::bucket fs(db(), [] {
            gridfs::bucket_options o;
            o.chunk_size_bytes = 1000;
            return o;
        }());
        const auto data = pattern(3500, 1);  // chunks of 1000, 1000, 1000, 500
        std::istringstream in(std::string(data.begin(), data.end()));
        gridfs::upload_options uo;
        uo.metadata = doc(R"({"owner": "ann"})");
        const gridfs::file_id id = fs.upload_from_stream("big.bin", in, uo);
        QCOMPARE(id.value().type(), bson::type::oid);

        // What is stored: four chunks (n 0..3, last one 500 bytes) and one files document.
        auto chunks = fs.chunks_collection().find(doc("{}"), [] {
            trellis::find_options f;
            f.sort = doc(R"({"n": 1})");
            return f;
        }());
        std::vector<std::size_t> sizes;
        for (const auto& c : chunks) {
            QCOMPARE(c["n"].type(), bson::type::int32);
            QCOMPARE(c["n"].as_int64(), static_cast<std::int64_t>(sizes.size()));
            QVERIFY(c["files_id"].get_oid() == id.value().get_oid());
            QCOMPARE(c["data"].get_binary().subtype, bson::binary_subtype::generic);
            sizes.push_back(c["data"].get_binary().bytes.size());
        }
        QCOMPARE(sizes, (std::vector<std::size_t>{1000, 1000, 1000, 500}));
        const auto files = fs.files_collection().find_one(doc("{}"));
        QVERIFY(files);
        QCOMPARE((*files)["length"].type(), bson::type::int64);
        QCOMPARE((*files)["length"].as_int64(), std::int64_t(3500));
        QCOMPARE((*files)["chunkSize"].type(), bson::type::int32);
        QCOMPARE((*files)["chunkSize"].as_int64(), std::int64_t(1000));
        QCOMPARE((*files)["filename"].get_string(), std::string_view("big.bin"));
        QCOMPARE((*files)["uploadDate"].type(), bson::type::date_time);
        QCOMPARE((*files)["metadata"].get_document()["owner"].get_string(), std::string_view("ann"));
        QVERIFY(!files->contains("md5"));

        // Three ways back: bytes, an ostream, a reader in odd-sized reads.
        QVERIFY(fs.download(id) == data);
        std::ostringstream out;
        fs.download_to_stream(id, out);
        QVERIFY(out.str() == std::string(data.begin(), data.end()));
        auto reader = fs.open_download_stream(id);
        QCOMPARE(reader.length(), std::int64_t(3500));
        std::vector<std::uint8_t> got, part(333);
        while (const std::size_t n = reader.read(part)) got.insert(got.end(), part.begin(), part.begin() + static_cast<std::ptrdiff_t>(n));
        QVERIFY(got == data);
        QCOMPARE(reader.read(part), std::size_t(0));
    }

    void indexes_are_made_before_the_first_write_once() {
        gridfs::bucket fs(db());
        rig_->forget();
        const std::vector<std::uint8_t> one = {1, 2, 3};
        fs.upload_from_bytes("a", one);
        auto names = [](trellis::collection c) {
            std::map<std::string, bson::document> out;
            for (const auto& i : c.list_indexes()) out.emplace(std::string(i["name"].get_string()), bson::document(i));
            return out;
        };
        const auto fi = names(fs.files_collection());
        QVERIFY(fi.contains("filename_1_uploadDate_1"));
        const auto ci = names(fs.chunks_collection());
        QVERIFY(ci.contains("files_id_1_n_1"));
        QVERIFY(ci.at("files_id_1_n_1")["unique"].get_bool());
        QCOMPARE(rig_->sent("createIndexes").size(), std::size_t(2));
        // The probe of the files collection asked for _id only.
        const auto probe = rig_->sent("find").front();
        QCOMPARE(probe["projection"].get_document().count(), std::size_t(1));
        QCOMPARE(probe["projection"].get_document()["_id"].as_int64(), std::int64_t(1));

        // A second upload on the same bucket checks nothing again; a new bucket finds files and
        // does not look at indexes either.
        rig_->forget();
        fs.upload_from_bytes("b", one);
        gridfs::bucket again(db());
        again.upload_from_bytes("c", one);
        QCOMPARE(rig_->sent("createIndexes").size(), std::size_t(0));
        QCOMPARE(rig_->sent("listIndexes").size(), std::size_t(0));

        // Indexes that exist already (made by hand, with doubles as the shell makes them) are not made again.
        db().drop();
        gridfs::bucket other(db(), [] {
            gridfs::bucket_options o;
            o.bucket_name = "pics";
            return o;
        }());
        db()["pics.files"].create_index(doc(R"({"filename": 1.0, "uploadDate": 1.0})"));
        db()["pics.chunks"].create_index(doc(R"({"files_id": 1.0, "n": 1.0})"), doc(R"({"unique": true})"));
        rig_->forget();
        other.upload_from_bytes("d", one);
        QCOMPARE(rig_->sent("listIndexes").size(), std::size_t(2));
        QCOMPARE(rig_->sent("createIndexes").size(), std::size_t(0));
        QCOMPARE(db().list_collection_names().size(), std::size_t(2));
    }

    void a_zero_length_file_has_no_chunks_and_downloads_without_asking() {
        gridfs::bucket fs(db());
        const gridfs::file_id id = fs.upload_from_bytes("empty", {});
        QCOMPARE(fs.chunks_collection().count_documents(), std::int64_t(0));
        const auto files = fs.files_collection().find_one(doc("{}"));
        QCOMPARE((*files)["length"].as_int64(), std::int64_t(0));
        rig_->forget();
        QVERIFY(fs.download(id).empty());
        // The spec: no query on the chunks collection for an empty file.
        for (const auto& f : rig_->sent("find")) QCOMPARE(f["find"].get_string(), std::string_view("fs.files"));
        // The file id was asked for with $eq.
        const auto finds = rig_->sent("find");  // the views below point into it
        const auto filter = finds.front()["filter"].get_document();
        QVERIFY(filter["_id"].get_document()["$eq"].get_oid() == id.value().get_oid());
    }

    void damaged_files_are_typed_errors() {
        gridfs::bucket fs(db(), [] {
            gridfs::bucket_options o;
            o.chunk_size_bytes = 4;
            return o;
        }());
        const auto data = pattern(10, 2);  // chunks of 4, 4, 2
        const auto id = fs.upload_from_bytes("ten", data);
        auto chunks = fs.chunks_collection();

        // No files document.
        const auto nf = expect_throw<gridfs::file_not_found>([&] { fs.download(gridfs::file_id(bson::oid::generate())); });
        QCOMPARE(nf.code(), gridfs::make_error_code(gridfs::errc::file_not_found));
        QVERIFY(nf.id().has_value());

        // A missing intermediate chunk: n 1 expected, n 2 came.
        auto n1 = chunks.find_one(doc(R"({"n": 1})"));
        chunks.delete_one(doc(R"({"n": 1})"));
        auto missing = expect_throw<gridfs::corrupt_file>([&] { fs.download(id); });
        QCOMPARE(missing.code(), gridfs::make_error_code(gridfs::errc::chunk_is_missing));
        QCOMPARE(missing.n(), std::int64_t(1));
        QVERIFY(std::string(missing.what()).find("chunk 1 is missing") != std::string::npos);
        chunks.insert_one(*n1);

        // The last chunk missing: the cursor ends early.
        auto n2 = chunks.find_one(doc(R"({"n": 2})"));
        chunks.delete_one(doc(R"({"n": 2})"));
        missing = expect_throw<gridfs::corrupt_file>([&] { fs.download(id); });
        QCOMPARE(missing.code(), gridfs::make_error_code(gridfs::errc::chunk_is_missing));
        QCOMPARE(missing.n(), std::int64_t(2));
        chunks.insert_one(*n2);
        QVERIFY(fs.download(id) == data);

        // A chunk of the wrong size.
        bson::builder b;
        b.open_document("$set").append("data", bson::binary{0, std::span<const std::uint8_t>(data.data(), 3)}).close_document();
        chunks.update_one(doc(R"({"n": 0})"), b.extract());
        const auto wrong = expect_throw<gridfs::corrupt_file>([&] { fs.download(id); });
        QCOMPARE(wrong.code(), gridfs::make_error_code(gridfs::errc::chunk_is_wrong_size));
        QCOMPARE(wrong.n(), std::int64_t(0));
        QCOMPARE(wrong.expected_size(), std::int64_t(4));
        QCOMPARE(wrong.actual_size(), std::int64_t(3));
        bson::builder fix;
        fix.open_document("$set").append("data", bson::binary{0, std::span<const std::uint8_t>(data.data(), 4)}).close_document();
        chunks.update_one(doc(R"({"n": 0})"), fix.extract());

        // An extra chunk after the last one.
        bson::builder extra;
        extra.append("files_id", id.value()).append("n", 3).append("data", bson::binary{0, std::span<const std::uint8_t>(data.data(), 1)});
        chunks.insert_one(extra.extract());
        const auto ex = expect_throw<gridfs::corrupt_file>([&] { fs.download(id); });
        QCOMPARE(ex.code(), gridfs::make_error_code(gridfs::errc::extra_chunk));
        QCOMPARE(ex.n(), std::int64_t(3));
        // All are trellis::error.
        QVERIFY(dynamic_cast<const trellis::error*>(&ex) != nullptr);
    }

    // A byte range: only its bytes, from only the chunks holding them; bad ranges refused early.
    void byte_ranges() {
        gridfs::bucket fs(db(), [] {
            gridfs::bucket_options o;
            o.chunk_size_bytes = 100;
            return o;
        }());
        const auto data = pattern(1050, 7);  // chunks n 0..10, the last one 50 bytes
        const auto id = fs.upload_from_bytes("ranged", data);
        const auto slice = [&](std::int64_t from, std::int64_t to) {
            return std::vector<std::uint8_t>(data.begin() + from, data.begin() + to);
        };
        const auto range = [](std::int64_t start, std::optional<std::int64_t> end) {
            gridfs::download_options o;
            o.range = {start, end};
            return o;
        };
        // Inside one chunk, across chunk boundaries, to the end, from the start, nothing.
        rig_->forget();
        QVERIFY(fs.download(id, range(120, 180)) == slice(120, 180));
        auto finds = rig_->sent("find");
        QCOMPARE(finds.size(), std::size_t(2));  // the files document, then the chunks
        bson::builder wanted;
        wanted.open_document("files_id").append("$eq", id.value()).close_document();
        wanted.open_document("n").append("$gte", std::int64_t(1)).close_document();
        QCOMPARE(bson::to_json(finds[1]["filter"].get_document(), bson::json_mode::canonical),
                 bson::to_json(wanted.extract(), bson::json_mode::canonical));
        QCOMPARE(finds[1]["limit"].as_int64(), std::int64_t(1));
        QVERIFY(fs.download(id, range(99, 901)) == slice(99, 901));
        QVERIFY(fs.download(id, range(1000, std::nullopt)) == slice(1000, 1050));
        QVERIFY(fs.download(id, range(0, 1)) == slice(0, 1));
        QVERIFY(fs.download(id, range(1050, 1050)).empty());
        QVERIFY(fs.download(id, range(0, std::nullopt)) == data);
        std::ostringstream out;
        fs.download_to_stream(id, out, range(250, 777));
        const auto mid = slice(250, 777);
        QVERIFY(out.str() == std::string(mid.begin(), mid.end()));
        gridfs::download_by_name_options newest;
        newest.range = {1049, 1050};
        QVERIFY(fs.download_by_name("ranged", newest) == slice(1049, 1050));
        // A reader of a part: its bytes in odd-sized reads; length() is the file's.
        auto reader = fs.open_download_stream(id, range(333, 666));
        QCOMPARE(reader.length(), std::int64_t(1050));
        std::vector<std::uint8_t> got, part(70);
        while (const std::size_t n = reader.read(part)) got.insert(got.end(), part.begin(), part.begin() + static_cast<std::ptrdiff_t>(n));
        QVERIFY(got == slice(333, 666));
        // Async.
        QVERIFY(fs.async_download(id, range(5, 1049), asio::use_future).get() == slice(5, 1049));

        // Bad ranges: invalid_argument naming the range and the length, before any chunk is read.
        for (const auto& [start, end] : std::vector<std::pair<std::int64_t, std::int64_t>>{{-1, 10}, {20, 10}, {0, 1051}, {1051, 1051}}) {
            rig_->forget();
            const auto e = expect_throw<trellis::error>([&] { fs.download(id, range(start, end)); });
            QCOMPARE(e.code(), trellis::make_error_code(trellis::errc::invalid_argument));
            QVERIFY2(std::string(e.what()).find("[" + std::to_string(start) + ", " + std::to_string(end) + ")") != std::string::npos, e.what());
            QVERIFY2(std::string(e.what()).find("1050 byte(s)") != std::string::npos, e.what());
            QCOMPARE(rig_->sent("find").size(), std::size_t(1));  // the files document only
        }

        // A damaged chunk inside the range is still found; one outside it does not matter.
        auto chunks = fs.chunks_collection();
        chunks.delete_one(doc(R"({"n": 5})"));
        const auto missing = expect_throw<gridfs::corrupt_file>([&] { fs.download(id, range(450, 650)); });
        QCOMPARE(missing.code(), gridfs::make_error_code(gridfs::errc::chunk_is_missing));
        QCOMPARE(missing.n(), std::int64_t(5));
        QVERIFY(fs.download(id, range(600, 1050)) == slice(600, 1050));
        QVERIFY(fs.download(id, range(0, 500)) == slice(0, 500));
    }

    void delete_removes_files_and_chunks_and_reports_an_absent_file() {
        gridfs::bucket fs(db(), [] {
            gridfs::bucket_options o;
            o.chunk_size_bytes = 3;
            return o;
        }());
        const auto keep = fs.upload_from_bytes("keep", pattern(7, 3));
        const auto id = fs.upload_from_bytes("gone", pattern(7, 4));
        rig_->forget();
        fs.delete_file(id);
        // The files document first, then the chunks, each by $eq.
        const auto deletes = rig_->sent("delete");
        QCOMPARE(deletes.size(), std::size_t(2));
        QCOMPARE(deletes[0]["delete"].get_string(), std::string_view("fs.files"));
        QCOMPARE(deletes[1]["delete"].get_string(), std::string_view("fs.chunks"));
        const auto q = deletes[1]["deletes"].get_array()[0].get_document()["q"].get_document();
        QVERIFY(q["files_id"].get_document().contains("$eq"));
        QCOMPARE(fs.files_collection().count_documents(), std::int64_t(1));
        QCOMPARE(fs.chunks_collection().count_documents(), std::int64_t(3));
        QVERIFY(fs.download(keep) == pattern(7, 3));

        // Orphan chunks of an absent file go, and the answer is file_not_found.
        bson::builder orphan;
        orphan.append("files_id", id.value()).append("n", 0).append("data", bson::binary{0, {}});
        fs.chunks_collection().insert_one(orphan.extract());
        const auto e = expect_throw<gridfs::file_not_found>([&] { fs.delete_file(id); });
        QVERIFY(*e.id() == id);
        QCOMPARE(fs.chunks_collection().count_documents(), std::int64_t(3));

        // An id that looks like a query matches only itself.
        bson::builder weird;
        weird.open_document("v").append("$gt", 0).close_document();
        const gridfs::file_id query_like(weird.extract()["v"]);
        expect_throw<gridfs::file_not_found>([&] { fs.delete_file(query_like); });
        QCOMPARE(fs.files_collection().count_documents(), std::int64_t(1));
    }

    void rename_and_revisions_by_name() {
        gridfs::bucket fs(db());
        std::vector<gridfs::file_id> ids;
        for (unsigned r = 0; r < 3; ++r) {
            gridfs::upload_options o;
            o.id = gridfs::file_id(std::int64_t(100 + r));  // custom ids
            ids.push_back(fs.upload_from_bytes("report", pattern(5 + r, r), o));
            QTest::qWait(5);  // distinct uploadDates
        }
        QCOMPARE(ids[0].value().as_int64(), std::int64_t(100));
        auto rev = [&](std::int32_t r) {
            gridfs::download_by_name_options o;
            o.revision = r;
            return fs.download_by_name("report", o);
        };
        QVERIFY(rev(0) == pattern(5, 0));
        QVERIFY(rev(1) == pattern(6, 1));
        QVERIFY(rev(2) == pattern(7, 2));
        QVERIFY(rev(-1) == pattern(7, 2));
        QVERIFY(rev(-2) == pattern(6, 1));
        QVERIFY(rev(-3) == pattern(5, 0));
        QVERIFY(fs.download_by_name("report") == pattern(7, 2));
        const auto rnf = expect_throw<gridfs::revision_not_found>([&] { rev(3); });
        QCOMPARE(rnf.revision(), 3);
        QCOMPARE(rnf.revisions(), std::int64_t(3));
        expect_throw<gridfs::revision_not_found>([&] { rev(-4); });
        const auto fnf = expect_throw<gridfs::file_not_found>([&] { fs.download_by_name("nothing"); });
        QCOMPARE(fnf.filename(), std::string("nothing"));
        QVERIFY(std::string(fnf.what()) != std::string(rnf.what()));

        fs.rename(ids[1], "renamed");
        QVERIFY(fs.download_by_name("renamed") == pattern(6, 1));
        QVERIFY(fs.download_by_name("report", [] {
            gridfs::download_by_name_options o;
            o.revision = 1;
            return o;
        }()) == pattern(7, 2));
        expect_throw<gridfs::file_not_found>([&] { fs.rename(gridfs::file_id(std::int64_t(999)), "x"); });

        // find: the files documents, with options.
        trellis::find_options newest;
        newest.sort = doc(R"({"uploadDate": -1})");
        newest.limit = 1;
        auto c = fs.find(doc(R"({"filename": "report"})"), newest);
        auto first = c.next();
        QVERIFY(first);
        QCOMPARE((*first)["_id"].as_int64(), std::int64_t(102));
        QVERIFY(!c.next());

        fs.rename_by_name("report", "old");
        QCOMPARE(fs.files_collection().count_documents(doc(R"({"filename": "old"})")), std::int64_t(2));
        fs.delete_by_name("old");
        QCOMPARE(fs.files_collection().count_documents(), std::int64_t(1));
        QCOMPARE(fs.chunks_collection().count_documents(), std::int64_t(1));
        expect_throw<gridfs::file_not_found>([&] { fs.delete_by_name("old"); });
        fs.drop();
        QCOMPARE(db().list_collection_names().size(), std::size_t(0));
    }

    void upload_stream_close_and_abort() {
        gridfs::bucket fs(db(), [] {
            gridfs::bucket_options o;
            o.chunk_size_bytes = 8;
            return o;
        }());
        const auto data = pattern(30, 5);
        auto w = fs.open_upload_stream("streamed");
        w.write(std::span(data).subspan(0, 5));
        QCOMPARE(fs.chunks_collection().count_documents(), std::int64_t(0));  // less than a chunk: kept
        w.write(std::span(data).subspan(5, 20));                               // three chunks written
        QCOMPARE(fs.chunks_collection().count_documents(), std::int64_t(3));
        w.write(std::span(data).subspan(25));
        QCOMPARE(fs.files_collection().count_documents(), std::int64_t(0));
        w.close();
        QCOMPARE(w.length(), std::int64_t(30));
        QVERIFY(fs.download(w.id()) == data);
        const auto closed = expect_throw<gridfs::error>([&] { w.write(data); });
        QCOMPARE(closed.code(), gridfs::make_error_code(gridfs::errc::stream_closed));

        auto a = fs.open_upload_stream("aborted");
        a.write(data);
        QCOMPARE(fs.chunks_collection().count_documents(doc(("{\"files_id\": " + a.id().to_string() + "}").c_str())),
                 std::int64_t(3));
        a.abort();
        QCOMPARE(fs.chunks_collection().count_documents(doc(("{\"files_id\": " + a.id().to_string() + "}").c_str())),
                 std::int64_t(0));
        QCOMPARE(fs.files_collection().count_documents(), std::int64_t(1));
        expect_throw<gridfs::error>([&] { a.write(data); });

        // Bad options are refused before anything is sent.
        gridfs::upload_options zero;
        zero.chunk_size_bytes = 0;
        const auto bad = expect_throw<trellis::error>([&] { fs.upload_from_bytes("z", data, zero); });
        QCOMPARE(bad.code(), trellis::make_error_code(trellis::errc::invalid_argument));
        expect_throw<trellis::error>([&] {
            gridfs::bucket_options o;
            o.bucket_name = "";
            gridfs::bucket b(db(), o);
        });
    }

    void async_faces() {
        gridfs::bucket fs(db(), [] {
            gridfs::bucket_options o;
            o.chunk_size_bytes = 100;
            return o;
        }());
        const auto data = pattern(1234, 6);
        // use_future
        const auto id = fs.async_upload_from_bytes("async.bin", data, {}, asio::use_future).get();
        QVERIFY(fs.async_download(id, asio::use_future).get() == data);
        // a coroutine on an io_context of the test's own
        asio::io_context io;
        std::vector<std::uint8_t> by_reader, by_name;
        std::string failure;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
                auto r = co_await fs.async_open_download_stream(id, asio::use_awaitable);
                std::vector<std::uint8_t> part(77);
                while (const std::size_t n = co_await r.async_read(part, asio::use_awaitable))
                    by_reader.insert(by_reader.end(), part.begin(), part.begin() + static_cast<std::ptrdiff_t>(n));
                std::string name = "async.bin";
                gridfs::download_by_name_options newest;
                by_name = co_await fs.async_download_by_name(std::move(name), newest, asio::use_awaitable);
                auto w = fs.open_upload_stream("async-stream");
                co_await w.async_write(data, asio::use_awaitable);
                co_await w.async_close(asio::use_awaitable);
                std::string new_name = "async-renamed";
                co_await fs.async_rename(w.id(), std::move(new_name), asio::use_awaitable);
                try {
                    const gridfs::file_id absent(std::int64_t(-1));
                    co_await fs.async_delete(absent, asio::use_awaitable);
                } catch (const gridfs::file_not_found& e) {
                    failure = e.what();
                }
            },
            asio::detached);
        io.run();
        QVERIFY(by_reader == data);
        QVERIFY(by_name == data);
        QVERIFY(failure.find("no file with id -1") != std::string::npos);
        QVERIFY(fs.download_by_name("async-renamed") == data);
        // a callback
        std::promise<std::exception_ptr> done;
        fs.async_delete(id, [&](std::exception_ptr e) { done.set_value(e); });
        QVERIFY(!done.get_future().get());
        expect_throw<gridfs::file_not_found>([&] { fs.download(id); });
    }
};

QTEST_GUILESS_MAIN(GridfsTest)
#include "gridfs_test.moc"
