// GridFS (the GridFS spec): files larger than a BSON document, stored as chunks in the
// "<bucket>.chunks" collection and described by one document each in "<bucket>.files".
//
//   trellis::gridfs::bucket fs(client["media"]);                  // bucket "fs", 255 KiB chunks
//   auto id = fs.upload_from_stream("photo.jpg", file_stream);   // an ObjectId
//   fs.download_to_stream(id, out);
//   auto bytes = fs.download_by_name("photo.jpg", {.revision = 0});  // the first revision
//   co_await fs.async_delete(id, asio::use_awaitable);
//
// Every operation exists as an async operation taking any completion token and as a blocking
// call that throws; both run on the database's client. A file's id may be any BSON value
// (file_id); every query on an id uses $eq, so an id that looks like a query matches itself only.
// Indexes ({filename: 1, uploadDate: 1} on files, {files_id: 1, n: 1} unique on chunks) are made
// before a bucket's first write when the files collection is empty and they do not exist yet.
#pragma once

#include <cstdint>
#include <exception>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include "trellis/bson/document.hpp"
#include "trellis/bson/oid.hpp"
#include "trellis/collection.hpp"
#include "trellis/cursor.hpp"
#include "trellis/database.hpp"
#include "trellis/errors.hpp"
#include "trellis/options.hpp"

namespace trellis::gridfs {

// ---------------------------------------------------------------- errors

/// What went wrong with a stored file. Codes of gridfs::error_category(); the exceptions below
/// are trellis::error, as every Trellis failure.
enum class errc : int {
    file_not_found = 1,  // FileNotFound: no files document for the id (or the name)
    revision_not_found,  // RevisionNotFound: the name exists, not that revision
    chunk_is_missing,    // ChunkIsMissing: chunk n absent (a later one came, or none at all)
    chunk_is_wrong_size, // ChunkIsWrongSize: a chunk's data is not the size length and chunkSize give
    extra_chunk,         // ExtraChunk: a chunk beyond the last one length and chunkSize give
    stream_closed,       // a write to an upload stream that was closed or aborted
};
const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

}  // namespace trellis::gridfs

template <>
struct std::is_error_code_enum<trellis::gridfs::errc> : std::true_type {};

namespace trellis::gridfs {

/// A stored file's id: any BSON value (an ObjectId unless the application chose another).
class file_id {
public:
    /// BSON null (what completions carry with an error).
    file_id();
    file_id(bson::oid id);                  // NOLINT: an ObjectId is the usual id
    file_id(std::string_view id);           // NOLINT: a string id
    file_id(const char* id) : file_id(std::string_view(id)) {}  // NOLINT
    file_id(std::int64_t id);               // NOLINT
    /// Any BSON value: the element's value (its key is ignored).
    explicit file_id(const bson::element& value);
    /// The value, as an element keyed "_id".
    bson::element value() const { return doc_["_id"]; }
    /// {_id: value}.
    const bson::document& document() const noexcept { return doc_; }
    /// The value as relaxed Extended JSON, for messages.
    std::string to_string() const;
    friend bool operator==(const file_id& a, const file_id& b) noexcept { return a.doc_ == b.doc_; }

private:
    bson::document doc_;
};

/// Base of the GridFS failures: which file (the id; for a name, the name) and what.
class error : public trellis::error {
public:
    error(errc code, std::optional<file_id> id, std::string filename, const std::string& what)
        : trellis::error(make_error_code(code), what), id_(std::move(id)), filename_(std::move(filename)) {}
    const std::optional<file_id>& id() const noexcept { return id_; }
    const std::string& filename() const noexcept { return filename_; }

private:
    std::optional<file_id> id_;
    std::string filename_;
};

/// No files document for the id (delete, download, rename) or no file of that name.
class file_not_found : public error {
public:
    using error::error;
};

/// download_by_name: files of that name exist, but not `revision()`.
class revision_not_found : public error {
public:
    revision_not_found(std::string filename, std::int32_t revision, std::int64_t revisions, const std::string& what)
        : error(errc::revision_not_found, std::nullopt, std::move(filename), what), revision_(revision), revisions_(revisions) {}
    std::int32_t revision() const noexcept { return revision_; }
    /// How many revisions the name has.
    std::int64_t revisions() const noexcept { return revisions_; }

private:
    std::int32_t revision_;
    std::int64_t revisions_;
};

/// A download found the chunks other than length and chunkSize say: chunk_is_missing,
/// chunk_is_wrong_size or extra_chunk. n() is the chunk concerned (the one expected, for a
/// missing one); expected_size() and actual_size() the data sizes (wrong size only).
class corrupt_file : public error {
public:
    corrupt_file(errc code, file_id id, std::int64_t n, std::int64_t expected_size, std::int64_t actual_size,
                 const std::string& what)
        : error(code, std::move(id), {}, what), n_(n), expected_size_(expected_size), actual_size_(actual_size) {}
    std::int64_t n() const noexcept { return n_; }
    std::int64_t expected_size() const noexcept { return expected_size_; }
    std::int64_t actual_size() const noexcept { return actual_size_; }

private:
    std::int64_t n_, expected_size_, actual_size_;
};

// ---------------------------------------------------------------- options

struct bucket_options {
    std::string bucket_name = "fs";          ///< the collections are "<bucket_name>.files" and ".chunks"
    std::int32_t chunk_size_bytes = 255 * 1024;  ///< for new files; positive
    /// Unset: the database's.
    std::optional<trellis::write_concern> write_concern;
    std::optional<trellis::read_concern> read_concern;
    std::optional<trellis::read_preference> read_preference;
};

struct upload_options {
    /// Unset: a new ObjectId.
    std::optional<file_id> id;
    /// Unset: the bucket's chunk_size_bytes; positive.
    std::optional<std::int32_t> chunk_size_bytes;
    /// The files document's metadata; omitted when unset.
    std::optional<bson::document> metadata;
};

/// Which bytes of a file a download returns: [start, end). Refused with errc::invalid_argument
/// (before any chunk is read) unless 0 <= start <= end <= the file's length. Only the chunks
/// holding the range are fetched.
struct byte_range {
    std::int64_t start = 0;
    std::optional<std::int64_t> end;  ///< unset: the file's length
};

struct download_options {
    byte_range range;
};

struct download_by_name_options {
    /// 0 the first stored, 1 the second, ...; -1 the newest (default), -2 the one before, ...
    std::int32_t revision = -1;
    byte_range range;
};

// ---------------------------------------------------------------- streams

namespace detail {
struct bucket_state;
struct upload_state;
struct download_state;
}  // namespace detail

/// open_upload_stream's writer: chunks go to the server as they fill; close() writes the last
/// one and the files document; abort() deletes the chunks written. Once closed or aborted,
/// writes fail (errc::stream_closed). Destroyed unclosed: nothing more is written, and chunks
/// already written stay as orphans. One operation at a time.
class upload_stream {
public:
    using done_signature = void(std::exception_ptr);

