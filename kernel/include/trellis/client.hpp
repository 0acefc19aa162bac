// trellis::client: a connection to a MongoDB deployment (PyMongo's MongoClient, and with the
// master_slave strategy its MasterSlaveConnection).
//
//   trellis::client c("mongodb://h1,h2,h3/?replicaSet=rs0");
//   c["app"]["events"].insert_one(bson::make_document(bson::kvp("x", 1)));
//   for (auto cur = c["app"]["events"].find(); auto d = cur.next();) ...
//
// A client monitors every server of the deployment (SDAM: one monitor per server, streaming
// hello where the server supports it, an RTT monitor), keeps a CMAP pool per server, and sends
// each operation to a server its topology strategy and read preference find suitable, within
// the latency window. Operations that meet a network or state-change error mark the server
// Unknown, clear its pool and ask for a check; retryable reads and writes are retried once on a
// newly selected server.
//
// Threads: the client runs on the executor it is given (all its state on one strand), or on an
// io_context and thread of its own when none is given; there a blocking call runs that io_context
// on the calling thread while its operation is in flight (no hand-off between threads), and the
// client's thread runs it otherwise. Every method may be called from any thread; blocking
// calls must not be made on the client's own executor (they would wait for themselves).
// Lifetime: database, collection and cursor handles are valid while their client lives.
// Destroying a client closes it; with an executor of your own, keep its context running until
// the client's work has ended (or destroy the context afterwards), as with any Asio object.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include "trellis/client_bulk_write.hpp"
#include "trellis/config.hpp"
#include "trellis/database.hpp"
#include "trellis/events.hpp"
#include "trellis/options.hpp"
#include "trellis/plugins.hpp"
#include "trellis/sdk/sdam.hpp"
#include "trellis/session.hpp"

namespace trellis {

/// What a client is made with besides its options.
struct client_settings {
    /// [topology] strategy (auto, standalone, replica_set, master_slave, mongos) and, for
    /// master_slave, the master and the slaves.
    topology_settings topology;
    /// [plugins]: search paths, the cursor manager ("immediate" when unset), per-plugin tables.
    plugin_settings plugins;
    /// Event subscribers; each may be empty. They run on the client's executor (SDAM events on
    /// the client's strand, CMAP events on a pool's; with the client's own io_context, on
    /// whichever thread runs it: its own, or a blocking caller's): keep them short, and use async forms
    /// there, since a blocking call on a thread that runs the client's executor throws
    /// configuration_error rather than wait for itself.
    /// One that throws loses that event only; the failure goes to on_callback_failure.
    sdam_event_handler on_sdam;
    cmap_event_handler on_cmap;
    command_event_handler on_command;
    /// A plugin or one of the handlers above threw, or a completion handler run on the client's
    /// own thread did (the client carried on); standard error when empty.
    callback_failure_handler on_callback_failure;
    /// The plugins to use; empty: a registry of the client's own, searching plugins.paths.
    std::shared_ptr<plugin_registry> registry;
    /// The jitter (0 to 1) of each overload retry's backoff; empty: uniformly random. Tests
    /// set it to make the delays exact.
    std::function<double()> backoff_jitter;
};

namespace detail {
class client_core;
}

class client {
public:
    /// Parses the URI (configuration_error) and starts monitoring. Nothing blocks: the first
    /// operation waits for a suitable server up to server_selection_timeout.
    explicit client(std::string_view uri, client_settings settings = {});
    client(boost::asio::any_io_executor executor, std::string_view uri, client_settings settings = {});
    client(client_options options, client_settings settings = {});
    client(boost::asio::any_io_executor executor, client_options options, client_settings settings = {});
    /// A client as a TOML file describes it (trellis/config.hpp); handlers from `settings`.
    static client from_config_file(const std::filesystem::path& file, client_settings handlers = {});
    /// PyMongo's MasterSlaveConnection(master, slaves): writes to the master, reads to each
    /// slave in turn. configuration_error when slaves is empty.
    static client master_slave(const server_address& master, const std::vector<server_address>& slaves,
                               client_options options = {}, client_settings settings = {});

    client(client&&) noexcept;
    client& operator=(client&&) noexcept;
    ~client();

    database get_database(std::string name) const;
    database operator[](std::string name) const { return get_database(std::move(name)); }

