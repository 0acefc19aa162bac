// The public faces: client, database, collection, cursor. Async forms live in the headers
// (co_spawn on the client's strand); blocking forms wait on them with a future.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <thread>

#include "client/borrowed.hpp"
#include "client/core.hpp"
#include "client/runtime.hpp"
#include "client/wait.hpp"
#include "ops/ops.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/uri.hpp"

namespace trellis {

namespace asio = boost::asio;

using detail::wait;

using detail::borrowed;

// ---------------------------------------------------------------- client

// The io_context and thread of a client given no executor (client/runtime.hpp). The client and
// its core share it: the io_context lives until the last handle (database, collection, cursor)
// goes, the thread until the client goes.
struct client::runtime : detail::own_runtime {
    using detail::own_runtime::own_runtime;
    /// The last owner may let go while running the io_context (a handler destroying the client):
    /// the io_context cannot be destroyed under its own run, so another thread does it.
    static std::shared_ptr<runtime> make(callback_failure_handler on_failure) {
        return std::shared_ptr<runtime>(new runtime(std::move(on_failure)), [](runtime* r) {
            if (r->running_here()) std::thread([r] { delete r; }).detach();
            else delete r;
        });
    }
};

client::client(std::shared_ptr<detail::client_core> core, std::shared_ptr<runtime> rt)
    : runtime_(std::move(rt)), core_(std::move(core)) {
    if (runtime_) core_->set_own_runtime(runtime_.get());
    core_->set_face(this);
    core_->open();
}

namespace {
std::shared_ptr<detail::client_core> new_core(asio::any_io_executor ex, client_options options, client_settings settings,
                                              std::shared_ptr<void> owner = nullptr) {
    return std::make_shared<detail::client_core>(std::move(ex), std::move(options), std::move(settings), std::move(owner));
}
}  // namespace

client::client(std::string_view uri, client_settings settings) : client(parse_uri(uri).options, std::move(settings)) {}
client::client(asio::any_io_executor executor, std::string_view uri, client_settings settings)
    : client(std::move(executor), parse_uri(uri).options, std::move(settings)) {}
client::client(client_options options, client_settings settings) {
    auto rt = runtime::make(settings.on_callback_failure);
    *this = client(new_core(rt->io().get_executor(), std::move(options), std::move(settings), rt), rt);
}
client::client(asio::any_io_executor executor, client_options options, client_settings settings)
    : client(new_core(std::move(executor), std::move(options), std::move(settings)), nullptr) {}

client client::from_config_file(const std::filesystem::path& file, client_settings handlers) {
    auto cfg = load_config_file(file);
    handlers.topology = cfg.topology;
    handlers.plugins = cfg.plugins;
    return client(std::move(cfg.options), std::move(handlers));
}

client client::master_slave(const server_address& master, const std::vector<server_address>& slaves, client_options options,
                            client_settings settings) {
    if (slaves.empty())
        throw configuration_error("a master-slave client needs at least one slave besides the master " +
                                  sdam::address_of(master));
    options.hosts.clear();
    options.hosts.push_back(master);
    for (const auto& s : slaves) options.hosts.push_back(s);
    options.direct_connection.reset();
    settings.topology.strategy = topology_settings::strategy_type::master_slave;
    settings.topology.master = master;
    settings.topology.slaves = slaves;
    return client(std::move(options), std::move(settings));
}

void client::shutdown() noexcept {
    if (!core_) return;
    try {
        if (runtime_) core_->shutdown();  // its own thread runs: wait for it
        else core_->shutdown_async();     // the embedder's executor may not be running now
    } catch (...) {
    }
    core_->set_face(nullptr);
    core_.reset();
    if (runtime_) runtime_->stop();  // joins the thread once the work has drained (handles may keep the io_context)
    runtime_.reset();
}

client::client(client&& other) noexcept : runtime_(std::move(other.runtime_)), core_(std::move(other.core_)) {
    if (core_) core_->set_face(this);
}
client& client::operator=(client&& other) noexcept {
    if (this != &other) {
        shutdown();
        runtime_ = std::move(other.runtime_);
        core_ = std::move(other.core_);
        if (core_) core_->set_face(this);
    }
    return *this;
}
client::~client() { shutdown(); }

database client::get_database(std::string name) const { return database(database::target{core_, std::move(name), {}, {}, {}}); }

namespace {
// A session bound to a handle of `core`: the same client's, not ended.
std::shared_ptr<detail::session_state> bindable(const std::shared_ptr<detail::client_core>& core, const client_session& s,
                                                const char* where) {
    if (!s.state()) throw error(errc::invalid_argument, std::string(where) + ": the session was moved from");
    if (s.state()->core != core)
        throw error(errc::invalid_argument, std::string(where) + ": the session was started by a different client");
    if (s.has_ended()) throw error(errc::invalid_argument, std::string(where) + ": the session has ended");
    return s.state();
}

// CSOT: an operation's timeoutMS, else its handle's. Inside with_transaction with a timeout, the
// callback's operations in its session take what remains of it (execute() applies it), and a
// timeoutMS of the operation's own is refused, as the spec says.
std::optional<std::chrono::milliseconds> timeout_of(const std::shared_ptr<detail::session_state>& session,
                                                    std::optional<std::chrono::milliseconds> own,
                                                    const std::optional<std::chrono::milliseconds>& handle) {
    if (own && session) {
        std::lock_guard lock(session->mutex);
        if (session->txn_deadline)
            throw error(errc::invalid_argument,
                        "timeoutMS cannot be set on an operation in a session inside with_transaction with a timeout: "
                        "the operation takes what remains of with_transaction's timeoutMS");
    }
    return own ? own : handle;
}
}  // namespace

bson::document client::run_command(const std::string& db, bson::document_view command) {
    return get_database(db).run_command(command);
}

bson::document client::run_command(const client_session& session, const std::string& db, bson::document_view command) {
    return get_database(db).with_session(session).run_command(command);
}

std::shared_ptr<const sdk::topology_description> client::topology() const { return core_->snapshot(); }
std::shared_ptr<const sdk::topology_description> client::wait_for_discovery() { return core_->wait_for_discovery(); }

std::string client::address() { return wait(core_, core_->server_in_use()).address; }
std::string client::host() {
    const auto a = address();
    const auto colon = a.rfind(':');
    std::string h = a.substr(0, colon);
    if (h.size() > 2 && h.front() == '[') h = h.substr(1, h.size() - 2);
    return h;
}
std::uint16_t client::port() {
    const auto a = address();
    return static_cast<std::uint16_t>(std::stoi(a.substr(a.rfind(':') + 1)));
}
bool client::is_primary() {
    const auto a = address();
    const auto* d = core_->snapshot()->find(a);
    return d && (d->type == sdk::server_type::rs_primary || d->type == sdk::server_type::standalone);
}
bool client::is_mongos() {
    const auto a = address();
    const auto* d = core_->snapshot()->find(a);
    return d && d->type == sdk::server_type::mongos;
}
std::vector<std::string> client::nodes() const {
    std::vector<std::string> out;
    for (const auto& s : core_->snapshot()->servers)
        if (s.is_data_bearing()) out.push_back(s.address);
    return out;
}
std::int32_t client::max_bson_size() { return wait(core_, core_->server_in_use()).max_bson_size; }
std::int32_t client::max_message_size() { return wait(core_, core_->server_in_use()).max_message_size; }
int client::min_wire_version() { return wait(core_, core_->server_in_use()).min_wire_version; }
int client::max_wire_version() { return wait(core_, core_->server_in_use()).max_wire_version; }

trellis::read_preference client::read_preference() const { return core_->current_read_preference(); }
void client::set_read_preference(trellis::read_preference rp) {
    client_options o = core_->options();
    o.read_preference = rp;
    validate(o);  // the same checks as a connection string's
    core_->set_read_preference(std::move(rp));
}
trellis::write_concern client::write_concern() const { return core_->current_write_concern(); }
void client::set_write_concern(trellis::write_concern wc) { core_->set_write_concern(std::move(wc)); }
std::chrono::milliseconds client::local_threshold() const noexcept { return core_->options().local_threshold; }

bool client::alive() {
    // No waiting for a server to appear: with none known to be up, the answer is no.
    bool any_up = false;
    for (const auto& s : core_->snapshot()->servers) any_up = any_up || s.is_data_bearing();
    if (!any_up) return false;
    core_->check_blocking("alive");  // misuse is an error, not a dead server
    try {
        wait(core_, core_->ping_in_use());
        return true;
    } catch (const error&) {
        return false;
    }
}

void client::close() {
    // On the client's own executor, or with an executor of the embedder's that may not be
    // running on another thread, waiting would block the very thread that must do the work.
    if (runtime_ && !core_->on_client_thread()) core_->close();
    else core_->close_async();
}
void client::start_request() { core_->set_in_request(true); }
void client::end_request() { core_->set_in_request(false); }
bool client::in_request() const noexcept { return core_->in_request(); }
void client::set_cursor_manager(const std::string& name) { core_->set_cursor_manager(name); }

void client::close_cursor(std::int64_t id, const std::string& ns, const std::string& address) {
    asio::post(core_->strand(), [core = core_, id, ns, address] {
        detail::cursor_state c;
        c.id = id;
        c.ns = ns;
        c.address = address;
        core->cursor_closed(c);
    });
}

namespace {
std::vector<bson::document> databases_in(const bson::document& reply) {
    std::vector<bson::document> out;
    for (const auto& d : reply["databases"].get_array()) out.emplace_back(d.get_document());
    return out;
}
std::vector<std::string> names_in(const bson::document& reply) {
    std::vector<std::string> out;
    for (const auto& d : reply["databases"].get_array()) out.emplace_back(d.get_document()["name"].get_string());
    return out;
}
}  // namespace

asio::awaitable<std::vector<bson::document>> client::list_databases_impl(core_ptr core, bson::document filter,
                                                                         session_ptr session) {
    const auto reply = co_await core->list_databases(std::move(filter), false, std::move(session));
    co_return databases_in(reply);
}
asio::awaitable<std::vector<std::string>> client::database_names_impl(core_ptr core, session_ptr session) {
    bson::document all;
    const auto reply = co_await core->list_databases(std::move(all), true, std::move(session));
    co_return names_in(reply);
}
std::vector<bson::document> client::list_databases(bson::document_view filter) {
    return wait(core_, list_databases_impl(core_, borrowed(filter), {}));
}
std::vector<bson::document> client::list_databases(const client_session& session, bson::document_view filter) {
    return wait(core_, list_databases_impl(core_, borrowed(filter), bindable(core_, session, "client::list_databases")));
}
std::vector<std::string> client::database_names() { return wait(core_, database_names_impl(core_, {})); }
std::vector<std::string> client::database_names(const client_session& session) {
    return wait(core_, database_names_impl(core_, bindable(core_, session, "client::database_names")));
}

void client::drop_database(const std::string& name) { get_database(name).drop(); }
void client::drop_database(const client_session& session, const std::string& name) {
    get_database(name).with_session(session).drop();
}

asio::awaitable<bson::document> client::admin_impl(core_ptr core, std::string db, bson::document command) {
    std::optional<trellis::read_preference> by_default;  // named: GCC 12 and temporaries in co_await
    session_ptr none;
    co_return co_await core->run_command(std::move(db), std::move(command), std::move(by_default), std::move(none));
}
bson::document client::build_info_command() { return bson::make_document(bson::kvp("buildInfo", 1)); }
bson::document client::fsync_command(bool lock) {
    return lock ? bson::make_document(bson::kvp("fsync", 1), bson::kvp("lock", true)) : bson::make_document(bson::kvp("fsync", 1));
}
bson::document client::unlock_command() { return bson::make_document(bson::kvp("fsyncUnlock", 1)); }

bson::document client::server_info() { return wait(core_, admin_impl(core_, "admin", build_info_command())); }
bson::document client::fsync(bool lock) { return wait(core_, admin_impl(core_, "admin", fsync_command(lock))); }
bson::document client::unlock() { return wait(core_, admin_impl(core_, "admin", unlock_command())); }

asio::awaitable<bool> client::is_locked_impl(core_ptr core) {
    std::string admin = "admin";
    auto current_op = bson::make_document(bson::kvp("currentOp", 1));
    const auto reply = co_await admin_impl(core, std::move(admin), std::move(current_op));
    const auto lock = reply.find("fsyncLock");
    co_return lock && (lock->type() == bson::type::boolean ? lock->get_bool() : lock->is_number() && lock->as_int64() != 0);
}
bool client::is_locked() { return wait(core_, is_locked_impl(core_)); }

asio::awaitable<bson::document> client::copy_database_impl(core_ptr core, std::string from_db, std::string to_db,
                                                           std::optional<std::string> from_host) {
    // copydb went with MongoDB 4.2 (wire version 8): refuse before sending rather than let a
    // newer server answer "no such command".
    const auto in_use = co_await core->server_in_use();
    if (in_use.max_wire_version >= 8)
        throw error(errc::incompatible_server, in_use.address + " has wire version " + std::to_string(in_use.max_wire_version) +
                                                   " (MongoDB 4.2 or later), which has no copydb command; copy_database "
                                                   "needs a server of wire version 7 (MongoDB 4.0) or earlier");
    bson::builder b;
    b.append("copydb", 1).append("fromdb", from_db).append("todb", to_db);
    if (from_host) b.append("fromhost", *from_host);
    std::string admin = "admin";
    co_return co_await admin_impl(std::move(core), std::move(admin), b.extract());
}
bson::document client::copy_database(const std::string& from_db, const std::string& to_db, std::optional<std::string> from_host) {
    return wait(core_, copy_database_impl(core_, from_db, to_db, std::move(from_host)));
}

asio::awaitable<bson::document> client::kill_cursors_impl(core_ptr core, std::vector<std::int64_t> ids, std::string ns,
                                                          std::string address) {
    const auto dot = ns.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == ns.size())
        throw error(errc::invalid_argument, "kill_cursors: \"" + ns + "\" is not a namespace (\"db.collection\")");
    if (ids.empty()) throw error(errc::invalid_argument, "kill_cursors: no cursor id given");
    bson::builder b;
    b.append("killCursors", ns.substr(dot + 1)).open_array("cursors");
    for (auto id : ids) b.append(id);
    b.close_array();
    co_return co_await core->run_on(std::move(address), ns.substr(0, dot), b.extract());
}
bson::document client::kill_cursors(const std::vector<std::int64_t>& ids, const std::string& ns, const std::string& address) {
    return wait(core_, kill_cursors_impl(core_, ids, ns, address));
}