    /// Empty: only assigning to it is allowed.
    upload_stream() = default;
    upload_stream(upload_stream&&) noexcept = default;
    upload_stream& operator=(upload_stream&&) noexcept = default;
    ~upload_stream();

    const file_id& id() const noexcept;
    /// The bytes written so far.
    std::int64_t length() const noexcept;

    /// The bytes are copied before the operation starts.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_write(std::span<const std::uint8_t> bytes, T&& token = {}) {
        return boost::asio::co_spawn(executor(), write_impl(state_, std::vector<std::uint8_t>(bytes.begin(), bytes.end())), std::forward<T>(token));
    }
    void write(std::span<const std::uint8_t> bytes);
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_close(T&& token = {}) {
        return boost::asio::co_spawn(executor(), close_impl(state_), std::forward<T>(token));
    }
    void close();
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_abort(T&& token = {}) {
        return boost::asio::co_spawn(executor(), abort_impl(state_), std::forward<T>(token));
    }
    void abort();

private:
    friend class bucket;
    explicit upload_stream(std::shared_ptr<detail::upload_state> s) : state_(std::move(s)) {}
    boost::asio::any_io_executor executor() const;
    static boost::asio::awaitable<void> write_impl(std::shared_ptr<detail::upload_state> s, std::vector<std::uint8_t> bytes);
    static boost::asio::awaitable<void> close_impl(std::shared_ptr<detail::upload_state> s);
    static boost::asio::awaitable<void> abort_impl(std::shared_ptr<detail::upload_state> s);
    std::shared_ptr<detail::upload_state> state_;
};

/// open_download_stream's reader: chunks are fetched as they are read, each checked (its n and
/// its size) as it arrives. One operation at a time.
class download_stream {
public:
    using read_signature = void(std::exception_ptr, std::size_t);

    /// Empty (what completions carry with an error): only assigning to it is allowed.
    download_stream() = default;
    download_stream(download_stream&&) noexcept = default;
    download_stream& operator=(download_stream&&) noexcept = default;
    ~download_stream();

    /// The files document ({_id, length, chunkSize, uploadDate, filename, metadata, ...}).
    const bson::document& files_document() const noexcept;
    const file_id& id() const noexcept;
    std::int64_t length() const noexcept;

