// The blocking calls take filters, documents and pipelines as views (collection.hpp): views of
// every origin work against trellis-sim, and the operation path does not copy what it is given.
// A large reply is read into the buffer the client kept from the last one, up to
// client_options::max_kept_reply_buffer.
#include <QtTest/QtTest>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdlib>
#include <new>
#include <vector>

#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/uri.hpp"
#include "sim_rig.hpp"
#include "fail_point.hpp"

namespace bson = trellis::bson;

// Counts the heap blocks of exactly one size (all threads): a copy of a document is one block of
// its size, and nothing else in an operation has that (odd) size by chance.
// Also counts the blocks of 512 KB and more that a thread asks for: in a blocking find on a
// connection already open, the reply's receive buffer is the only one the calling thread takes
// (the in-process sim builds its replies on threads of its own).
namespace {
std::atomic<std::size_t> watched_size{0};
std::atomic<int> watched_blocks{0};
constexpr std::size_t large_block = 512 * 1024;
thread_local bool counting_large = false;
thread_local int large_blocks = 0;
}  // namespace

void* operator new(std::size_t n) {
    if (n != 0 && n == watched_size.load(std::memory_order_relaxed)) watched_blocks.fetch_add(1, std::memory_order_relaxed);
    if (n >= large_block && counting_large) ++large_blocks;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
// Every form is replaced, so that whatever allocates (Asio uses the nothrow one) frees in kind.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return operator new(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a) {
    const auto align = static_cast<std::size_t>(a);
    if (void* p = std::aligned_alloc(align, (n + align - 1) / align * align)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

using trellis_test::doc;
std::string json(bson::document_view d) { return bson::to_json(d, bson::json_mode::canonical); }

// {_id: id, blob: <binary of n bytes>}: a document of an unusual size.
bson::document big(int id, std::size_t n) {
    std::vector<std::uint8_t> bytes(n, 0x5a);
    return bson::make_document(bson::kvp("_id", id), bson::kvp("blob", bson::binary{bson::binary_subtype::generic, bytes}));
}

// The blocks of `d.size()` bytes allocated while `f` runs.
template <class F>
int blocks_of_its_size(const bson::document& d, F&& f) {
    watched_blocks = 0;
    watched_size = d.size();
    f();
    watched_size = 0;
    return watched_blocks.load();
}

}  // namespace

class ViewArgsTest : public QObject {
    Q_OBJECT

    std::unique_ptr<trellis_test::sim_rig> rig_;
    trellis::collection coll() { return (*rig_->client)["views"]["c"]; }
    /// Inserts {_id: i, sq: i * i} for i = 1..10; the options read them in order, 3 a batch
    /// (firstBatch and three getMores).
    trellis::find_options ten_squares(trellis::collection& c) {
        std::vector<bson::document> docs;
        for (int i = 1; i <= 10; ++i) docs.push_back(bson::make_document(bson::kvp("_id", i), bson::kvp("sq", i * i)));
        c.insert_many(docs);
        trellis::find_options o;
        o.batch_size = 3;
        o.sort = doc(R"({"_id": 1})");
        return o;
    }

private slots:
    void initTestCase() { rig_ = std::make_unique<trellis_test::sim_rig>(); }
    void cleanupTestCase() { rig_.reset(); }
    void init() {
        coll().drop();
        rig_->forget();
    }

    void views_of_every_origin_work() {
        auto c = coll();
        // A view over the caller's own bytes: {_id: 1, x: 1} written out by hand.
        const std::vector<std::uint8_t> raw = {21, 0, 0, 0, 0x10, '_', 'i', 'd', 0, 1, 0, 0, 0, 0x10, 'x', 0, 1, 0, 0, 0, 0};
        const auto mine = bson::document_view::validated(raw);
        c.insert_one(mine);
        // A builder's view, a document lvalue, a temporary, an initializer list of documents.
        bson::builder b;
        b.append("_id", 2).append("x", 2);
        c.insert_one(b.view());
        const auto three = doc(R"({"_id": 3, "x": 3})");
        c.insert_one(three);
        c.insert_many({doc(R"({"_id": 4, "x": 4})"), doc(R"({"_id": 5, "x": 5})")});
        const std::vector<bson::document> more = {doc(R"({"_id": 6, "x": 6})"), doc(R"({"_id": 7, "x": 7})")};
        const auto many = c.insert_many(more);
        QCOMPARE(many.inserted_ids.size(), std::size_t{2});
        QCOMPARE(json(many.inserted_ids[1]), json(doc(R"({"_id": {"$numberInt": "7"}})")));
        QCOMPARE(c.count_documents({}), std::int64_t{7});

        // A document read from the server is a view into its reply: used as a filter as it is.
        const auto first = c.find_one(doc(R"({"_id": 1})"));
        QVERIFY(first);
        const bson::document_view as_filter = first->view();
        QCOMPARE(c.count_documents(as_filter), std::int64_t{1});

        // Updates as a document view, an array view (pipeline), an update_spec.
        const auto set = doc(R"({"$set": {"y": 1}})");
        QCOMPARE(c.update_one(doc(R"({"_id": 1})").view(), set.view()).modified_count, std::int64_t{1});
        const bson::array pipeline(doc(R"({"0": {"$set": {"z": 2}}})"));
        QCOMPARE(c.update_many(doc(R"({"x": {"$gte": 6}})"), pipeline.view()).modified_count, std::int64_t{2});
        const trellis::update_spec spec = doc(R"({"$inc": {"x": 10}})");
        QCOMPARE(c.update_one(doc(R"({"_id": 2})"), spec).modified_count, std::int64_t{1});
        QCOMPARE(c.replace_one(doc(R"({"_id": 3})"), doc(R"({"x": 33})").view()).modified_count, std::int64_t{1});
        const auto after = c.find_one_and_update(doc(R"({"_id": 4})"), set, [] {
            trellis::find_one_and_update_options o;
            o.return_document = trellis::return_document::after;
            return o;
        }());
        QVERIFY(after);
        QCOMPARE((*after)["y"].get_int32(), 1);
        QVERIFY(c.find_one_and_replace(doc(R"({"_id": 5})"), doc(R"({"x": 55})")));
        QVERIFY(c.find_one_and_delete(doc(R"({"_id": 5})")));

        // Reads and commands.
        QCOMPARE(json(*c.find_one(doc(R"({"_id": 2})"))), json(doc(R"({"_id": 2, "x": 12})")));
        QCOMPARE(json(*c.find_one(doc(R"({"_id": 3})"))), json(doc(R"({"_id": 3, "x": 33})")));
        auto cur = c.find(doc(R"({"z": 2})"));
        int z = 0;
        while (cur.next()) ++z;
        QCOMPARE(z, 2);
        QCOMPARE(c.distinct("x", doc(R"({"y": {"$exists": true}})")).size(), std::size_t{2});
        const bson::array count_stage(doc(R"({"0": {"$count": "n"}})"));
        auto agg = c.aggregate(count_stage.view());
        const auto n = agg.next();
        QVERIFY(n);
        QCOMPARE((*n)["n"].get_int32(), 6);
        const auto ping = doc(R"({"ping": 1})");
        QCOMPARE((*rig_->client)["views"].run_command(ping.view())["ok"].as_double(), 1.0);
        QCOMPARE(rig_->client->run_command("admin", ping)["ok"].as_double(), 1.0);
        QCOMPARE(c.delete_many(doc(R"({"x": {"$gte": 0}})").view()).deleted_count, std::int64_t{6});

        // What went on the wire is what the views held.
        const auto inserts = rig_->sent("insert");
        QVERIFY(!inserts.empty());
        bool saw_mine = false;
        for (const auto& cmd : rig_->sent("insert"))
            if (auto docs = cmd.find("documents"))
                for (const auto& d : docs->get_array())
                    if (json(d.get_document()) == json(mine)) saw_mine = true;
        QVERIFY2(saw_mine, "the hand-written document did not reach the server as it was");
    }

    void large_replies_reuse_the_kept_buffer() {
        // 16 documents of 64 KB: one reply of ~1 MB to a find.
        auto c = coll();
        std::vector<bson::document> docs;
        for (int i = 0; i < 16; ++i) docs.push_back(big(i, 64 * 1024));
        c.insert_many(docs);
        // The large blocks the second of two whole finds allocates, with the client's options.
        const auto second_find = [this](std::optional<std::size_t> kept) {
            auto options = trellis::parse_uri(rig_->deployment->uri()).options;
            if (kept) options.max_kept_reply_buffer = *kept;
            trellis::client client(options);
            auto items = client["views"]["c"];
            const auto find_all = [&] {
                std::size_t n = 0;
                auto cur = items.find({});
                while (cur.next_view()) ++n;
                QCOMPARE(n, std::size_t{16});
            };
            find_all();  // its buffer goes back to the client when the cursor goes
            large_blocks = 0;
            counting_large = true;
            find_all();
            counting_large = false;
            return large_blocks;
        };
        QCOMPARE(second_find(std::nullopt), 0);  // the default keeps up to 32 MiB
        QVERIFY(second_find(512 * 1024) >= 1);   // a buffer larger than the limit is not kept
        QVERIFY(second_find(0) >= 1);            // none is
    }

    void a_cursor_hands_out_views() {
        auto c = coll();
        trellis::find_options o = ten_squares(c);
        auto cur = c.find({}, o);
        std::vector<int> ids;
        std::optional<bson::document_view> previous;
        for (;;) {
            // The last view is valid until the next call (and only until then: a getMore replaces
            // the batch it points into, which ASan would catch if it were read after).
            if (previous) QCOMPARE((*previous)["sq"].get_int32(), ids.back() * ids.back());
            const auto v = cur.next_view();
            if (!v) break;
            ids.push_back((*v)["_id"].get_int32());
            previous = v;
        }
        QCOMPARE(ids, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
        QCOMPARE(rig_->sent("getMore").size(), std::size_t{3});
        QVERIFY(!cur.alive());
        QVERIFY(!cur.next_view());

        // Mixed with next(), and within a limit.
        o.limit = 5;
        auto mixed = c.find({}, o);
        QCOMPARE((*mixed.next())["_id"].get_int32(), 1);
        QCOMPARE((*mixed.next_view())["_id"].get_int32(), 2);
        QCOMPARE((*mixed.next_view())["_id"].get_int32(), 3);
        QCOMPARE((*mixed.next())["_id"].get_int32(), 4);
        QCOMPARE((*mixed.next_view())["_id"].get_int32(), 5);
        QVERIFY(!mixed.next_view());
        QVERIFY(!mixed.next());

        // No copy of a document: next() makes one block of its size, next_view() none.
        c.drop();
        const auto d = big(1, 1'234'566);
        c.insert_one(d);
        const auto by_copy = blocks_of_its_size(d, [&] {
            auto k = c.find();
            QVERIFY(k.next());
        });
        const auto by_view = blocks_of_its_size(d, [&] {
            auto k = c.find();
            const auto v = k.next_view();
            QVERIFY(v && v->size() == d.size());
        });
        QCOMPARE(by_view, by_copy - 1);
    }

    void a_cursor_hands_out_views_asynchronously() {
        using boost::asio::use_future;
        auto c = coll();
        trellis::find_options o = ten_squares(c);
        const std::size_t getmores_before = rig_->sent("getMore").size();
        {
            auto cur = c.find({}, o);
            std::vector<int> ids;
            while (const auto v = cur.async_next_view(use_future).get()) {
                QCOMPARE((*v)["sq"].get_int32(), (*v)["_id"].get_int32() * (*v)["_id"].get_int32());
                ids.push_back((*v)["_id"].get_int32());
            }
            QCOMPARE(ids, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
            QCOMPARE(rig_->sent("getMore").size() - getmores_before, std::size_t{3});
            QVERIFY(!cur.async_next_view(use_future).get());
        }
        {
            // In a coroutine on the caller's own io_context, mixed with async_next, within a limit.
            o.limit = 5;
            auto cur = c.find({}, o);
            std::vector<int> ids;
            boost::asio::io_context io{1};
            boost::asio::co_spawn(
                io,
                [&]() -> boost::asio::awaitable<void> {
                    using boost::asio::use_awaitable;
                    ids.push_back((*co_await cur.async_next(use_awaitable))["_id"].get_int32());
                    for (int k = 0; k < 2; ++k) ids.push_back((*co_await cur.async_next_view(use_awaitable))["_id"].get_int32());
                    ids.push_back((*co_await cur.async_next(use_awaitable))["_id"].get_int32());
                    while (const auto v = co_await cur.async_next_view(use_awaitable)) ids.push_back((*v)["_id"].get_int32());
                },
                boost::asio::detached);
            io.run();
            QCOMPARE(ids, (std::vector<int>{1, 2, 3, 4, 5}));
        }
        // No copy of a document: async_next makes one block of its size, async_next_view none.
        c.drop();
        const auto d = big(1, 1'234'566);
        c.insert_one(d);
        const auto by_copy = blocks_of_its_size(d, [&] {
            auto k = c.find();
            QVERIFY(k.async_next(use_future).get());
        });
        const auto by_view = blocks_of_its_size(d, [&] {
            auto k = c.find();
            const auto v = k.async_next_view(use_future).get();
            QVERIFY(v && v->size() == d.size());
        });
        QCOMPARE(by_view, by_copy - 1);
    }

    void the_blocking_calls_do_not_copy_what_they_are_given() {
        auto c = coll();
        const auto d = big(1, 1'234'566);
        QCOMPARE(d.size() % 2, std::size_t{1});  // odd: no buffer grows to it
        // The async face owns its arguments: an lvalue is copied into the call (the counter works).
        const int async_blocks = blocks_of_its_size(d, [&] { c.async_insert_one(d, boost::asio::use_future).get(); });
        c.delete_many({});
        const int async_again = blocks_of_its_size(d, [&] { c.async_insert_one(d, boost::asio::use_future).get(); });
        c.delete_many({});
        const int blocking_blocks = blocks_of_its_size(d, [&] { c.insert_one(d); });
        // The sim keeps a copy of what it stores, the same in both; the blocking call adds none.
        QCOMPARE(async_again, async_blocks);
        QCOMPARE(blocking_blocks, async_blocks - 1);

        // A filter of that size: find_one, count_documents, update_one, delete_one.
        const auto filter = bson::make_document(bson::kvp("_id", 1), bson::kvp("blob", d["blob"].get_binary()));
        const auto probe = [&](auto&& call) { return blocks_of_its_size(filter, call); };
        // Each against its async twin, which copies the lvalue once.
        using boost::asio::use_future;
        QCOMPARE(probe([&] { QVERIFY(c.find_one(filter)); }),
                 probe([&] { QVERIFY(c.async_find_one(filter, use_future).get()); }) - 1);
        QCOMPARE(probe([&] { QCOMPARE(c.count_documents(filter), std::int64_t{1}); }),
                 probe([&] { QCOMPARE(c.async_count_documents(filter, {}, use_future).get(), std::int64_t{1}); }) - 1);
        const auto set = doc(R"({"$set": {"k": 1}})");
        c.update_one(filter, set);  // from here on the server changes nothing: both probes do the same
        const int u_async = probe([&] { QCOMPARE(c.async_update_one(filter, set, {}, use_future).get().matched_count, std::int64_t{1}); });
        const int u_blocking = probe([&] { QCOMPARE(c.update_one(filter, set).matched_count, std::int64_t{1}); });
        QCOMPARE(u_blocking, u_async - 1);
        const int async_delete = probe([&] { QCOMPARE(c.async_delete_one(filter, {}, use_future).get().deleted_count, std::int64_t{1}); });
        c.insert_one(d);
        QCOMPARE(probe([&] { QCOMPARE(c.delete_one(filter).deleted_count, std::int64_t{1}); }), async_delete - 1);
    }

    // bulk_write's models, create_index's keys and list_collection_names' filter: read in place too.
    void models_and_admin_arguments_are_not_copied() {
        using boost::asio::use_future;
        auto c = coll();
        const auto d = big(1, 1'234'566);
        // A filter matching d, of another odd size.
        const auto filter = bson::make_document(bson::kvp("_id", 1), bson::kvp("blob", d["blob"].get_binary()),
                                                bson::kvp("fff", doc(R"({"$exists": false})")));
        QVERIFY(filter.size() % 2 == 1 && filter.size() != d.size());
        trellis::update_one_model set_k;
        set_k.filter = filter;
        set_k.update = doc(R"({"$set": {"k": 1}})");
        trellis::delete_one_model remove;
        remove.filter = filter;
        const std::vector<trellis::write_model> models = {trellis::insert_one_model{d}, set_k, remove};
        const auto async_round = [&] {
            const auto r = c.async_bulk_write(models, {}, use_future).get();
            QCOMPARE(r.inserted_count, std::int64_t{1});
            QCOMPARE(r.modified_count, std::int64_t{1});
            QCOMPARE(r.deleted_count, std::int64_t{1});
        };
        const auto blocking_round = [&] {
            const auto r = c.bulk_write(models);
            QCOMPARE(r.inserted_count, std::int64_t{1});
            QCOMPARE(r.modified_count, std::int64_t{1});
            QCOMPARE(r.deleted_count, std::int64_t{1});
        };
        // The async face copies the models (d once, the filter twice); the blocking one not at all.
        QCOMPARE(blocks_of_its_size(d, blocking_round), blocks_of_its_size(d, async_round) - 1);
        QCOMPARE(blocks_of_its_size(filter, blocking_round), blocks_of_its_size(filter, async_round) - 2);

        // An index on a key pattern of an unusual size (a long field name), and a filter on names.
        const auto keys = bson::make_document(bson::kvp(std::string(332, 'k'), 1));
        QCOMPARE(keys.size() % 2, std::size_t{1});
        const int index_blocks = blocks_of_its_size(keys, [&] { QCOMPARE(c.create_index(keys), std::string(332, 'k') + "_1"); });
        c.drop_index(std::string(332, 'k') + "_1");
        const int async_index = blocks_of_its_size(keys, [&] {
            std::vector<trellis::index_model> one;
            one.push_back(trellis::index_model{keys, {}});  // the one copy the async face needs
            QCOMPARE(c.async_create_indexes(std::move(one), use_future).get().front(), std::string(332, 'k') + "_1");
        });
        QCOMPARE(index_blocks, async_index - 1);
        const auto names = bson::make_document(bson::kvp("name", std::string(333, 'n')));
        QCOMPARE(names.size() % 2, std::size_t{1});
        auto db = (*rig_->client)["views"];
        QCOMPARE(blocks_of_its_size(names, [&] { QVERIFY(db.list_collection_names(names).empty()); }),
                 blocks_of_its_size(names, [&] { QVERIFY(db.async_list_collection_names(names, use_future).get().empty()); }) - 1);
    }
};

QTEST_GUILESS_MAIN(ViewArgsTest)
#include "view_args_test.moc"