trellis::read_concern client::read_concern() const { return core_->options().read_concern; }

asio::any_io_executor client::get_executor() const { return core_->strand(); }

// ---------------------------------------------------------------- database

collection database::get_collection(std::string name) const {
    return collection(collection::target{t_.core, t_.db, std::move(name), t_.settings, t_.session});
}

database database::with_session(const client_session& session) const {
    database d(*this);
    d.t_.session = bindable(t_.core, session, "database::with_session");
    return d;
}

collection collection::with_session(const client_session& session) const {
    collection c(*this);
    c.t_.session = bindable(t_.core, session, "collection::with_session");
    return c;
}

asio::any_io_executor database::executor() const {
    t_.core->check_usable();  // its client may be gone, and with it the thread that would run the operation
    return t_.core->strand();
}

asio::awaitable<bson::document> database::run_command_impl(target t, bson::document command,
                                                           std::optional<trellis::read_preference> read_preference) {
    co_return co_await t.core->run_command(std::move(t.db), std::move(command), std::move(read_preference), t.session,
                                              t.settings.timeout);
}
bson::document database::run_command(bson::document_view command) {
    return wait(t_.core, run_command_impl(t_, borrowed(command), std::nullopt));
}
bson::document database::run_command(bson::document_view command, trellis::read_preference read_preference) {
    return wait(t_.core, run_command_impl(t_, borrowed(command), std::move(read_preference)));
}