    /// Up to out.size() bytes into `out` (which must stay valid until completion): the count, 0
    /// only at the end of the file (or for an empty `out`).
    template <boost::asio::completion_token_for<read_signature> T = boost::asio::deferred_t>
    auto async_read(std::span<std::uint8_t> out, T&& token = {}) {
        return boost::asio::co_spawn(executor(), read_impl(state_, out), std::forward<T>(token));
    }
    std::size_t read(std::span<std::uint8_t> out);
    /// Lets the chunks cursor go. Reads after it answer 0.
    void close() noexcept;

private:
    friend class bucket;
    explicit download_stream(std::shared_ptr<detail::download_state> s) : state_(std::move(s)) {}
    boost::asio::any_io_executor executor() const;
    static boost::asio::awaitable<std::size_t> read_impl(std::shared_ptr<detail::download_state> s, std::span<std::uint8_t> out);
    std::shared_ptr<detail::download_state> state_;
};

// ---------------------------------------------------------------- the bucket

/// A GridFS bucket of a database: cheap to copy; copies share the note that indexes were checked.
class bucket {
public:
    using id_signature = void(std::exception_ptr, file_id);
    using done_signature = void(std::exception_ptr);
    using bytes_signature = void(std::exception_ptr, std::vector<std::uint8_t>);
    using cursor_signature = void(std::exception_ptr, cursor);
    using upload_signature = void(std::exception_ptr, upload_stream);
    using download_signature = void(std::exception_ptr, download_stream);

    /// errc::invalid_argument (trellis::error) for an empty bucket_name or a chunk size below 1.
    explicit bucket(const database& db, bucket_options options = {});

    const bucket_options& options() const noexcept;
    /// The files and chunks collections, with the bucket's concerns and read preference.
    collection files_collection() const;
    collection chunks_collection() const;

    // ---- upload

    /// Reads `source` to its end and stores it: the chunks, then the files document. A source
    /// that fails (badbit) aborts the upload (the chunks written are deleted) and the failure
    /// is errc::invalid_argument. The stream (and, for the async form, the bytes) must stay valid
    /// until completion. Completes with the file's id.
    template <boost::asio::completion_token_for<id_signature> T = boost::asio::deferred_t>
    auto async_upload_from_stream(std::string filename, std::istream& source, upload_options options = {}, T&& token = {}) {
        return spawn(upload_impl(state_, std::move(filename), &source, {}, std::move(options)), std::forward<T>(token));
    }
    file_id upload_from_stream(std::string filename, std::istream& source, upload_options options = {});
    template <boost::asio::completion_token_for<id_signature> T = boost::asio::deferred_t>
    auto async_upload_from_bytes(std::string filename, std::span<const std::uint8_t> source, upload_options options = {},
                                 T&& token = {}) {
        return spawn(upload_impl(state_, std::move(filename), nullptr, source, std::move(options)), std::forward<T>(token));
    }
    file_id upload_from_bytes(std::string filename, std::span<const std::uint8_t> source, upload_options options = {});

    /// A writer for a new file (no I/O until the first chunk fills or it is closed).
    upload_stream open_upload_stream(std::string filename, upload_options options = {});

    // ---- download

