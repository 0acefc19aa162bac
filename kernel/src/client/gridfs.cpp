// GridFS buckets over the collection API: every step is an ordinary find, insert, delete or
// update on "<bucket>.files" and "<bucket>.chunks", run on the database's client strand.
#include "trellis/gridfs.hpp"

#include <algorithm>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "client/core.hpp"
#include "client/wait.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/write_error.hpp"

namespace trellis::gridfs {

namespace asio = boost::asio;

// ---------------------------------------------------------------- errors and ids

namespace {
class category : public std::error_category {
public:
    const char* name() const noexcept override { return "trellis.gridfs"; }
    std::string message(int c) const override {
        switch (static_cast<errc>(c)) {
            case errc::file_not_found: return "file not found";
            case errc::revision_not_found: return "revision not found";
            case errc::chunk_is_missing: return "chunk is missing";
            case errc::chunk_is_wrong_size: return "chunk is the wrong size";
            case errc::extra_chunk: return "extra chunk";
            case errc::stream_closed: return "upload stream closed";
        }
        return "unknown GridFS error";
    }
};
}  // namespace

const std::error_category& error_category() noexcept {
    static const category c;
    return c;
}

file_id::file_id() : doc_(bson::make_document(bson::kvp("_id", bson::null_t{}))) {}
file_id::file_id(bson::oid id) : doc_(bson::make_document(bson::kvp("_id", id))) {}
file_id::file_id(std::string_view id) : doc_(bson::make_document(bson::kvp("_id", id))) {}
file_id::file_id(std::int64_t id) : doc_(bson::make_document(bson::kvp("_id", id))) {}
file_id::file_id(const bson::element& value) {
    bson::builder b;
    b.append("_id", value);
    doc_ = b.extract();
}
std::string file_id::to_string() const {
    std::string out;
    bson::to_json(value(), out);
    return out;
}

// ---------------------------------------------------------------- state

namespace detail {

// CSOT: one deadline for a whole upload or download, from open to close (the spec's GridFS
// section); each of its commands gets what remains as its timeoutMS. None without timeoutMS.
struct time_budget {
    std::optional<std::chrono::steady_clock::time_point> deadline;
    std::chrono::milliseconds timeout{0};
};

struct bucket_state {
    std::shared_ptr<trellis::detail::client_core> core;
    bucket_options options;
    collection files, chunks;
    bool indexes_checked = false;  // touched on the client's strand only
    std::optional<std::chrono::milliseconds> timeout;  // the database handle's timeoutMS (unset: the client's)
    std::string where() const { return "GridFS bucket \"" + options.bucket_name + "\""; }
    // A budget starting now.
    time_budget budget() const {
        time_budget b;
        b.timeout = core->effective_timeout(timeout);
        if (b.timeout.count() > 0) b.deadline = std::chrono::steady_clock::now() + b.timeout;
        return b;
    }
    // The timeoutMS of `b`'s next command (unset without one: the handle's applies); the
    // timeout error when none remains.
    std::optional<std::chrono::milliseconds> left(const time_budget& b, std::string_view what) const {
        if (!b.deadline) return std::nullopt;
        const auto rest = std::chrono::duration_cast<std::chrono::milliseconds>(*b.deadline - std::chrono::steady_clock::now());
        if (rest.count() <= 0)
            throw operation_timeout(where() + ": " + std::string(what) + ": the timeoutMS (" + std::to_string(b.timeout.count()) +
                                    " ms) of the whole upload or download expired");
        return rest;
    }
};

struct upload_state {
    std::shared_ptr<bucket_state> bucket;
    file_id id;
    std::string filename;
    std::int32_t chunk_size = 0;
    std::optional<bson::document> metadata;
    std::vector<std::uint8_t> buffer;  // less than one chunk, not yet written
    std::int32_t next_n = 0;
    std::int64_t length = 0;
    bool done = false;  // closed or aborted
    time_budget budget;  // from open_upload_stream (or the upload call) to close or abort
};

struct download_state {
    std::shared_ptr<bucket_state> bucket;
    bson::document files_doc;
    file_id id;  // the files document's _id
    std::int64_t length = 0;
    std::int64_t chunk_size = 0;
    std::int64_t chunks = 0;  // how many length and chunk_size give
    std::int64_t start = 0, end = 0;  // the bytes wanted: [start, end)
    std::int64_t end_n = 0;           // the chunks wanted: [start / chunk_size, end_n)
    std::int64_t next_n = 0;
    std::optional<cursor> chunk_cursor;
    std::vector<std::uint8_t> current;  // the chunk being read
    std::size_t pos = 0;
    bool finished = false;  // every chunk read and checked, or closed
    time_budget budget;     // from the files document's find to the last chunk
};

}  // namespace detail

namespace {

using state_ptr = std::shared_ptr<detail::bucket_state>;

bson::document eq_filter(std::string_view field, const file_id& id) {
    bson::builder b;
    b.open_document(field).append("$eq", id.value()).close_document();
    return b.extract();
}

// Index keys compare by name and order, numbers by value (the shell makes doubles).
bool same_keys(bson::document_view a, bson::document_view b) {
    auto i = a.begin(), j = b.begin();
    for (; i != a.end() && j != b.end(); ++i, ++j) {
        const bson::element x = *i, y = *j;
        if (x.key() != y.key()) return false;
        if (x.is_number() && y.is_number()) {
            if (x.as_double() != y.as_double()) return false;
        } else if (x.type() != y.type() || !std::ranges::equal(x.raw_value(), y.raw_value())) {
            return false;
        }
    }
    return i == a.end() && j == b.end();
}

asio::awaitable<bool> has_index(collection coll, bson::document keys, std::optional<std::chrono::milliseconds> timeout) {
    std::optional<cursor> c;
    try {
        list_indexes_options o;
        o.timeout = timeout;
        cursor listed = co_await coll.async_list_indexes(std::move(o), asio::use_awaitable);
        c.emplace(std::move(listed));
    } catch (const operation_failure& e) {
        if (e.server_code() == 26) co_return false;  // NamespaceNotFound: no collection, no index
        throw;
    }
    while (auto d = co_await c->async_next(asio::use_awaitable))
        if (auto k = d->find("key"); k && k->type() == bson::type::document && same_keys(k->get_document(), keys.view()))
            co_return true;
    co_return false;
}

asio::awaitable<void> ensure_index(const detail::bucket_state& s, const detail::time_budget& b, collection coll,
                                   bson::document keys, bool unique) {
    const bool exists = co_await has_index(coll, keys, s.left(b, "listIndexes"));
    if (exists) co_return;
    std::vector<index_model> models;
    models.push_back(index_model{std::move(keys), unique ? bson::make_document(bson::kvp("unique", true)) : bson::document()});
    create_indexes_options o;
    o.timeout = s.left(b, "createIndexes");
    co_await coll.async_create_indexes(std::move(models), std::move(o), asio::use_awaitable);
}

// The spec: before a bucket's first write, when the files collection is empty (asked of the
// primary), make the indexes that do not exist yet.
asio::awaitable<void> ensure_indexes(state_ptr s, const detail::time_budget& b) {
    if (s->indexes_checked) co_return;
    find_options probe;
    probe.projection = bson::make_document(bson::kvp("_id", 1));
    probe.read_preference = read_preference{};
    probe.timeout = s->left(b, "the index check's find");
    bson::document all;
    const auto any = co_await s->files.async_find_one(std::move(all), std::move(probe), asio::use_awaitable);
    if (!any) {
        bson::document files_keys = bson::make_document(bson::kvp("filename", 1), bson::kvp("uploadDate", 1));
        co_await ensure_index(*s, b, s->files, std::move(files_keys), false);
        bson::document chunks_keys = bson::make_document(bson::kvp("files_id", 1), bson::kvp("n", 1));
        co_await ensure_index(*s, b, s->chunks, std::move(chunks_keys), true);
    }
    s->indexes_checked = true;
}

[[noreturn]] void throw_closed(const detail::upload_state& u) {
    throw error(errc::stream_closed, u.id, u.filename,
                u.bucket->where() + ": the upload stream of \"" + u.filename + "\" (id " + u.id.to_string() +
                    ") is closed or aborted");
}

asio::awaitable<void> insert_chunk(detail::upload_state& u, std::span<const std::uint8_t> data) {
    co_await ensure_indexes(u.bucket, u.budget);
    bson::builder b;
    b.append("_id", bson::oid::generate()).append("files_id", u.id.value()).append("n", u.next_n);
    b.append("data", bson::binary{bson::binary_subtype::generic, data});
    bson::document chunk = b.extract();
    insert_one_options o;
    o.timeout = u.bucket->left(u.budget, "inserting chunk " + std::to_string(u.next_n) + " of \"" + u.filename + "\"");
    co_await u.bucket->chunks.async_insert_one(std::move(chunk), std::move(o), asio::use_awaitable);
    ++u.next_n;
}

asio::awaitable<void> write_bytes(std::shared_ptr<detail::upload_state> u, std::span<const std::uint8_t> bytes) {
    if (u->done) throw_closed(*u);
    const auto size = static_cast<std::size_t>(u->chunk_size);
    std::size_t off = 0;
    while (off < bytes.size()) {
        if (u->buffer.empty() && bytes.size() - off >= size) {  // a whole chunk straight from the caller's bytes
            co_await insert_chunk(*u, bytes.subspan(off, size));
            off += size;
            u->length += static_cast<std::int64_t>(size);
            continue;
        }
        const std::size_t take = std::min(size - u->buffer.size(), bytes.size() - off);
        u->buffer.insert(u->buffer.end(), bytes.begin() + static_cast<std::ptrdiff_t>(off),
                         bytes.begin() + static_cast<std::ptrdiff_t>(off + take));
        off += take;
        u->length += static_cast<std::int64_t>(take);
        if (u->buffer.size() == size) {
            co_await insert_chunk(*u, u->buffer);
            u->buffer.clear();
        }
    }
}

asio::awaitable<void> finish_upload(std::shared_ptr<detail::upload_state> u) {
    if (u->done) throw_closed(*u);
    if (!u->buffer.empty()) {
        co_await insert_chunk(*u, u->buffer);
        u->buffer.clear();
    }
    co_await ensure_indexes(u->bucket, u->budget);  // a file without chunks still writes its files document
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
    bson::builder b;
    b.append("_id", u->id.value()).append("length", u->length).append("chunkSize", u->chunk_size);
    b.append("uploadDate", bson::date_time(now.count())).append("filename", u->filename);
    if (u->metadata) b.append("metadata", u->metadata->view());
    bson::document files_doc = b.extract();
    insert_one_options o;
    o.timeout = u->bucket->left(u->budget, "inserting the files document of \"" + u->filename + "\"");
    co_await u->bucket->files.async_insert_one(std::move(files_doc), std::move(o), asio::use_awaitable);
    u->done = true;
}

asio::awaitable<void> abort_upload(std::shared_ptr<detail::upload_state> u) {
    if (u->done) throw_closed(*u);
    u->done = true;
    u->buffer.clear();
    bson::document filter = eq_filter("files_id", u->id);
    delete_options o;
    o.timeout = u->bucket->left(u->budget, "deleting the chunks of the aborted upload \"" + u->filename + "\"");
    co_await u->bucket->chunks.async_delete_many(std::move(filter), std::move(o), asio::use_awaitable);
}

std::shared_ptr<detail::upload_state> new_upload(state_ptr s, std::string filename, upload_options o) {
    const std::int32_t size = o.chunk_size_bytes.value_or(s->options.chunk_size_bytes);
    if (size < 1)
        throw trellis::error(trellis::errc::invalid_argument, s->where() + ": upload of \"" + filename +
                                                                  "\": chunk_size_bytes must be positive, not " +
                                                                  std::to_string(size));
    auto budget = s->budget();
    auto u = std::make_shared<detail::upload_state>(detail::upload_state{
        std::move(s), o.id ? std::move(*o.id) : file_id(bson::oid::generate()), std::move(filename), size,
        std::move(o.metadata), {}, 0, 0, false, budget});
    return u;
}

// ---- download

std::int64_t number_field(const detail::download_state& d, std::string_view key) {
    const auto e = d.files_doc.find(key);
    if (!e || !e->is_number())
        throw trellis::error(trellis::errc::invalid_argument, d.bucket->where() + ": the files document of id " +
                                                                  d.id.to_string() + " has no numeric " + std::string(key));
    return e->as_int64();
}

[[noreturn]] void throw_corrupt(const detail::download_state& d, errc code, std::int64_t n, std::int64_t expected,
                                std::int64_t actual, const std::string& what) {
    throw corrupt_file(code, d.id, n, expected, actual, d.bucket->where() + ", file id " + d.id.to_string() + ": " + what);
}

asio::awaitable<std::shared_ptr<detail::download_state>> open_download(state_ptr s, bson::document files_doc, byte_range range,
                                                                       detail::time_budget budget) {
    auto d = std::make_shared<detail::download_state>();
    d->budget = budget;
    d->bucket = std::move(s);
    d->files_doc = std::move(files_doc);
    d->id = file_id(d->files_doc["_id"]);
    d->length = number_field(*d, "length");
    if (d->length < 0)
        throw trellis::error(trellis::errc::invalid_argument, d->bucket->where() + ": the files document of id " +
                                                                  d->id.to_string() + " has a negative length");
    d->start = range.start;
    d->end = range.end.value_or(d->length);
    if (d->start < 0 || d->start > d->end || d->end > d->length)
        throw trellis::error(trellis::errc::invalid_argument,
                             d->bucket->where() + ", file id " + d->id.to_string() + ": the byte range [" +
                                 std::to_string(d->start) + ", " + std::to_string(d->end) + ") is not within the file's " +
                                 std::to_string(d->length) + " byte(s) (0 <= start <= end <= length)");
    if (d->start == d->end) {  // the spec: no query on the chunks for an empty file (nor for no bytes)
        d->finished = true;
        co_return d;
    }
    d->chunk_size = number_field(*d, "chunkSize");
    if (d->chunk_size < 1)
        throw trellis::error(trellis::errc::invalid_argument, d->bucket->where() + ": the files document of id " +
                                                                  d->id.to_string() + " has chunkSize " +
                                                                  std::to_string(d->chunk_size));
    d->chunks = (d->length + d->chunk_size - 1) / d->chunk_size;
    d->next_n = d->start / d->chunk_size;
    d->end_n = (d->end + d->chunk_size - 1) / d->chunk_size;
    bson::builder filter;
    filter.open_document("files_id").append("$eq", d->id.value()).close_document();
    if (d->next_n > 0) filter.open_document("n").append("$gte", d->next_n).close_document();
    find_options by_n;
    by_n.sort = bson::make_document(bson::kvp("n", 1));
    // A part that stops before the last chunk asks for no more; one reaching the end reads on,
    // so that an extra chunk is still found.
    if (d->end_n < d->chunks) by_n.limit = d->end_n - d->next_n;
    by_n.timeout = d->bucket->left(d->budget, "the chunks' find");  // its getMores share what remains
    bson::document wanted = filter.extract();
    cursor chunks = co_await d->bucket->chunks.async_find(std::move(wanted), std::move(by_n), asio::use_awaitable);
    d->chunk_cursor.emplace(std::move(chunks));
    co_return d;
}

// The next chunk into d.current, checked; false at the end (after checking nothing follows).
asio::awaitable<bool> next_chunk(detail::download_state& d) {
    if (d.finished) co_return false;
    if (d.end < d.length && d.next_n == d.end_n) {  // a part: its last chunk was read
        d.finished = true;
        d.chunk_cursor.reset();
        co_return false;
    }
    auto doc = co_await d.chunk_cursor->async_next(asio::use_awaitable);
    if (!doc) {
        if (d.next_n < d.end_n)
            throw_corrupt(d, errc::chunk_is_missing, d.next_n, 0, 0,
                          "chunk " + std::to_string(d.next_n) + " of " + std::to_string(d.chunks) + " is missing");
        d.finished = true;
        d.chunk_cursor.reset();
        co_return false;
    }
    const auto ne = doc->find("n");
    if (!ne || !ne->is_number())
        throw_corrupt(d, errc::chunk_is_missing, d.next_n, 0, 0,
                      "a chunk without a numeric n came where chunk " + std::to_string(d.next_n) + " was expected");
    const std::int64_t n = ne->as_int64();
    if (d.next_n >= d.chunks || n < d.next_n)
        throw_corrupt(d, errc::extra_chunk, n, 0, 0,
                      "extra chunk n " + std::to_string(n) + " (the file has " + std::to_string(d.chunks) + " chunk(s), length " +
                          std::to_string(d.length) + ", chunkSize " + std::to_string(d.chunk_size) + ")");
    if (n > d.next_n)
        throw_corrupt(d, errc::chunk_is_missing, d.next_n, 0, 0,
                      "chunk " + std::to_string(d.next_n) + " is missing (chunk " + std::to_string(n) + " came next)");
    const std::int64_t expected = n == d.chunks - 1 ? d.length - n * d.chunk_size : d.chunk_size;
    const auto data = doc->find("data");
    if (!data || data->type() != bson::type::binary)
        throw_corrupt(d, errc::chunk_is_wrong_size, n, expected, -1, "chunk " + std::to_string(n) + " has no binary data");
    const auto bytes = data->get_binary().bytes;
    if (static_cast<std::int64_t>(bytes.size()) != expected)
        throw_corrupt(d, errc::chunk_is_wrong_size, n, expected, static_cast<std::int64_t>(bytes.size()),
                      "chunk " + std::to_string(n) + " holds " + std::to_string(bytes.size()) + " byte(s), expected " +
                          std::to_string(expected));
    // Of the range's first and last chunks, only the bytes in the range.
    const std::int64_t from = std::max<std::int64_t>(d.start - n * d.chunk_size, 0);
    const std::int64_t to = std::min<std::int64_t>(d.end - n * d.chunk_size, expected);
    d.current.assign(bytes.begin() + from, bytes.begin() + to);
    d.pos = 0;
    ++d.next_n;
    co_return true;
}

asio::awaitable<bson::document> files_doc_by_id(state_ptr s, const file_id& id, const detail::time_budget& b) {
    bson::document filter = eq_filter("_id", id);
    find_options o;
    o.timeout = s->left(b, "the files document's find");
    auto doc = co_await s->files.async_find_one(std::move(filter), std::move(o), asio::use_awaitable);
    if (!doc) throw file_not_found(errc::file_not_found, id, {}, s->where() + ": no file with id " + id.to_string());
    co_return std::move(*doc);
}

asio::awaitable<bson::document> files_doc_by_name(state_ptr s, std::string filename, download_by_name_options o,
                                                  const detail::time_budget& b) {
    find_options pick;
    pick.timeout = s->left(b, "the files document's find");
    pick.sort = bson::make_document(bson::kvp("uploadDate", o.revision >= 0 ? 1 : -1));
    pick.skip = o.revision >= 0 ? std::int64_t{o.revision} : -std::int64_t{o.revision} - 1;
    bson::document filter = bson::make_document(bson::kvp("filename", filename));
    auto doc = co_await s->files.async_find_one(filter, std::move(pick), asio::use_awaitable);
    if (doc) co_return std::move(*doc);
    count_options all;
    all.timeout = s->left(b, "counting the revisions");
    const std::int64_t revisions = co_await s->files.async_count_documents(std::move(filter), std::move(all), asio::use_awaitable);
    if (revisions == 0)
        throw file_not_found(errc::file_not_found, std::nullopt, filename, s->where() + ": no file named \"" + filename + "\"");
    throw revision_not_found(filename, o.revision, revisions,
                             s->where() + ": \"" + filename + "\" has " + std::to_string(revisions) +
                                 " revision(s), not revision " + std::to_string(o.revision));
}

asio::awaitable<std::vector<std::uint8_t>> all_bytes(std::shared_ptr<detail::download_state> d) {
    std::vector<std::uint8_t> out;
    out.reserve(static_cast<std::size_t>(d->end - d->start));
    for (;;) {  // co_await as a statement: GCC 12 miscompiled it in a loop condition here
        const bool more = co_await next_chunk(*d);
        if (!more) break;
        out.insert(out.end(), d->current.begin(), d->current.end());
    }
    co_return out;
}

asio::awaitable<void> to_stream(std::shared_ptr<detail::download_state> d, std::ostream* out) {
    for (;;) {
        const bool more = co_await next_chunk(*d);
        if (!more) break;
        out->write(reinterpret_cast<const char*>(d->current.data()), static_cast<std::streamsize>(d->current.size()));
        if (!*out)
            throw trellis::error(trellis::errc::invalid_argument, d->bucket->where() + ": writing file id " +
                                                                      d->id.to_string() + " to the destination stream failed");
    }
}

}  // namespace

// ---------------------------------------------------------------- upload_stream

upload_stream::~upload_stream() = default;
const file_id& upload_stream::id() const noexcept { return state_->id; }
std::int64_t upload_stream::length() const noexcept { return state_->length; }
asio::any_io_executor upload_stream::executor() const {
    state_->bucket->core->check_usable();
    return state_->bucket->core->strand();
}
asio::awaitable<void> upload_stream::write_impl(std::shared_ptr<detail::upload_state> s, std::vector<std::uint8_t> bytes) {
    co_await write_bytes(s, bytes);
}
asio::awaitable<void> upload_stream::close_impl(std::shared_ptr<detail::upload_state> s) { co_await finish_upload(s); }
asio::awaitable<void> upload_stream::abort_impl(std::shared_ptr<detail::upload_state> s) { co_await abort_upload(s); }
void upload_stream::write(std::span<const std::uint8_t> bytes) {
    trellis::detail::wait(state_->bucket->core, write_bytes(state_, bytes));
}
void upload_stream::close() { trellis::detail::wait(state_->bucket->core, finish_upload(state_)); }
void upload_stream::abort() { trellis::detail::wait(state_->bucket->core, abort_upload(state_)); }

// ---------------------------------------------------------------- download_stream

download_stream::~download_stream() = default;
const bson::document& download_stream::files_document() const noexcept { return state_->files_doc; }
const file_id& download_stream::id() const noexcept { return state_->id; }
std::int64_t download_stream::length() const noexcept { return state_->length; }
asio::any_io_executor download_stream::executor() const {
    state_->bucket->core->check_usable();
    return state_->bucket->core->strand();
}
asio::awaitable<std::size_t> download_stream::read_impl(std::shared_ptr<detail::download_state> s, std::span<std::uint8_t> out) {
    std::size_t copied = 0;
    while (copied < out.size()) {
        if (s->pos == s->current.size()) {
            const bool more = co_await next_chunk(*s);
            if (!more) break;
        }
        const std::size_t n = std::min(out.size() - copied, s->current.size() - s->pos);
        std::copy_n(s->current.begin() + static_cast<std::ptrdiff_t>(s->pos), n, out.begin() + static_cast<std::ptrdiff_t>(copied));
        s->pos += n;
        copied += n;
    }
    co_return copied;
}
std::size_t download_stream::read(std::span<std::uint8_t> out) {
    return trellis::detail::wait(state_->bucket->core, read_impl(state_, out));
}
void download_stream::close() noexcept {
    state_->finished = true;
    state_->chunk_cursor.reset();  // the cursor closes itself (its manager sends killCursors)
    state_->current.clear();
    state_->pos = 0;
}

// ---------------------------------------------------------------- bucket

bucket::bucket(const database& db, bucket_options options) {
    if (options.bucket_name.empty()) throw trellis::error(trellis::errc::invalid_argument, "GridFS bucket: bucket_name is empty");
    if (options.chunk_size_bytes < 1)
        throw trellis::error(trellis::errc::invalid_argument, "GridFS bucket \"" + options.bucket_name +
                                                                  "\": chunk_size_bytes must be positive, not " +
                                                                  std::to_string(options.chunk_size_bytes));
    handle_options h;
    h.read_preference = options.read_preference;
    h.read_concern = options.read_concern;
    h.write_concern = options.write_concern;
    const database d = db.with_options(h);
    collection files = d.get_collection(options.bucket_name + ".files");
    collection chunks = d.get_collection(options.bucket_name + ".chunks");
    state_ = std::make_shared<detail::bucket_state>(
        detail::bucket_state{db.t_.core, std::move(options), std::move(files), std::move(chunks), false, db.t_.settings.timeout});
}

const bucket_options& bucket::options() const noexcept { return state_->options; }
collection bucket::files_collection() const { return state_->files; }
collection bucket::chunks_collection() const { return state_->chunks; }

asio::any_io_executor bucket::executor() const {
    state_->core->check_usable();
    return state_->core->strand();
}

asio::awaitable<file_id> bucket::upload_impl(state_ptr s, std::string filename, std::istream* stream,
                                             std::span<const std::uint8_t> bytes, upload_options o) {
    auto u = new_upload(std::move(s), std::move(filename), std::move(o));
    if (stream) {
        std::vector<std::uint8_t> block(static_cast<std::size_t>(u->chunk_size));
        while (*stream) {
            stream->read(reinterpret_cast<char*>(block.data()), static_cast<std::streamsize>(block.size()));
            const auto got = static_cast<std::size_t>(stream->gcount());
            if (stream->bad()) break;
            const std::span<const std::uint8_t> part(block.data(), got);
            if (got > 0) co_await write_bytes(u, part);
        }
        if (stream->bad()) {
            const std::int64_t read = u->length;
            co_await abort_upload(u);
            throw trellis::error(trellis::errc::invalid_argument, u->bucket->where() + ": reading the source of \"" +
                                                                      u->filename + "\" failed after " +
                                                                      std::to_string(read) + " byte(s); upload aborted");
        }
    } else {
        co_await write_bytes(u, bytes);
    }
    co_await finish_upload(u);
    co_return u->id;
}
file_id bucket::upload_from_stream(std::string filename, std::istream& source, upload_options options) {
    return trellis::detail::wait(state_->core, upload_impl(state_, std::move(filename), &source, {}, std::move(options)));
}
file_id bucket::upload_from_bytes(std::string filename, std::span<const std::uint8_t> source, upload_options options) {
    return trellis::detail::wait(state_->core, upload_impl(state_, std::move(filename), nullptr, source, std::move(options)));
}
upload_stream bucket::open_upload_stream(std::string filename, upload_options options) {
    return upload_stream(new_upload(state_, std::move(filename), std::move(options)));
}

asio::awaitable<void> bucket::download_to_stream_impl(state_ptr s, file_id id, std::ostream* out, download_options o) {
    const auto budget = s->budget();
    bson::document doc = co_await files_doc_by_id(s, id, budget);
    auto d = co_await open_download(s, std::move(doc), o.range, budget);
    co_await to_stream(d, out);
}
void bucket::download_to_stream(file_id id, std::ostream& destination, download_options options) {
    trellis::detail::wait(state_->core, download_to_stream_impl(state_, std::move(id), &destination, options));
}
asio::awaitable<std::vector<std::uint8_t>> bucket::download_impl(state_ptr s, file_id id, download_options o) {
    const auto budget = s->budget();
    bson::document doc = co_await files_doc_by_id(s, id, budget);
    auto d = co_await open_download(s, std::move(doc), o.range, budget);
    co_return co_await all_bytes(d);
}
std::vector<std::uint8_t> bucket::download(file_id id, download_options options) {
    return trellis::detail::wait(state_->core, download_impl(state_, std::move(id), options));
}
asio::awaitable<download_stream> bucket::open_download_impl(state_ptr s, file_id id, download_options o) {
    const auto budget = s->budget();
    bson::document doc = co_await files_doc_by_id(s, id, budget);
    auto d = co_await open_download(s, std::move(doc), o.range, budget);
    co_return download_stream(std::move(d));
}
download_stream bucket::open_download_stream(file_id id, download_options options) {
    return trellis::detail::wait(state_->core, open_download_impl(state_, std::move(id), options));
}

asio::awaitable<std::vector<std::uint8_t>> bucket::download_by_name_impl(state_ptr s, std::string filename,
                                                                         download_by_name_options o) {
    const auto budget = s->budget();
    bson::document doc = co_await files_doc_by_name(s, std::move(filename), o, budget);
    auto d = co_await open_download(s, std::move(doc), o.range, budget);
    co_return co_await all_bytes(d);
}
std::vector<std::uint8_t> bucket::download_by_name(std::string filename, download_by_name_options options) {
    return trellis::detail::wait(state_->core, download_by_name_impl(state_, std::move(filename), options));
}
asio::awaitable<void> bucket::download_to_stream_by_name_impl(state_ptr s, std::string filename, std::ostream* out,
                                                              download_by_name_options o) {
    const auto budget = s->budget();
    bson::document doc = co_await files_doc_by_name(s, std::move(filename), o, budget);
    auto d = co_await open_download(s, std::move(doc), o.range, budget);
    co_await to_stream(d, out);
}
void bucket::download_to_stream_by_name(std::string filename, std::ostream& destination, download_by_name_options options) {
    trellis::detail::wait(state_->core, download_to_stream_by_name_impl(state_, std::move(filename), &destination, options));
}
asio::awaitable<download_stream> bucket::open_download_by_name_impl(state_ptr s, std::string filename,
                                                                    download_by_name_options o) {
    const auto budget = s->budget();
    bson::document doc = co_await files_doc_by_name(s, std::move(filename), o, budget);
    auto d = co_await open_download(s, std::move(doc), o.range, budget);
    co_return download_stream(std::move(d));
}
download_stream bucket::open_download_stream_by_name(std::string filename, download_by_name_options options) {
    return trellis::detail::wait(state_->core, open_download_by_name_impl(state_, std::move(filename), options));
}

asio::awaitable<void> bucket::delete_impl(state_ptr s, file_id id) {
    // The spec: the files document first (a reader then fails early), then the chunks, even
    // when there was no files document; deletedCount, not a find, tells whether it existed.
    // CSOT: one deadline for both.
    const auto budget = s->budget();
    bson::document by_id = eq_filter("_id", id);
    delete_options o;
    o.timeout = s->left(budget, "deleting the files document");
    const auto r = co_await s->files.async_delete_one(std::move(by_id), o, asio::use_awaitable);
    bson::document by_files_id = eq_filter("files_id", id);
    o.timeout = s->left(budget, "deleting the chunks");
    co_await s->chunks.async_delete_many(std::move(by_files_id), std::move(o), asio::use_awaitable);
    if (r.acknowledged && r.deleted_count == 0)
        throw file_not_found(errc::file_not_found, id, {}, s->where() + ": no file with id " + id.to_string() + " to delete");
}
void bucket::delete_file(file_id id) { trellis::detail::wait(state_->core, delete_impl(state_, std::move(id))); }

asio::awaitable<void> bucket::delete_by_name_impl(state_ptr s, std::string filename) {
    const auto budget = s->budget();  // CSOT: one deadline for the find and both deletes
    find_options ids_only;
    ids_only.timeout = s->left(budget, "finding the files to delete");
    ids_only.projection = bson::make_document(bson::kvp("_id", 1));
    bson::document filter = bson::make_document(bson::kvp("filename", filename));
    auto c = co_await s->files.async_find(std::move(filter), std::move(ids_only), asio::use_awaitable);
    bson::builder ids(bson::builder::root::array);
    std::size_t count = 0;
    while (auto d = co_await c.async_next(asio::use_awaitable)) {
        ids.append_value((*d)["_id"]);
        ++count;
    }
    if (count == 0)
        throw file_not_found(errc::file_not_found, std::nullopt, filename, s->where() + ": no file named \"" + filename + "\" to delete");
    const bson::array in(ids.extract());
    bson::builder fb, cb;
    fb.open_document("_id").append("$in", in.view()).close_document();
    cb.open_document("files_id").append("$in", in.view()).close_document();
    bson::document files_filter = fb.extract(), chunks_filter = cb.extract();
    delete_options o;
    o.timeout = s->left(budget, "deleting the files documents");
    co_await s->files.async_delete_many(std::move(files_filter), o, asio::use_awaitable);
    o.timeout = s->left(budget, "deleting the chunks");
    co_await s->chunks.async_delete_many(std::move(chunks_filter), std::move(o), asio::use_awaitable);
}
void bucket::delete_by_name(std::string filename) {
    trellis::detail::wait(state_->core, delete_by_name_impl(state_, std::move(filename)));
}

asio::awaitable<cursor> bucket::find_impl(state_ptr s, bson::document filter, find_options o) {
    co_return co_await s->files.async_find(std::move(filter), std::move(o), asio::use_awaitable);
}
cursor bucket::find(bson::document filter, find_options options) {
    return trellis::detail::wait(state_->core, find_impl(state_, std::move(filter), std::move(options)));
}

namespace {
asio::awaitable<std::int64_t> set_filename(state_ptr s, bson::document filter, const std::string& new_filename, bool many) {
    bson::builder u;
    u.open_document("$set").append("filename", new_filename).close_document();
    update_spec update(std::in_place_index<0>, u.extract());
    update_options none;
    update_result r;
    if (many) r = co_await s->files.async_update_many(std::move(filter), std::move(update), std::move(none), asio::use_awaitable);
    else r = co_await s->files.async_update_one(std::move(filter), std::move(update), std::move(none), asio::use_awaitable);
    co_return r.acknowledged ? r.matched_count : -1;
}
}  // namespace

asio::awaitable<void> bucket::rename_impl(state_ptr s, file_id id, std::string new_filename) {
    bson::document filter = eq_filter("_id", id);
    const std::int64_t matched = co_await set_filename(s, std::move(filter), new_filename, false);
    if (matched == 0)
        throw file_not_found(errc::file_not_found, id, {}, s->where() + ": no file with id " + id.to_string() + " to rename");
}
void bucket::rename(file_id id, std::string new_filename) {
    trellis::detail::wait(state_->core, rename_impl(state_, std::move(id), std::move(new_filename)));
}
asio::awaitable<void> bucket::rename_by_name_impl(state_ptr s, std::string filename, std::string new_filename) {
    bson::document filter = bson::make_document(bson::kvp("filename", filename));
    const std::int64_t matched = co_await set_filename(s, std::move(filter), new_filename, true);
    if (matched == 0)
        throw file_not_found(errc::file_not_found, std::nullopt, filename, s->where() + ": no file named \"" + filename + "\" to rename");
}
void bucket::rename_by_name(std::string filename, std::string new_filename) {
    trellis::detail::wait(state_->core, rename_by_name_impl(state_, std::move(filename), std::move(new_filename)));
}

asio::awaitable<void> bucket::drop_impl(state_ptr s) {
    const auto budget = s->budget();  // CSOT: one deadline for both drops
    handle_options o;
    o.timeout = s->left(budget, "dropping the files collection");
    collection files = s->files.with_options(o);
    co_await files.async_drop(asio::use_awaitable);
    o.timeout = s->left(budget, "dropping the chunks collection");
    collection chunks = s->chunks.with_options(o);
    co_await chunks.async_drop(asio::use_awaitable);
    s->indexes_checked = false;
}
void bucket::drop() { trellis::detail::wait(state_->core, drop_impl(state_)); }

}  // namespace trellis::gridfs
