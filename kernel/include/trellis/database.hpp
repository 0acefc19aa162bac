// A database handle: cheap to copy. Once its client is destroyed every operation on it throws
// connection_failure; keeping or destroying it afterwards is safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include "trellis/bson/document.hpp"
#include "trellis/collection.hpp"
#include "trellis/options.hpp"

namespace trellis {

namespace gridfs {
class bucket;
}

struct list_collections_options {
    bson::document filter;  ///< on the collections' descriptions ({name: ..., type: ...})
    bool name_only = false;  ///< names and types only: cheaper, takes no collection locks
    std::optional<bool> authorized_collections;
    std::optional<std::int32_t> batch_size;
    std::optional<comment_type> comment;
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit.
    std::optional<std::chrono::milliseconds> timeout;
};

/// run_cursor_command's options. The command itself goes out as given (a maxTimeMS, batchSize or
/// comment in it applies to that command only); batch_size, max_time and comment here apply to
/// the cursor's getMores only.
struct run_cursor_command_options {
    /// Unset: the primary (a command does not inherit the handle's read preference); set: the
    /// command is a read routed by it, and its getMores follow it to the same server.
    std::optional<trellis::read_preference> read_preference;
    /// The kind of cursor the command asks for (tailable, awaitData: the command must say so
    /// too; a mismatch is undefined). A tailable cursor's next() answers nullopt when a getMore
    /// brought nothing new, while the cursor stays alive.
    trellis::cursor_type cursor_type = trellis::cursor_type::non_tailable;
    std::optional<std::int32_t> batch_size;             ///< getMore's batchSize: positive
    std::optional<std::chrono::milliseconds> max_time;  ///< getMore's maxTimeMS: not negative
    std::optional<comment_type> comment;                ///< getMore's comment (sent to 4.4+ servers)
    /// timeoutMS of the command and its cursor (CSOT); unset: the handle's, zero: no limit.
    std::optional<std::chrono::milliseconds> timeout;
    /// How timeout bounds the cursor; unset: cursor_lifetime (tailable: iteration).
    std::optional<trellis::timeout_mode> timeout_mode;
};

class database {
public:
    using command_signature = void(std::exception_ptr, bson::document);
    using cursor_signature = void(std::exception_ptr, cursor);
    using names_signature = void(std::exception_ptr, std::vector<std::string>);
    using collection_signature = void(std::exception_ptr, collection);
    using done_signature = void(std::exception_ptr);

    const std::string& name() const noexcept { return t_.db; }
    /// A collection handle inheriting this database's settings.
    collection get_collection(std::string name) const;
    collection operator[](std::string name) const { return get_collection(std::move(name)); }

    /// This handle's settings (unset: the client's).
    const handle_options& options() const noexcept { return t_.settings; }
    database with_options(const handle_options& o) const {
        database d(*this);
        d.t_.settings = t_.settings.merged(o);
        return d;
    }

    /// The same database whose operations (and the collections it gives) run in `session`.
    /// errc::invalid_argument when the session was started by another client or has ended.
    database with_session(const client_session& session) const;
    database without_session() const {
        database d(*this);
        d.t_.session.reset();
        return d;
    }

