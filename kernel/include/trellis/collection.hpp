// A collection handle: cheap to copy, valid while its client lives.
//
// Every operation exists as an async operation taking any completion token (a callback
// receiving (std::exception_ptr, result), asio::use_future, asio::use_awaitable,
// asio::deferred) and as a blocking call that throws the typed trellis error.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include "trellis/bson/document.hpp"
#include "trellis/cursor.hpp"
#include "trellis/options.hpp"

namespace trellis {

struct find_options {
    std::optional<std::int64_t> limit;       ///< at most this many documents in all (0: no limit)
    std::optional<std::int32_t> batch_size;  ///< documents per batch (first batch and getMore)
    std::optional<std::int64_t> skip;
    std::optional<bson::document> sort;
    std::optional<bson::document> projection;
    /// Unset: the collection's (the client's) read preference.
    std::optional<trellis::read_preference> read_preference;
};

struct insert_one_result {
    bson::document inserted_id;  ///< {_id: value}: the id given or the ObjectId generated
    bool acknowledged = true;
};

struct delete_result {
    std::int64_t deleted_count = 0;
    bool acknowledged = true;
};

class collection {
public:
    using find_signature = void(std::exception_ptr, cursor);
    using insert_signature = void(std::exception_ptr, insert_one_result);
    using find_one_signature = void(std::exception_ptr, std::optional<bson::document>);
    using delete_signature = void(std::exception_ptr, delete_result);

    const std::string& name() const noexcept { return name_; }
    const std::string& database_name() const noexcept { return db_; }
    std::string full_name() const { return db_ + "." + name_; }

    template <boost::asio::completion_token_for<insert_signature> T = boost::asio::deferred_t>
    auto async_insert_one(bson::document document, T&& token = {}) {
        return boost::asio::co_spawn(executor(), insert_one_impl(core_, db_, name_, std::move(document), write_concern_), std::forward<T>(token));
    }
    insert_one_result insert_one(bson::document document);

    template <boost::asio::completion_token_for<find_signature> T = boost::asio::deferred_t>
    auto async_find(bson::document filter, find_options options, T&& token = {}) {
        return boost::asio::co_spawn(executor(), find_impl(core_, db_, name_, std::move(filter), std::move(options)), std::forward<T>(token));
    }
    cursor find(bson::document filter = {}, find_options options = {});

    template <boost::asio::completion_token_for<find_one_signature> T = boost::asio::deferred_t>
    auto async_find_one(bson::document filter, T&& token = {}) {
        return boost::asio::co_spawn(executor(), find_one_impl(core_, db_, name_, std::move(filter)), std::forward<T>(token));
    }
    std::optional<bson::document> find_one(bson::document filter = {});

    template <boost::asio::completion_token_for<delete_signature> T = boost::asio::deferred_t>
    auto async_delete_many(bson::document filter, T&& token = {}) {
        return boost::asio::co_spawn(executor(), delete_many_impl(core_, db_, name_, std::move(filter), write_concern_), std::forward<T>(token));
    }
    delete_result delete_many(bson::document filter);

    /// The write concern for this handle's writes (the client's unless set).
    const trellis::write_concern& write_concern() const noexcept { return write_concern_; }
    void set_write_concern(trellis::write_concern wc) { write_concern_ = std::move(wc); }

private:
    friend class database;
    collection(std::shared_ptr<detail::client_core> core, std::string db, std::string name, trellis::write_concern wc)
        : core_(std::move(core)), db_(std::move(db)), name_(std::move(name)), write_concern_(std::move(wc)) {}
    boost::asio::any_io_executor executor() const;
    // Static, with copies: the coroutine must not refer to this handle, which may be gone by the
    // time it runs; the core is kept alive by the coroutine's own shared_ptr.
    using core_ptr = std::shared_ptr<detail::client_core>;
    static boost::asio::awaitable<insert_one_result> insert_one_impl(core_ptr core, std::string db, std::string coll,
                                                                     bson::document document, trellis::write_concern wc);
    static boost::asio::awaitable<cursor> find_impl(core_ptr core, std::string db, std::string coll, bson::document filter,
                                                    find_options options);
    static boost::asio::awaitable<std::optional<bson::document>> find_one_impl(core_ptr core, std::string db, std::string coll,
                                                                               bson::document filter);
    static boost::asio::awaitable<delete_result> delete_many_impl(core_ptr core, std::string db, std::string coll,
                                                                  bson::document filter, trellis::write_concern wc);

    std::shared_ptr<detail::client_core> core_;
    std::string db_, name_;
    trellis::write_concern write_concern_;
};

}  // namespace trellis