asio::awaitable<cursor> database::run_cursor_command_impl(target t, bson::document command, run_cursor_command_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    co_return co_await t.core->run_cursor_command(std::move(t.db), std::move(command), std::move(o), t.session);
}
cursor database::run_cursor_command(bson::document_view command, run_cursor_command_options options) {
    return wait(t_.core, run_cursor_command_impl(t_, borrowed(command), std::move(options)));
}

asio::awaitable<cursor> database::list_collections_impl(target t, list_collections_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    co_return co_await t.core->list_collections(std::move(t.db), std::move(o), t.session);
}
cursor database::list_collections(list_collections_options options) {
    return wait(t_.core, list_collections_impl(t_, std::move(options)));
}
asio::awaitable<std::vector<std::string>> database::list_collection_names_impl(target t, bson::document filter) {
    list_collections_options o;
    o.filter = std::move(filter);
    o.name_only = true;
    auto c = co_await t.core->list_collections(std::move(t.db), std::move(o), t.session);
    std::vector<std::string> names;
    while (auto d = co_await c.async_next(asio::use_awaitable)) names.emplace_back((*d)["name"].get_string());
    co_return names;
}
std::vector<std::string> database::list_collection_names(bson::document_view filter) {
    return wait(t_.core, list_collection_names_impl(t_, borrowed(filter)));
}