    /// run_command on database `db` (see database::run_command).
    bson::document run_command(const std::string& db, bson::document_view command);
    /// The same in an explicit session of this client (errc::invalid_argument for another
    /// client's or an ended session, as with_session).
    bson::document run_command(const client_session& session, const std::string& db, bson::document_view command);

    using bulk_write_signature = void(std::exception_ptr, client_bulk_write_result);
    /// MongoDB 8.0's bulkWrite (trellis/client_bulk_write.hpp): the models on any namespaces, in
    /// their order, in as few commands as the selected server's limits allow (each batch
    /// retryable when it has no update_many or delete_many). Refused before anything is sent
    /// (invalid_argument) for no models, an unacknowledged write concern with ordered or
    /// verbose_results, a model the server would refuse (an update without operators, ...), a
    /// model too large for a message, or a server older than 8.0. Write errors, write concern
    /// errors, and a later batch's network or command error are a client_bulk_write_error
    /// (with partial_result() when a write succeeded); a top-level error before any result is
    /// thrown as it is.
    template <boost::asio::completion_token_for<bulk_write_signature> T = boost::asio::deferred_t>
    auto async_bulk_write(std::vector<namespace_write_model> models, client_bulk_write_options options = {}, T&& token = {}) {
        return spawn(bulk_write_impl(core_, std::move(models), std::move(options)), std::forward<T>(token));
    }
    /// Blocking: the models' documents are read in place (nothing is copied).
    client_bulk_write_result bulk_write(std::span<const namespace_write_model> models, client_bulk_write_options options = {});
    client_bulk_write_result bulk_write(std::initializer_list<namespace_write_model> models,
                                        client_bulk_write_options options = {}) {
        return bulk_write(std::span<const namespace_write_model>(models.begin(), models.size()), std::move(options));
    }
    /// The same in an explicit session of this client: its lsid on every bulkWrite and getMore,
    /// its transaction's txnNumber when one is in progress. errc::invalid_argument (through the
    /// token) for another client's or an ended session.
    template <boost::asio::completion_token_for<bulk_write_signature> T = boost::asio::deferred_t>
    auto async_bulk_write(const client_session& session, std::vector<namespace_write_model> models,
                          client_bulk_write_options options = {}, T&& token = {}) {
        return spawn(bulk_write_impl(core_, session.state(), std::move(models), std::move(options)), std::forward<T>(token));
    }
    client_bulk_write_result bulk_write(const client_session& session, std::span<const namespace_write_model> models,
                                        client_bulk_write_options options = {});
    client_bulk_write_result bulk_write(const client_session& session, std::initializer_list<namespace_write_model> models,
                                        client_bulk_write_options options = {}) {
        return bulk_write(session, std::span<const namespace_write_model>(models.begin(), models.size()), std::move(options));
    }

    /// A change stream on every database of the cluster (admin, allChangesForCluster).
    template <boost::asio::completion_token_for<collection::change_stream_signature> T = boost::asio::deferred_t>
    auto async_watch(bson::array pipeline = {}, change_stream_options options = {}, T&& token = {}) {
        return spawn(watch_impl(core_, std::move(pipeline), std::move(options)), std::forward<T>(token));
    }
    change_stream watch(bson::array pipeline = {}, change_stream_options options = {});
    /// The same in an explicit session of this client (the aggregate, every getMore and a
    /// resume carry its lsid). errc::invalid_argument for another client's or an ended session.
    template <boost::asio::completion_token_for<collection::change_stream_signature> T = boost::asio::deferred_t>
    auto async_watch(const client_session& session, bson::array pipeline = {}, change_stream_options options = {},
                     T&& token = {}) {
        return spawn(watch_impl(core_, session.state(), std::move(pipeline), std::move(options)), std::forward<T>(token));
    }
    change_stream watch(const client_session& session, bson::array pipeline = {}, change_stream_options options = {});

    /// The topology as last seen (a snapshot; never null).
    std::shared_ptr<const sdk::topology_description> topology() const;
    /// Waits until each seed and each discovered member has been checked once, or
    /// server_selection_timeout (the CLI's initial discovery). Blocks: on a thread that runs
    /// the client's executor it throws configuration_error.
    std::shared_ptr<const sdk::topology_description> wait_for_discovery();

