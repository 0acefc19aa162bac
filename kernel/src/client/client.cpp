// The public faces: client, database, collection, cursor. Async forms live in the headers
// (co_spawn on the client's strand); blocking forms wait on them with a future.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <thread>

#include "client/core.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/uri.hpp"

namespace trellis {

namespace asio = boost::asio;

namespace {

template <class T>
T wait(const std::shared_ptr<detail::client_core>& core, asio::awaitable<T> op) {
    if (core->strand().running_in_this_thread())
        throw error(errc::configuration_error,
                    "a blocking Trellis call was made on the client's own executor; use the async form there");
    return asio::co_spawn(core->strand(), std::move(op), asio::use_future).get();
}

}  // namespace

// ---------------------------------------------------------------- client

// A thread running an io_context, for a client given no executor.
struct client::runtime {
    asio::io_context io{1};
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
    std::promise<void> finished;
    std::thread thread;

    runtime() {
        thread = std::thread([this] {
            io.run();
            finished.set_value();
        });
    }
    ~runtime() {
        // Let the client's last work (connections closing, coroutines ending) drain, then stop.
        work.reset();
        if (finished.get_future().wait_for(std::chrono::seconds(5)) != std::future_status::ready) io.stop();
        if (thread.get_id() == std::this_thread::get_id()) thread.detach();
        else thread.join();
    }
};

client::client(std::shared_ptr<detail::client_core> core, std::shared_ptr<runtime> rt)
    : runtime_(std::move(rt)), core_(std::move(core)) {
    core_->open();
}

namespace {
std::shared_ptr<detail::client_core> new_core(asio::any_io_executor ex, client_options options, client_settings settings) {
    return std::make_shared<detail::client_core>(std::move(ex), std::move(options), std::move(settings));
}
}  // namespace

client::client(std::string_view uri, client_settings settings) : client(parse_uri(uri).options, std::move(settings)) {}
client::client(asio::any_io_executor executor, std::string_view uri, client_settings settings)
    : client(std::move(executor), parse_uri(uri).options, std::move(settings)) {}
client::client(client_options options, client_settings settings) {
    auto rt = std::make_shared<runtime>();
    *this = client(new_core(rt->io.get_executor(), std::move(options), std::move(settings)), rt);
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
    core_.reset();
    runtime_.reset();  // joins the thread once the work has drained
}

client::client(client&& other) noexcept : runtime_(std::move(other.runtime_)), core_(std::move(other.core_)) {}
client& client::operator=(client&& other) noexcept {
    if (this != &other) {
        shutdown();
        runtime_ = std::move(other.runtime_);
        core_ = std::move(other.core_);
    }
    return *this;
}
client::~client() { shutdown(); }

database client::get_database(std::string name) const { return database(core_, std::move(name)); }

bson::document client::run_command(const std::string& db, bson::document command) {
    return get_database(db).run_command(std::move(command));
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
    try {
        wait(core_, core_->server_in_use());
        return true;
    } catch (const error&) {
        return false;
    }
}

void client::close() {
    // On the client's own executor, or with an executor of the embedder's that may not be
    // running on another thread, waiting would block the very thread that must do the work.
    if (runtime_ && !core_->strand().running_in_this_thread()) core_->close();
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

std::vector<std::string> client::database_names() {
    const auto reply = run_command("admin", bson::make_document(bson::kvp("listDatabases", 1), bson::kvp("nameOnly", true)));
    std::vector<std::string> out;
    for (const auto& d : reply["databases"].get_array()) out.emplace_back(d.get_document()["name"].get_string());
    return out;
}

void client::drop_database(const std::string& name) { get_database(name).drop(); }

bson::document client::server_info() { return run_command("admin", bson::make_document(bson::kvp("buildInfo", 1))); }

asio::any_io_executor client::get_executor() const { return core_->strand(); }

// ---------------------------------------------------------------- database

collection database::get_collection(std::string name) const {
    return collection(core_, name_, std::move(name), core_->current_write_concern());
}

asio::any_io_executor database::executor() const { return core_->strand(); }

asio::awaitable<bson::document> database::run_command_impl(std::shared_ptr<detail::client_core> core, std::string db,
                                                           bson::document command,
                                                           std::optional<trellis::read_preference> read_preference) {
    co_return co_await core->run_command(std::move(db), std::move(command), std::move(read_preference));
}

bson::document database::run_command(bson::document command) {
    return wait(core_, run_command_impl(core_, name_, std::move(command), std::nullopt));
}
bson::document database::run_command(bson::document command, trellis::read_preference read_preference) {
    return wait(core_, run_command_impl(core_, name_, std::move(command), std::move(read_preference)));
}
void database::drop() { run_command(bson::make_document(bson::kvp("dropDatabase", 1))); }

// ---------------------------------------------------------------- collection

asio::any_io_executor collection::executor() const { return core_->strand(); }

asio::awaitable<insert_one_result> collection::insert_one_impl(core_ptr core, std::string db, std::string coll,
                                                               bson::document document, trellis::write_concern wc) {
    co_return co_await core->insert_one(std::move(db), std::move(coll), std::move(document), std::move(wc));
}
asio::awaitable<cursor> collection::find_impl(core_ptr core, std::string db, std::string coll, bson::document filter,
                                              find_options options) {
    co_return co_await core->find(std::move(db), std::move(coll), std::move(filter), std::move(options));
}
asio::awaitable<std::optional<bson::document>> collection::find_one_impl(core_ptr core, std::string db, std::string coll,
                                                                         bson::document filter) {
    co_return co_await core->find_one(std::move(db), std::move(coll), std::move(filter));
}
asio::awaitable<delete_result> collection::delete_many_impl(core_ptr core, std::string db, std::string coll,
                                                            bson::document filter, trellis::write_concern wc) {
    co_return co_await core->remove(std::move(db), std::move(coll), std::move(filter), {}, true, std::move(wc));
}

asio::awaitable<insert_many_result> collection::insert_many_impl(core_ptr core, std::string db, std::string coll,
                                                                 std::vector<bson::document> documents,
                                                                 insert_many_options options, trellis::write_concern wc) {
    co_return co_await core->insert_many(std::move(db), std::move(coll), std::move(documents), options, std::move(wc));
}
asio::awaitable<update_result> collection::update_impl(core_ptr core, std::string db, std::string coll, bson::document filter,
                                                       bson::document update, update_options options, bool multi,
                                                       bool replace, trellis::write_concern wc) {
    co_return co_await core->update(std::move(db), std::move(coll), std::move(filter), std::move(update), std::move(options),
                                    multi, replace, std::move(wc));
}
asio::awaitable<delete_result> collection::delete_impl(core_ptr core, std::string db, std::string coll, bson::document filter,
                                                       delete_options options, bool multi, trellis::write_concern wc) {
    co_return co_await core->remove(std::move(db), std::move(coll), std::move(filter), std::move(options), multi, std::move(wc));
}
asio::awaitable<std::int64_t> collection::count_documents_impl(core_ptr core, std::string db, std::string coll,
                                                               bson::document filter, count_options options) {
    co_return co_await core->count_documents(std::move(db), std::move(coll), std::move(filter), std::move(options));
}
asio::awaitable<std::int64_t> collection::estimated_count_impl(core_ptr core, std::string db, std::string coll) {
    co_return co_await core->estimated_count(std::move(db), std::move(coll));
}
asio::awaitable<bson::array> collection::distinct_impl(core_ptr core, std::string db, std::string coll, std::string key,
                                                       bson::document filter) {
    co_return co_await core->distinct(std::move(db), std::move(coll), std::move(key), std::move(filter));
}
asio::awaitable<cursor> collection::aggregate_impl(core_ptr core, std::string db, std::string coll, bson::array pipeline,
                                                   aggregate_options options, trellis::write_concern wc) {
    co_return co_await core->aggregate(std::move(db), std::move(coll), std::move(pipeline), std::move(options), std::move(wc));
}
asio::awaitable<std::vector<std::string>> collection::create_indexes_impl(core_ptr core, std::string db, std::string coll,
                                                                          std::vector<index_model> indexes,
                                                                          trellis::write_concern wc) {
    co_return co_await core->create_indexes(std::move(db), std::move(coll), std::move(indexes), std::move(wc));
}
asio::awaitable<cursor> collection::list_indexes_impl(core_ptr core, std::string db, std::string coll) {
    co_return co_await core->list_indexes(std::move(db), std::move(coll));
}
asio::awaitable<void> collection::drop_index_impl(core_ptr core, std::string db, std::string coll, std::string index,
                                                  trellis::write_concern wc) {
    co_await core->write_command(std::move(db), bson::make_document(bson::kvp("dropIndexes", coll), bson::kvp("index", index)),
                                 std::move(wc));
}
asio::awaitable<void> collection::drop_impl(core_ptr core, std::string db, std::string coll, trellis::write_concern wc) {
    try {
        co_await core->write_command(std::move(db), bson::make_document(bson::kvp("drop", coll)), std::move(wc));
    } catch (const operation_failure& e) {
        // Dropping what is not there is done (NamespaceNotFound; "ns not found" before 3.2).
        if (e.server_code() != 26 && std::string_view(e.what()).find("ns not found") == std::string_view::npos) throw;
    }
}
asio::awaitable<void> collection::rename_impl(core_ptr core, std::string db, std::string coll, std::string to,
                                              bool drop_target, trellis::write_concern wc) {
    co_await core->write_command("admin",
                                 bson::make_document(bson::kvp("renameCollection", db + "." + coll),
                                                     bson::kvp("to", db + "." + to), bson::kvp("dropTarget", drop_target)),
                                 std::move(wc));
}

insert_many_result collection::insert_many(std::vector<bson::document> documents, insert_many_options options) {
    return wait(core_, insert_many_impl(core_, db_, name_, std::move(documents), options, write_concern_));
}
update_result collection::update_one(bson::document filter, bson::document update, update_options options) {
    return wait(core_, update_impl(core_, db_, name_, std::move(filter), std::move(update), std::move(options), false, false,
                                   write_concern_));
}
update_result collection::update_many(bson::document filter, bson::document update, update_options options) {
    return wait(core_, update_impl(core_, db_, name_, std::move(filter), std::move(update), std::move(options), true, false,
                                   write_concern_));
}
update_result collection::replace_one(bson::document filter, bson::document replacement, update_options options) {
    return wait(core_, update_impl(core_, db_, name_, std::move(filter), std::move(replacement), std::move(options), false,
                                   true, write_concern_));
}
delete_result collection::delete_one(bson::document filter, delete_options options) {
    return wait(core_, delete_impl(core_, db_, name_, std::move(filter), std::move(options), false, write_concern_));
}
std::int64_t collection::count_documents(bson::document filter, count_options options) {
    return wait(core_, count_documents_impl(core_, db_, name_, std::move(filter), std::move(options)));
}
std::int64_t collection::estimated_document_count() { return wait(core_, estimated_count_impl(core_, db_, name_)); }
bson::array collection::distinct(std::string key, bson::document filter) {
    return wait(core_, distinct_impl(core_, db_, name_, std::move(key), std::move(filter)));
}
cursor collection::aggregate(bson::array pipeline, aggregate_options options) {
    return wait(core_, aggregate_impl(core_, db_, name_, std::move(pipeline), std::move(options), write_concern_));
}
std::vector<std::string> collection::create_indexes(std::vector<index_model> indexes) {
    return wait(core_, create_indexes_impl(core_, db_, name_, std::move(indexes), write_concern_));
}
std::string collection::create_index(bson::document keys, bson::document options) {
    std::vector<index_model> one;
    one.push_back(index_model{std::move(keys), std::move(options)});
    return create_indexes(std::move(one)).front();
}
cursor collection::list_indexes() { return wait(core_, list_indexes_impl(core_, db_, name_)); }
void collection::drop_index(std::string index_name) {
    wait(core_, drop_index_impl(core_, db_, name_, std::move(index_name), write_concern_));
}
void collection::drop() { wait(core_, drop_impl(core_, db_, name_, write_concern_)); }
void collection::rename(std::string new_name, bool drop_target) {
    wait(core_, rename_impl(core_, db_, name_, std::move(new_name), drop_target, write_concern_));
}

insert_one_result collection::insert_one(bson::document document) {
    return wait(core_, insert_one_impl(core_, db_, name_, std::move(document), write_concern_));
}
cursor collection::find(bson::document filter, find_options options) {
    return wait(core_, find_impl(core_, db_, name_, std::move(filter), std::move(options)));
}
std::optional<bson::document> collection::find_one(bson::document filter) {
    return wait(core_, find_one_impl(core_, db_, name_, std::move(filter)));
}
delete_result collection::delete_many(bson::document filter) {
    return wait(core_, delete_many_impl(core_, db_, name_, std::move(filter), write_concern_));
}

// ---------------------------------------------------------------- cursor

cursor::~cursor() { close(); }

asio::any_io_executor cursor::executor() const {
    if (!state_) throw error(errc::configuration_error, "use of an empty cursor");
    return state_->core->strand();
}

asio::awaitable<std::optional<bson::document>> cursor::next_impl(std::shared_ptr<detail::cursor_state> state) {
    co_return co_await state->core->cursor_next(state);
}

std::optional<bson::document> cursor::next() {
    if (!state_) return std::nullopt;
    return wait(state_->core, next_impl(state_));
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
    try {
        asio::post(state_->core->strand(), [s = state_] {
            s->core->cursor_closed(*s);
            s->closed = true;
        });
    } catch (...) {
    }
    state_.reset();
}

}  // namespace trellis