asio::awaitable<collection> database::create_collection_impl(target t, std::string name, bson::document options) {
    bson::builder b;
    b.append("create", name).concat(options.view());
    const auto wc = t.core->settings_for(t.settings).wc;
    co_await t.core->write_command(t.db, b.extract(), wc, t.session, t.settings.timeout);
    co_return collection(collection::target{t.core, t.db, std::move(name), t.settings, t.session});
}
collection database::create_collection(std::string name, bson::document_view options) {
    return wait(t_.core, create_collection_impl(t_, std::move(name), borrowed(options)));
}

asio::awaitable<cursor> database::aggregate_impl(target t, bson::array pipeline, aggregate_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    const auto s = t.core->settings_for(t.settings);
    std::string none;  // a database aggregate
    co_return co_await t.core->aggregate(std::move(t.db), std::move(none), std::move(pipeline), std::move(o), s, t.session);
}
cursor database::aggregate(bson::array_view pipeline, aggregate_options options) {
    return wait(t_.core, aggregate_impl(t_, borrowed(pipeline), std::move(options)));
}

asio::awaitable<void> database::drop_impl(target t) {
    const auto wc = t.core->settings_for(t.settings).wc;
    co_await t.core->write_command(std::move(t.db), bson::make_document(bson::kvp("dropDatabase", 1)), wc, t.session,
                                   t.settings.timeout);
}
void database::drop() { wait(t_.core, drop_impl(t_)); }