    /// The file's bytes (options.range: a part of them) into `destination` (not flushed nor
    /// closed; it must stay valid until completion). file_not_found, or corrupt_file when the
    /// chunks disagree with the files document.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_download_to_stream(file_id id, std::ostream& destination, download_options options = {}, T&& token = {}) {
        return spawn(download_to_stream_impl(state_, std::move(id), &destination, options), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<done_signature> T>
    auto async_download_to_stream(file_id id, std::ostream& destination, T&& token) {
        return async_download_to_stream(std::move(id), destination, {}, std::forward<T>(token));
    }
    void download_to_stream(file_id id, std::ostream& destination, download_options options = {});
    template <boost::asio::completion_token_for<bytes_signature> T = boost::asio::deferred_t>
    auto async_download(file_id id, download_options options = {}, T&& token = {}) {
        return spawn(download_impl(state_, std::move(id), options), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<bytes_signature> T>
    auto async_download(file_id id, T&& token) {
        return async_download(std::move(id), {}, std::forward<T>(token));
    }
    std::vector<std::uint8_t> download(file_id id, download_options options = {});
    /// A reader of the file (options.range: of a part of it; length() is still the file's).
    template <boost::asio::completion_token_for<download_signature> T = boost::asio::deferred_t>
    auto async_open_download_stream(file_id id, download_options options = {}, T&& token = {}) {
        return spawn(open_download_impl(state_, std::move(id), options), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<download_signature> T>
    auto async_open_download_stream(file_id id, T&& token) {
        return async_open_download_stream(std::move(id), {}, std::forward<T>(token));
    }
    download_stream open_download_stream(file_id id, download_options options = {});

    /// A revision of the files named `filename`: file_not_found when none has that name,
    /// revision_not_found when the revision does not exist.
    template <boost::asio::completion_token_for<bytes_signature> T = boost::asio::deferred_t>
    auto async_download_by_name(std::string filename, download_by_name_options options = {}, T&& token = {}) {
        return spawn(download_by_name_impl(state_, std::move(filename), options), std::forward<T>(token));
    }
    std::vector<std::uint8_t> download_by_name(std::string filename, download_by_name_options options = {});
    void download_to_stream_by_name(std::string filename, std::ostream& destination, download_by_name_options options = {});
    template <boost::asio::completion_token_for<download_signature> T = boost::asio::deferred_t>
    auto async_open_download_stream_by_name(std::string filename, download_by_name_options options = {}, T&& token = {}) {
        return spawn(open_download_by_name_impl(state_, std::move(filename), options), std::forward<T>(token));
    }
    download_stream open_download_stream_by_name(std::string filename, download_by_name_options options = {});

    // ---- the rest

    /// Deletes the files document, then the chunks: the chunks are deleted even when there was
    /// no files document, and then the result is file_not_found.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_delete(file_id id, T&& token = {}) {
        return spawn(delete_impl(state_, std::move(id)), std::forward<T>(token));
    }
    void delete_file(file_id id);
    /// Every revision of `filename` and their chunks; file_not_found when there is none.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_delete_by_name(std::string filename, T&& token = {}) {
        return spawn(delete_by_name_impl(state_, std::move(filename)), std::forward<T>(token));
    }
    void delete_by_name(std::string filename);

    /// A cursor over the files documents matching `filter` ({"metadata.owner": "ann"}, ...),
    /// with the find options given (sort, skip, limit, batch_size, max_time, ...).
    template <boost::asio::completion_token_for<cursor_signature> T = boost::asio::deferred_t>
    auto async_find(bson::document filter, find_options options = {}, T&& token = {}) {
        return spawn(find_impl(state_, std::move(filter), std::move(options)), std::forward<T>(token));
    }
    cursor find(bson::document filter = {}, find_options options = {});

    /// Sets the file's filename; file_not_found when there is no such file.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_rename(file_id id, std::string new_filename, T&& token = {}) {
        return spawn(rename_impl(state_, std::move(id), std::move(new_filename)), std::forward<T>(token));
    }
    void rename(file_id id, std::string new_filename);
    /// Every revision of `filename`; file_not_found when there is none.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_rename_by_name(std::string filename, std::string new_filename, T&& token = {}) {
        return spawn(rename_by_name_impl(state_, std::move(filename), std::move(new_filename)), std::forward<T>(token));
    }
    void rename_by_name(std::string filename, std::string new_filename);

    /// Drops the files collection, then the chunks collection. The next write checks indexes again.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_drop(T&& token = {}) {
        return spawn(drop_impl(state_), std::forward<T>(token));
    }
    void drop();

private:
    using state_ptr = std::shared_ptr<detail::bucket_state>;
    boost::asio::any_io_executor executor() const;
    template <class R, class T>
    auto spawn(boost::asio::awaitable<R> work, T&& token) const {
        return boost::asio::co_spawn(executor(), std::move(work), std::forward<T>(token));
    }
    static boost::asio::awaitable<file_id> upload_impl(state_ptr s, std::string filename, std::istream* stream,
                                                       std::span<const std::uint8_t> bytes, upload_options o);
    static boost::asio::awaitable<void> download_to_stream_impl(state_ptr s, file_id id, std::ostream* out, download_options o);
    static boost::asio::awaitable<std::vector<std::uint8_t>> download_impl(state_ptr s, file_id id, download_options o);
    static boost::asio::awaitable<download_stream> open_download_impl(state_ptr s, file_id id, download_options o);
    static boost::asio::awaitable<std::vector<std::uint8_t>> download_by_name_impl(state_ptr s, std::string filename,
                                                                                   download_by_name_options o);
    static boost::asio::awaitable<void> download_to_stream_by_name_impl(state_ptr s, std::string filename, std::ostream* out,
                                                                        download_by_name_options o);
    static boost::asio::awaitable<download_stream> open_download_by_name_impl(state_ptr s, std::string filename,
                                                                              download_by_name_options o);
    static boost::asio::awaitable<void> delete_impl(state_ptr s, file_id id);
    static boost::asio::awaitable<void> delete_by_name_impl(state_ptr s, std::string filename);
    static boost::asio::awaitable<cursor> find_impl(state_ptr s, bson::document filter, find_options o);
    static boost::asio::awaitable<void> rename_impl(state_ptr s, file_id id, std::string new_filename);
    static boost::asio::awaitable<void> rename_by_name_impl(state_ptr s, std::string filename, std::string new_filename);
    static boost::asio::awaitable<void> drop_impl(state_ptr s);

    state_ptr state_;
};

}  // namespace trellis::gridfs