    /// Runs a command on this database and completes with the reply. The command goes to the
    /// primary (or master), unless `read_preference` is given: then it is a read, routed by it.
    /// A reply with ok: 0 is an operation_failure (server code, code name, error labels).
    template <boost::asio::completion_token_for<command_signature> T = boost::asio::deferred_t>
    auto async_run_command(bson::document command, T&& token = {}) {
        return spawn(run_command_impl(t_, std::move(command), std::nullopt), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<command_signature> T = boost::asio::deferred_t>
    auto async_run_command(bson::document command, trellis::read_preference read_preference, T&& token = {}) {
        return spawn(run_command_impl(t_, std::move(command), std::move(read_preference)), std::forward<T>(token));
    }
    bson::document run_command(bson::document_view command);
    bson::document run_command(bson::document_view command, trellis::read_preference read_preference);

    /// Runs a command that answers with a cursor ({find: ...}, {aggregate: ...}, {listIndexes: ...},
    /// ...) and completes with that cursor: getMores on the server that answered, in the same
    /// session (this handle's, else an implicit one kept while the server holds the cursor),
    /// killCursors when it is closed early. Not retried. A reply without a cursor document is
    /// errc::invalid_argument (the command returns no cursor); ok: 0 is an operation_failure;
    /// bad options (batch_size < 1, a negative max_time) are errc::invalid_argument, nothing sent.
    template <boost::asio::completion_token_for<cursor_signature> T = boost::asio::deferred_t>
    auto async_run_cursor_command(bson::document command, run_cursor_command_options options = {}, T&& token = {}) {
        return spawn(run_cursor_command_impl(t_, std::move(command), std::move(options)), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<cursor_signature> T>
    auto async_run_cursor_command(bson::document command, T&& token) {
        return async_run_cursor_command(std::move(command), run_cursor_command_options{}, std::forward<T>(token));
    }
    cursor run_cursor_command(bson::document_view command, run_cursor_command_options options = {});

    /// A cursor over the collections' descriptions ({name, type, options, info, idIndex}).
    template <boost::asio::completion_token_for<cursor_signature> T = boost::asio::deferred_t>
    auto async_list_collections(list_collections_options options = {}, T&& token = {}) {
        return spawn(list_collections_impl(t_, std::move(options)), std::forward<T>(token));
    }
    cursor list_collections(list_collections_options options = {});
    template <boost::asio::completion_token_for<names_signature> T = boost::asio::deferred_t>
    auto async_list_collection_names(bson::document filter = {}, T&& token = {}) {
        return spawn(list_collection_names_impl(t_, std::move(filter)), std::forward<T>(token));
    }
    std::vector<std::string> list_collection_names(bson::document_view filter = {});

    /// The create command with `options` ({capped: true, size: N, validator: {...}, ...});
    /// NamespaceExists (48) when it exists already.
    template <boost::asio::completion_token_for<collection_signature> T = boost::asio::deferred_t>
    auto async_create_collection(std::string name, bson::document options = {}, T&& token = {}) {
        return spawn(create_collection_impl(t_, std::move(name), std::move(options)), std::forward<T>(token));
    }
    collection create_collection(std::string name, bson::document_view options = {});

    /// A database aggregate ({aggregate: 1}: $currentOp, $listLocalSessions, $documents, ...).
    template <boost::asio::completion_token_for<cursor_signature> T = boost::asio::deferred_t>
    auto async_aggregate(bson::array pipeline, aggregate_options options = {}, T&& token = {}) {
        return spawn(aggregate_impl(t_, std::move(pipeline), std::move(options)), std::forward<T>(token));
    }
    cursor aggregate(bson::array_view pipeline, aggregate_options options = {});

    /// A change stream on every collection of this database ({aggregate: 1}).
    template <boost::asio::completion_token_for<collection::change_stream_signature> T = boost::asio::deferred_t>
    auto async_watch(bson::array pipeline = {}, change_stream_options options = {}, T&& token = {}) {
        return spawn(watch_impl(t_, std::move(pipeline), std::move(options)), std::forward<T>(token));
    }
    change_stream watch(bson::array pipeline = {}, change_stream_options options = {});

    /// dropDatabase.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_drop(T&& token = {}) {
        return spawn(drop_impl(t_), std::forward<T>(token));
    }
    void drop();

private:
    friend class client;
    friend class gridfs::bucket;  // its coroutines run on this database's client
    using target = collection::target;
    explicit database(target t) : t_(std::move(t)) {}
    boost::asio::any_io_executor executor() const;
    template <class R, class T>
    auto spawn(boost::asio::awaitable<R> work, T&& token) const {
        return boost::asio::co_spawn(executor(), std::move(work), std::forward<T>(token));
    }
    static boost::asio::awaitable<bson::document> run_command_impl(target t, bson::document command,
                                                                   std::optional<trellis::read_preference> read_preference);
    static boost::asio::awaitable<cursor> run_cursor_command_impl(target t, bson::document command,
                                                                  run_cursor_command_options o);
    static boost::asio::awaitable<cursor> list_collections_impl(target t, list_collections_options o);
    static boost::asio::awaitable<std::vector<std::string>> list_collection_names_impl(target t, bson::document filter);
    static boost::asio::awaitable<collection> create_collection_impl(target t, std::string name, bson::document options);
    static boost::asio::awaitable<cursor> aggregate_impl(target t, bson::array pipeline, aggregate_options o);
    static boost::asio::awaitable<change_stream> watch_impl(target t, bson::array pipeline, change_stream_options o);
    static boost::asio::awaitable<void> drop_impl(target t);

    target t_;
};

}  // namespace trellis
