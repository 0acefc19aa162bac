// A database handle: cheap to copy, valid while its client lives.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include "trellis/bson/document.hpp"
#include "trellis/collection.hpp"
#include "trellis/options.hpp"

namespace trellis {

class database {
public:
    using command_signature = void(std::exception_ptr, bson::document);

    const std::string& name() const noexcept { return name_; }
    collection get_collection(std::string name) const;
    collection operator[](std::string name) const { return get_collection(std::move(name)); }

    /// Runs a command on this database and completes with the reply. The command goes to the
    /// primary (or master), unless `read_preference` is given: then it is a read, routed by it.
    /// A reply with ok: 0 is an operation_failure (server code, code name, error labels).
    template <boost::asio::completion_token_for<command_signature> T = boost::asio::deferred_t>
    auto async_run_command(bson::document command, T&& token = {}) {
        return boost::asio::co_spawn(executor(), run_command_impl(core_, name_, std::move(command), std::nullopt), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<command_signature> T = boost::asio::deferred_t>
    auto async_run_command(bson::document command, trellis::read_preference read_preference, T&& token = {}) {
        return boost::asio::co_spawn(executor(), run_command_impl(core_, name_, std::move(command), std::move(read_preference)),
                                     std::forward<T>(token));
    }
    bson::document run_command(bson::document command);
    bson::document run_command(bson::document command, trellis::read_preference read_preference);

    /// dropDatabase.
    void drop();

private:
    friend class client;
    database(std::shared_ptr<detail::client_core> core, std::string name) : core_(std::move(core)), name_(std::move(name)) {}
    boost::asio::any_io_executor executor() const;
    static boost::asio::awaitable<bson::document> run_command_impl(std::shared_ptr<detail::client_core> core, std::string db,
                                                                   bson::document command,
                                                                   std::optional<trellis::read_preference> read_preference);

    std::shared_ptr<detail::client_core> core_;
    std::string name_;
};

}  // namespace trellis