asio::any_io_executor client::strand_executor() const {
    if (!core_) throw error(errc::connection_failure, "the client was moved from");
    core_->check_usable();
    return core_->strand();
}

asio::awaitable<client_bulk_write_result> client::bulk_write_impl(std::shared_ptr<detail::client_core> core,
                                                                  std::vector<namespace_write_model> models,
                                                                  client_bulk_write_options options) {
    co_return co_await core->client_bulk_write(std::move(models), std::move(options));
}
client_bulk_write_result client::bulk_write(std::span<const namespace_write_model> models, client_bulk_write_options options) {
    return wait(core_, bulk_write_impl(core_, borrowed(models), std::move(options)));
}

// ---------------------------------------------------------------- collection

asio::any_io_executor collection::executor() const {
    t_.core->check_usable();
    return t_.core->strand();
}

trellis::read_preference collection::read_preference() const {
    return t_.settings.read_preference.value_or(t_.core->current_read_preference());
}
trellis::read_concern collection::read_concern() const { return t_.core->settings_for(t_.settings).rc; }
trellis::write_concern collection::write_concern() const { return t_.core->settings_for(t_.settings).wc; }

asio::awaitable<insert_one_result> collection::insert_one_impl(target t, bson::document document, insert_one_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    const auto wc = t.core->settings_for(t.settings).wc;
    co_return co_await t.core->insert_one(std::move(t.db), std::move(t.coll), std::move(document), std::move(o), wc, t.session);
}
insert_one_result collection::insert_one(bson::document_view document, insert_one_options options) {
    return wait(t_.core, insert_one_impl(t_, borrowed(document), std::move(options)));
}

asio::awaitable<insert_many_result> collection::insert_many_impl(target t, std::vector<bson::document> documents,
                                                                 insert_many_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    const auto wc = t.core->settings_for(t.settings).wc;
    co_return co_await t.core->insert_many(std::move(t.db), std::move(t.coll), std::move(documents), std::move(o), wc, t.session);
}
insert_many_result collection::insert_many(std::span<const bson::document> documents, insert_many_options options) {
    std::vector<bson::document> views;
    views.reserve(documents.size());
    for (const auto& d : documents) views.push_back(borrowed(d.view()));
    return wait(t_.core, insert_many_impl(t_, std::move(views), std::move(options)));
}

asio::awaitable<update_result> collection::update_impl(target t, bson::document filter, update_spec update, update_options o,
                                                       bool multi, bool replace) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    const auto wc = t.core->settings_for(t.settings).wc;
    co_return co_await t.core->update(std::move(t.db), std::move(t.coll), std::move(filter), std::move(update), std::move(o),
                                      multi, replace, wc, t.session);
}
update_result collection::update_one(bson::document_view filter, update_view update, update_options options) {
    return wait(t_.core, update_impl(t_, borrowed(filter), borrowed(update), std::move(options), false, false));
}
update_result collection::update_many(bson::document_view filter, update_view update, update_options options) {
    return wait(t_.core, update_impl(t_, borrowed(filter), borrowed(update), std::move(options), true, false));
}
update_result collection::replace_one(bson::document_view filter, bson::document_view replacement, update_options options) {
    return wait(t_.core, update_impl(t_, borrowed(filter), borrowed(replacement), std::move(options), false, true));
}