    // The seeds' properties. Each selects the server writes would go to (waiting up to
    // server_selection_timeout; server_selection_timeout error otherwise).
    std::string host();
    std::uint16_t port();
    std::string address();  ///< "host:port"
    bool is_primary();      ///< the server in use is a writable primary (or a standalone)
    bool is_mongos();
    std::vector<std::string> nodes() const;  ///< every known data-bearing member, "host:port"
    std::int32_t max_bson_size();
    std::int32_t max_message_size();
    int min_wire_version();
    int max_wire_version();
    trellis::read_preference read_preference() const;
    void set_read_preference(trellis::read_preference rp);
    trellis::write_concern write_concern() const;
    /// Changes the write concern of operations started afterwards (with master_slave, the
    /// master's, which the client inherits).
    void set_write_concern(trellis::write_concern wc);
    std::chrono::milliseconds local_threshold() const noexcept;

    /// True when the server in use answers a ping now (no waiting for selection beyond the
    /// connect timeout).
    bool alive();
    /// Closes monitors, pools and cursors. Using the client afterwards opens it again.
    void close();

    /// start_request: until end_request, every operation goes where writes go (the master for
    /// master_slave; the primary otherwise), so a read sees the caller's own writes.
    void start_request();
    void end_request();
    bool in_request() const noexcept;

    /// An explicit session (trellis/session.hpp): local, no I/O. Bind it to handles with
    /// database::with_session / collection::with_session. errc::invalid_argument for snapshot
    /// sessions (not supported) and for snapshot together with causal_consistency.
    client_session start_session(session_options options = {});

    /// The cursor manager plugin by name ("immediate", "batched", a third-party one); applies
    /// to every member.
    void set_cursor_manager(const std::string& name);
    /// Closes a cursor by id on the server it lives on (killCursors, through the manager).
    void close_cursor(std::int64_t id, const std::string& ns, const std::string& address);

    /// listDatabases: {name, sizeOnDisk, empty} per database (`filter` on those fields).
    std::vector<bson::document> list_databases(bson::document_view filter = {});
    std::vector<std::string> database_names();
    void drop_database(const std::string& name);
    /// The same in an explicit session of this client.
    std::vector<bson::document> list_databases(const client_session& session, bson::document_view filter = {});
    std::vector<std::string> database_names(const client_session& session);
    void drop_database(const client_session& session, const std::string& name);
    /// buildInfo of the server in use.
    bson::document server_info();

    // The seeds' admin surface, on the server writes go to.
    /// fsync: flushes every file to disk; with lock, also blocks writes until unlock().
    bson::document fsync(bool lock = false);
    /// fsyncUnlock; operation_failure when the server is not locked.
    bson::document unlock();
    /// Whether the server is fsync-locked (currentOp's fsyncLock).
    bool is_locked();
    /// copydb from `from_db` (on `from_host`, or the same server) to `to_db`. copydb was removed in
    /// MongoDB 4.2: on a server of wire version 8 or more, errc::unsupported naming its version.
    bson::document copy_database(const std::string& from_db, const std::string& to_db,
                                 std::optional<std::string> from_host = std::nullopt);
    /// killCursors now, on `address`, for cursors of namespace `ns` ("db.coll"); no cursor
    /// manager involved. The reply lists cursorsKilled, cursorsNotFound, ...
    bson::document kill_cursors(const std::vector<std::int64_t>& ids, const std::string& ns, const std::string& address);

    // ---- the same, async: any completion token, as the handles' operations.
    using document_signature = void(std::exception_ptr, bson::document);
    using documents_signature = void(std::exception_ptr, std::vector<bson::document>);
    using names_signature = void(std::exception_ptr, std::vector<std::string>);
    using flag_signature = void(std::exception_ptr, bool);
    using done_signature = void(std::exception_ptr);