asio::awaitable<delete_result> collection::delete_impl(target t, bson::document filter, delete_options o, bool multi) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    const auto wc = t.core->settings_for(t.settings).wc;
    co_return co_await t.core->remove(std::move(t.db), std::move(t.coll), std::move(filter), std::move(o), multi, wc, t.session);
}
delete_result collection::delete_one(bson::document_view filter, delete_options options) {
    return wait(t_.core, delete_impl(t_, borrowed(filter), std::move(options), false));
}
delete_result collection::delete_many(bson::document_view filter, delete_options options) {
    return wait(t_.core, delete_impl(t_, borrowed(filter), std::move(options), true));
}

asio::awaitable<bulk_write_result> collection::bulk_write_impl(target t, std::vector<write_model> models, bulk_write_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    const auto wc = t.core->settings_for(t.settings).wc;
    co_return co_await t.core->bulk_write(std::move(t.db), std::move(t.coll), std::move(models), std::move(o), wc, t.session);
}
bulk_write_result collection::bulk_write(std::span<const write_model> models, bulk_write_options options) {
    return wait(t_.core, bulk_write_impl(t_, borrowed(models), std::move(options)));
}

asio::awaitable<std::optional<bson::document>> collection::find_and_modify_impl(target t, bson::document filter,
                                                                                update_spec change,
                                                                                find_one_and_modify_options o,
                                                                                modify_kind kind) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    ops::find_and_modify_op op;
    op.collection = std::move(t.coll);
    op.filter = std::move(filter);
    op.change = std::move(change);
    op.options = std::move(o);
    op.what = kind == modify_kind::update    ? ops::find_and_modify_op::kind::update
              : kind == modify_kind::replace ? ops::find_and_modify_op::kind::replace
                                             : ops::find_and_modify_op::kind::remove;
    op.wc = t.core->settings_for(t.settings).wc;
    co_return co_await t.core->find_and_modify(std::move(t.db), std::move(op), t.session);
}
std::optional<bson::document> collection::find_one_and_update(bson::document_view filter, update_view update,
                                                              find_one_and_update_options options) {
    return wait(t_.core, find_and_modify_impl(t_, borrowed(filter), borrowed(update), std::move(options), modify_kind::update));
}
std::optional<bson::document> collection::find_one_and_replace(bson::document_view filter, bson::document_view replacement,
                                                               find_one_and_replace_options options) {
    return wait(t_.core,
                find_and_modify_impl(t_, borrowed(filter), borrowed(replacement), std::move(options), modify_kind::replace));
}
std::optional<bson::document> collection::find_one_and_delete(bson::document_view filter, find_one_and_delete_options options) {
    return wait(t_.core, find_and_modify_impl(t_, borrowed(filter), bson::document(), std::move(options), modify_kind::remove));
}


asio::awaitable<cursor> collection::find_impl(target t, bson::document filter, find_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    if (!o.read_preference) o.read_preference = t.settings.read_preference;
    const auto rc = t.core->settings_for(t.settings).rc;
    // Named, not a temporary in the co_await expression: GCC 12 destroys such temporaries twice.
    ops::find_op op{std::move(t.coll), std::move(filter), std::move(o), false};
    co_return co_await t.core->find(std::move(t.db), std::move(op), rc, t.session);
}
cursor collection::find(bson::document_view filter, find_options options) {
    return wait(t_.core, find_impl(t_, borrowed(filter), std::move(options)));
}
asio::awaitable<std::optional<bson::document>> collection::find_one_impl(target t, bson::document filter, find_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    if (!o.read_preference) o.read_preference = t.settings.read_preference;
    const auto rc = t.core->settings_for(t.settings).rc;
    ops::find_op op{std::move(t.coll), std::move(filter), std::move(o), true};
    co_return co_await t.core->find_one(std::move(t.db), std::move(op), rc, t.session);
}
std::optional<bson::document> collection::find_one(bson::document_view filter, find_options options) {
    return wait(t_.core, find_one_impl(t_, borrowed(filter), std::move(options)));
}