    template <boost::asio::completion_token_for<document_signature> T = boost::asio::deferred_t>
    auto async_run_command(std::string db, bson::document command, T&& token = {}) {
        return spawn(admin_impl(core_, std::move(db), std::move(command)), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<documents_signature> T = boost::asio::deferred_t>
    auto async_list_databases(bson::document filter = {}, T&& token = {}) {
        return spawn(list_databases_impl(core_, std::move(filter), {}), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<documents_signature> T>
    auto async_list_databases(T&& token) {
        return async_list_databases(bson::document(), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<names_signature> T = boost::asio::deferred_t>
    auto async_database_names(T&& token = {}) {
        return spawn(database_names_impl(core_, {}), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_drop_database(std::string name, T&& token = {}) {
        return get_database(std::move(name)).async_drop(std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<document_signature> T = boost::asio::deferred_t>
    auto async_server_info(T&& token = {}) {
        return spawn(admin_impl(core_, "admin", build_info_command()), std::forward<T>(token));
    }
    /// `lock` has no default here: a callback could otherwise be taken for it.
    template <boost::asio::completion_token_for<document_signature> T = boost::asio::deferred_t>
    auto async_fsync(bool lock, T&& token = {}) {
        return spawn(admin_impl(core_, "admin", fsync_command(lock)), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<document_signature> T = boost::asio::deferred_t>
    auto async_unlock(T&& token = {}) {
        return spawn(admin_impl(core_, "admin", unlock_command()), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<flag_signature> T = boost::asio::deferred_t>
    auto async_is_locked(T&& token = {}) {
        return spawn(is_locked_impl(core_), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<document_signature> T = boost::asio::deferred_t>
    auto async_copy_database(std::string from_db, std::string to_db, std::optional<std::string> from_host, T&& token = {}) {
        return spawn(copy_database_impl(core_, std::move(from_db), std::move(to_db), std::move(from_host)), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<document_signature> T>
    auto async_copy_database(std::string from_db, std::string to_db, T&& token) {
        return async_copy_database(std::move(from_db), std::move(to_db), std::nullopt, std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<document_signature> T = boost::asio::deferred_t>
    auto async_kill_cursors(std::vector<std::int64_t> ids, std::string ns, std::string address, T&& token = {}) {
        return spawn(kill_cursors_impl(core_, std::move(ids), std::move(ns), std::move(address)), std::forward<T>(token));
    }

    /// The read concern of operations whose handle sets none (readConcernLevel).
    trellis::read_concern read_concern() const;

    boost::asio::any_io_executor get_executor() const;
    /// Not for applications: the implementation, shared with handles.
    const std::shared_ptr<detail::client_core>& core() const noexcept { return core_; }

private:
    struct runtime;  // the thread and io_context of a client that was given no executor
    /// The strand operations run on (connection_failure once the client is gone).
    boost::asio::any_io_executor strand_executor() const;
    static boost::asio::awaitable<client_bulk_write_result> bulk_write_impl(std::shared_ptr<detail::client_core> core,
                                                                            std::vector<namespace_write_model> models,
                                                                            client_bulk_write_options options);
    static boost::asio::awaitable<change_stream> watch_impl(std::shared_ptr<detail::client_core> core, bson::array pipeline,
                                                            change_stream_options options);
    template <class Awaitable, class T>
    auto spawn(Awaitable op, T&& token) const {
        return boost::asio::co_spawn(strand_executor(), std::move(op), std::forward<T>(token));
    }
    using core_ptr = std::shared_ptr<detail::client_core>;
    using session_ptr = std::shared_ptr<detail::session_state>;
    static bson::document build_info_command();
    static bson::document fsync_command(bool lock);
    static bson::document unlock_command();
    static boost::asio::awaitable<bson::document> admin_impl(core_ptr core, std::string db, bson::document command);
    static boost::asio::awaitable<std::vector<bson::document>> list_databases_impl(core_ptr core, bson::document filter,
                                                                                 session_ptr session);
    static boost::asio::awaitable<std::vector<std::string>> database_names_impl(core_ptr core, session_ptr session);
    static boost::asio::awaitable<bool> is_locked_impl(core_ptr core);
    static boost::asio::awaitable<bson::document> copy_database_impl(core_ptr core, std::string from_db, std::string to_db,
                                                                     std::optional<std::string> from_host);
    static boost::asio::awaitable<bson::document> kill_cursors_impl(core_ptr core, std::vector<std::int64_t> ids,
                                                                    std::string ns, std::string address);
    // The explicit session forms (checked on the strand: a refusal goes to the token).
    static boost::asio::awaitable<client_bulk_write_result> bulk_write_impl(std::shared_ptr<detail::client_core> core,
                                                                            std::shared_ptr<detail::session_state> session,
                                                                            std::vector<namespace_write_model> models,
                                                                            client_bulk_write_options options);
    static boost::asio::awaitable<change_stream> watch_impl(std::shared_ptr<detail::client_core> core,
                                                            std::shared_ptr<detail::session_state> session,
                                                            bson::array pipeline, change_stream_options options);
    client(std::shared_ptr<detail::client_core> core, std::shared_ptr<runtime> rt);
    void shutdown() noexcept;

    std::shared_ptr<runtime> runtime_;  // destroyed after core_ is closed
    std::shared_ptr<detail::client_core> core_;
};

}  // namespace trellis