asio::awaitable<std::int64_t> collection::count_documents_impl(target t, bson::document filter, count_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    if (!o.read_preference) o.read_preference = t.settings.read_preference;
    const auto rc = t.core->settings_for(t.settings).rc;
    co_return co_await t.core->count_documents(std::move(t.db), std::move(t.coll), std::move(filter), std::move(o), rc, t.session);
}
std::int64_t collection::count_documents(bson::document_view filter, count_options options) {
    return wait(t_.core, count_documents_impl(t_, borrowed(filter), std::move(options)));
}
asio::awaitable<std::int64_t> collection::estimated_count_impl(target t, estimated_count_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    if (!o.read_preference) o.read_preference = t.settings.read_preference;
    const auto rc = t.core->settings_for(t.settings).rc;
    co_return co_await t.core->estimated_count(std::move(t.db), std::move(t.coll), std::move(o), rc, t.session);
}
std::int64_t collection::estimated_document_count(estimated_count_options options) {
    return wait(t_.core, estimated_count_impl(t_, std::move(options)));
}
asio::awaitable<std::int64_t> collection::count_impl(target t, bson::document filter, count_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    if (!o.read_preference) o.read_preference = t.settings.read_preference;
    const auto rc = t.core->settings_for(t.settings).rc;
    co_return co_await t.core->count(std::move(t.db), std::move(t.coll), std::move(filter), std::move(o), rc, t.session);
}
std::int64_t collection::count(bson::document_view filter, count_options options) {
    return wait(t_.core, count_impl(t_, borrowed(filter), std::move(options)));
}
asio::awaitable<bson::array> collection::distinct_impl(target t, std::string key, bson::document filter, distinct_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    if (!o.read_preference) o.read_preference = t.settings.read_preference;
    const auto rc = t.core->settings_for(t.settings).rc;
    co_return co_await t.core->distinct(std::move(t.db), std::move(t.coll), std::move(key), std::move(filter), std::move(o), rc, t.session);
}
bson::array collection::distinct(std::string key, bson::document_view filter, distinct_options options) {
    return wait(t_.core, distinct_impl(t_, std::move(key), borrowed(filter), std::move(options)));
}
asio::awaitable<cursor> collection::aggregate_impl(target t, bson::array pipeline, aggregate_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    const auto s = t.core->settings_for(t.settings);
    co_return co_await t.core->aggregate(std::move(t.db), std::move(t.coll), std::move(pipeline), std::move(o), s, t.session);
}
cursor collection::aggregate(bson::array_view pipeline, aggregate_options options) {
    return wait(t_.core, aggregate_impl(t_, borrowed(pipeline), std::move(options)));
}

asio::awaitable<std::vector<std::string>> collection::create_indexes_impl(target t, std::vector<index_model> indexes,
                                                                          create_indexes_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    const auto wc = t.core->settings_for(t.settings).wc;
    co_return co_await t.core->create_indexes(std::move(t.db), std::move(t.coll), std::move(indexes), wc, t.session,
                                              std::move(o));
}
std::vector<std::string> collection::create_indexes(std::span<const index_model> indexes, create_indexes_options options) {
    return wait(t_.core, create_indexes_impl(t_, borrowed(indexes), std::move(options)));
}
asio::awaitable<std::string> collection::create_index_impl(target t, bson::document keys, bson::document options) {
    std::vector<index_model> one;
    one.push_back(index_model{std::move(keys), std::move(options)});
    co_return (co_await create_indexes_impl(std::move(t), std::move(one), {})).front();
}
std::string collection::create_index(bson::document_view keys, bson::document_view options) {
    std::vector<index_model> one;
    one.push_back(index_model{borrowed(keys), borrowed(options)});
    return wait(t_.core, create_indexes_impl(t_, std::move(one), {})).front();
}
asio::awaitable<cursor> collection::list_indexes_impl(target t, list_indexes_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    co_return co_await t.core->list_indexes(std::move(t.db), std::move(t.coll), t.session, std::move(o));
}
cursor collection::list_indexes(list_indexes_options options) { return wait(t_.core, list_indexes_impl(t_, std::move(options))); }
asio::awaitable<void> collection::drop_index_impl(target t, std::string index, drop_index_options o) {
    o.timeout = timeout_of(t.session, o.timeout, t.settings.timeout);
    const auto wc = t.core->settings_for(t.settings).wc;
    co_await t.core->drop_index(std::move(t.db), std::move(t.coll), std::move(index), wc, t.session, std::move(o));
}
void collection::drop_index(std::string index_name, drop_index_options options) {
    wait(t_.core, drop_index_impl(t_, std::move(index_name), std::move(options)));
}
asio::awaitable<void> collection::drop_impl(target t) {
    const auto wc = t.core->settings_for(t.settings).wc;
    try {
        co_await t.core->write_command(std::move(t.db), bson::make_document(bson::kvp("drop", t.coll)), wc, t.session,
                                       t.settings.timeout);
    } catch (const operation_failure& e) {
        // Dropping what is not there is done (NamespaceNotFound; "ns not found" before 3.2).
        if (e.server_code() != 26 && std::string_view(e.what()).find("ns not found") == std::string_view::npos) throw;
    }
}
void collection::drop() { wait(t_.core, drop_impl(t_)); }
asio::awaitable<void> collection::rename_impl(target t, std::string to, bool drop_target) {
    const auto wc = t.core->settings_for(t.settings).wc;
    co_await t.core->write_command("admin",
                                   bson::make_document(bson::kvp("renameCollection", t.db + "." + t.coll),
                                                       bson::kvp("to", t.db + "." + to), bson::kvp("dropTarget", drop_target)),
                                   wc, t.session, t.settings.timeout);
}
void collection::rename(std::string new_name, bool drop_target) {
    wait(t_.core, rename_impl(t_, std::move(new_name), drop_target));
}

// ---------------------------------------------------------------- cursor

cursor::~cursor() { close(); }

void cursor::throw_empty() { throw error(errc::configuration_error, "use of an empty cursor"); }

asio::any_io_executor cursor::executor() const {
    state_->core->check_usable();
    return state_->core->strand();
}

std::optional<bson::document> cursor::take_buffered(detail::cursor_state& state) { return state.take_buffered(); }

asio::awaitable<std::optional<bson::document>> cursor::next_impl(std::shared_ptr<detail::cursor_state> state) {
    co_return co_await state->core->cursor_next(state);
}

asio::awaitable<std::optional<bson::document>> cursor::next_awaitable(std::shared_ptr<detail::cursor_state> state,
                                                                      asio::any_io_executor strand) {
    if (auto d = take_buffered(*state)) co_return d;
    co_return co_await asio::co_spawn(std::move(strand), next_impl(std::move(state)), asio::use_awaitable);
}

std::optional<bson::document> cursor::next() {
    if (!state_) return std::nullopt;
    if (auto d = state_->take_buffered()) return d;  // no strand round trip while the batch lasts
    return wait(state_->core, next_impl(state_));
}

asio::awaitable<bool> cursor::fill_impl(std::shared_ptr<detail::cursor_state> state) {
    co_return co_await state->core->cursor_fill(state);
}

std::optional<bson::document_view> cursor::next_view() {
    if (!state_) return std::nullopt;
    if (auto v = take_buffered_view(*state_)) return v;
    if (!wait(state_->core, fill_impl(state_))) return std::nullopt;
    return take_buffered_view(*state_);
}

std::optional<bson::document_view> cursor::take_buffered_view(detail::cursor_state& state) {
    if (!state.buffered()) return std::nullopt;
    ++state.returned;
    return state.batch.take_view();
}

// On the client's strand: a getMore first when the batch in hand is used up.
asio::awaitable<std::optional<bson::document_view>> cursor::next_view_impl(std::shared_ptr<detail::cursor_state> state) {
    if (auto v = take_buffered_view(*state)) co_return v;
    if (!co_await state->core->cursor_fill(state)) co_return std::nullopt;
    co_return take_buffered_view(*state);
}

asio::awaitable<std::optional<bson::document_view>> cursor::next_view_awaitable(std::shared_ptr<detail::cursor_state> state,
                                                                                asio::any_io_executor strand) {
    if (auto v = take_buffered_view(*state)) co_return v;
    co_return co_await asio::co_spawn(std::move(strand), next_view_impl(std::move(state)), asio::use_awaitable);
}

std::int64_t cursor::id() const noexcept { return state_ ? state_->id : 0; }
const std::string& cursor::ns() const noexcept {
    static const std::string none;
    return state_ ? state_->ns : none;
}
const std::string& cursor::address() const noexcept {
    static const std::string none;
    return state_ ? state_->address : none;
}
bool cursor::alive() const noexcept { return state_ && !state_->closed && (state_->id != 0 || !state_->batch.empty()); }

void cursor::close() noexcept {
    if (!state_) return;
    auto s = std::move(state_);
    // A client that is gone sends nothing more (the server times the cursor out), and its
    // executor may not run again.
    if (s->core->finished()) return;
    try {
        asio::post(s->core->strand(), [s] { s->core->cursor_closed(*s); });
    } catch (...) {
    }
}

}  // namespace trellis
