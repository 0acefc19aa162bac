// A collection handle: cheap to copy, valid while its client lives.
//
// Every operation exists as an async operation taking any completion token (a callback
// receiving (std::exception_ptr, result), asio::use_future, asio::use_awaitable,
// asio::deferred) and as a blocking call that throws the typed trellis error.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include "trellis/bson/document.hpp"
#include "trellis/cursor.hpp"
#include "trellis/options.hpp"
#include "trellis/write_error.hpp"

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

/// An index hint: the index's name, or its key pattern.
using hint_type = std::variant<std::string, bson::document>;

struct insert_many_options {
    bool ordered = true;  ///< stop at the first error (true) or insert every document that can be
    std::optional<bool> bypass_document_validation;
};

struct insert_many_result {
    std::vector<bson::document> inserted_ids;  ///< {_id: value} per document, in order
    bool acknowledged = true;
};

struct update_options {
    bool upsert = false;
    std::optional<bson::array> array_filters;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
    std::optional<bson::document> let;
};

struct update_result {
    std::int64_t matched_count = 0;
    std::int64_t modified_count = 0;
    std::optional<bson::document> upserted_id;  ///< {_id: value} when an upsert inserted
    bool acknowledged = true;
};

struct delete_options {
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
};

struct count_options {
    std::optional<std::int64_t> skip;
    std::optional<std::int64_t> limit;
    std::optional<hint_type> hint;
    std::optional<bson::document> collation;
    std::optional<std::chrono::milliseconds> max_time;
    std::optional<trellis::read_preference> read_preference;
};

struct aggregate_options {
    std::optional<std::int32_t> batch_size;
    std::optional<bool> allow_disk_use;
    std::optional<std::chrono::milliseconds> max_time;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
    std::optional<std::string> comment;
    std::optional<bson::document> let;
    /// Unset: the client's (a pipeline ending in $out or $merge always goes to the primary).
    std::optional<trellis::read_preference> read_preference;
    /// For $out / $merge; unset: the collection's.
    std::optional<trellis::write_concern> write_concern;
};

/// One index: its key pattern and options ({name, unique, sparse, expireAfterSeconds, ...});
/// the name defaults to the server's ("a_1_b_-1").
struct index_model {
    bson::document keys;
    bson::document options;
};

class collection {
public:
    using find_signature = void(std::exception_ptr, cursor);
    using insert_signature = void(std::exception_ptr, insert_one_result);
    using find_one_signature = void(std::exception_ptr, std::optional<bson::document>);
    using delete_signature = void(std::exception_ptr, delete_result);
    using insert_many_signature = void(std::exception_ptr, insert_many_result);
    using update_signature = void(std::exception_ptr, update_result);
    using count_signature = void(std::exception_ptr, std::int64_t);
    using distinct_signature = void(std::exception_ptr, bson::array);
    using names_signature = void(std::exception_ptr, std::vector<std::string>);
    using done_signature = void(std::exception_ptr);

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

    /// Inserts the documents in batches the server accepts (maxWriteBatchSize, maxBsonObjectSize).
    /// A write error is a bulk_write_error listing every refused document by its index.
    template <boost::asio::completion_token_for<insert_many_signature> T = boost::asio::deferred_t>
    auto async_insert_many(std::vector<bson::document> documents, insert_many_options options = {}, T&& token = {}) {
        return spawn(insert_many_impl(core_, db_, name_, std::move(documents), options, write_concern_), std::forward<T>(token));
    }
    insert_many_result insert_many(std::vector<bson::document> documents, insert_many_options options = {});

    /// update: `update` holds update operators ($set, ...); invalid_argument otherwise.
    template <boost::asio::completion_token_for<update_signature> T = boost::asio::deferred_t>
    auto async_update_one(bson::document filter, bson::document update, update_options options = {}, T&& token = {}) {
        return spawn(update_impl(core_, db_, name_, std::move(filter), std::move(update), std::move(options), false, false,
                                 write_concern_),
                     std::forward<T>(token));
    }
    update_result update_one(bson::document filter, bson::document update, update_options options = {});
    template <boost::asio::completion_token_for<update_signature> T = boost::asio::deferred_t>
    auto async_update_many(bson::document filter, bson::document update, update_options options = {}, T&& token = {}) {
        return spawn(update_impl(core_, db_, name_, std::move(filter), std::move(update), std::move(options), true, false,
                                 write_concern_),
                     std::forward<T>(token));
    }
    update_result update_many(bson::document filter, bson::document update, update_options options = {});
    /// replace_one: `replacement` holds no operator; invalid_argument otherwise.
    template <boost::asio::completion_token_for<update_signature> T = boost::asio::deferred_t>
    auto async_replace_one(bson::document filter, bson::document replacement, update_options options = {}, T&& token = {}) {
        return spawn(update_impl(core_, db_, name_, std::move(filter), std::move(replacement), std::move(options), false,
                                 true, write_concern_),
                     std::forward<T>(token));
    }
    update_result replace_one(bson::document filter, bson::document replacement, update_options options = {});

    template <boost::asio::completion_token_for<delete_signature> T = boost::asio::deferred_t>
    auto async_delete_one(bson::document filter, delete_options options = {}, T&& token = {}) {
        return spawn(delete_impl(core_, db_, name_, std::move(filter), std::move(options), false, write_concern_),
                     std::forward<T>(token));
    }
    delete_result delete_one(bson::document filter, delete_options options = {});

    template <boost::asio::completion_token_for<count_signature> T = boost::asio::deferred_t>
    auto async_count_documents(bson::document filter, count_options options = {}, T&& token = {}) {
        return spawn(count_documents_impl(core_, db_, name_, std::move(filter), std::move(options)), std::forward<T>(token));
    }
    std::int64_t count_documents(bson::document filter = {}, count_options options = {});
    /// The collection's metadata count (fast; may be off after an unclean shutdown or in a sharded cluster).
    template <boost::asio::completion_token_for<count_signature> T = boost::asio::deferred_t>
    auto async_estimated_document_count(T&& token = {}) {
        return spawn(estimated_count_impl(core_, db_, name_), std::forward<T>(token));
    }
    std::int64_t estimated_document_count();

    template <boost::asio::completion_token_for<distinct_signature> T = boost::asio::deferred_t>
    auto async_distinct(std::string key, bson::document filter = {}, T&& token = {}) {
        return spawn(distinct_impl(core_, db_, name_, std::move(key), std::move(filter)), std::forward<T>(token));
    }
    bson::array distinct(std::string key, bson::document filter = {});

    /// A cursor over the pipeline's results; a pipeline ending in $out or $merge is a write.
    template <boost::asio::completion_token_for<find_signature> T = boost::asio::deferred_t>
    auto async_aggregate(bson::array pipeline, aggregate_options options = {}, T&& token = {}) {
        return spawn(aggregate_impl(core_, db_, name_, std::move(pipeline), std::move(options), write_concern_),
                     std::forward<T>(token));
    }
    cursor aggregate(bson::array pipeline, aggregate_options options = {});

    /// The names of the indexes created, in order.
    template <boost::asio::completion_token_for<names_signature> T = boost::asio::deferred_t>
    auto async_create_indexes(std::vector<index_model> indexes, T&& token = {}) {
        return spawn(create_indexes_impl(core_, db_, name_, std::move(indexes), write_concern_), std::forward<T>(token));
    }
    std::vector<std::string> create_indexes(std::vector<index_model> indexes);
    std::string create_index(bson::document keys, bson::document options = {});
    /// A cursor over the index descriptions ({v, key, name, ...}).
    template <boost::asio::completion_token_for<find_signature> T = boost::asio::deferred_t>
    auto async_list_indexes(T&& token = {}) {
        return spawn(list_indexes_impl(core_, db_, name_), std::forward<T>(token));
    }
    cursor list_indexes();
    /// dropIndexes by name ("*": every index but _id's).
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_drop_index(std::string index_name, T&& token = {}) {
        return spawn(drop_index_impl(core_, db_, name_, std::move(index_name), write_concern_), std::forward<T>(token));
    }
    void drop_index(std::string index_name);
    void drop_indexes() { drop_index("*"); }

    /// Drops the collection; dropping one that does not exist is not an error.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_drop(T&& token = {}) {
        return spawn(drop_impl(core_, db_, name_, write_concern_), std::forward<T>(token));
    }
    void drop();
    /// renameCollection to `new_name` in the same database (NamespaceExists unless drop_target).
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_rename(std::string new_name, bool drop_target = false, T&& token = {}) {
        return spawn(rename_impl(core_, db_, name_, std::move(new_name), drop_target, write_concern_), std::forward<T>(token));
    }
    void rename(std::string new_name, bool drop_target = false);

    /// The write concern for this handle's writes (the client's unless set).
    const trellis::write_concern& write_concern() const noexcept { return write_concern_; }
    void set_write_concern(trellis::write_concern wc) { write_concern_ = std::move(wc); }

private:
    friend class database;
    collection(std::shared_ptr<detail::client_core> core, std::string db, std::string name, trellis::write_concern wc)
        : core_(std::move(core)), db_(std::move(db)), name_(std::move(name)), write_concern_(std::move(wc)) {}
    boost::asio::any_io_executor executor() const;
    template <class R, class T>
    auto spawn(boost::asio::awaitable<R> work, T&& token) const {
        return boost::asio::co_spawn(executor(), std::move(work), std::forward<T>(token));
    }
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
    static boost::asio::awaitable<insert_many_result> insert_many_impl(core_ptr core, std::string db, std::string coll,
                                                                       std::vector<bson::document> documents,
                                                                       insert_many_options options, trellis::write_concern wc);
    static boost::asio::awaitable<update_result> update_impl(core_ptr core, std::string db, std::string coll,
                                                             bson::document filter, bson::document update,
                                                             update_options options, bool multi, bool replace,
                                                             trellis::write_concern wc);
    static boost::asio::awaitable<delete_result> delete_impl(core_ptr core, std::string db, std::string coll,
                                                             bson::document filter, delete_options options, bool multi,
                                                             trellis::write_concern wc);
    static boost::asio::awaitable<std::int64_t> count_documents_impl(core_ptr core, std::string db, std::string coll,
                                                                     bson::document filter, count_options options);
    static boost::asio::awaitable<std::int64_t> estimated_count_impl(core_ptr core, std::string db, std::string coll);
    static boost::asio::awaitable<bson::array> distinct_impl(core_ptr core, std::string db, std::string coll, std::string key,
                                                             bson::document filter);
    static boost::asio::awaitable<cursor> aggregate_impl(core_ptr core, std::string db, std::string coll, bson::array pipeline,
                                                         aggregate_options options, trellis::write_concern wc);
    static boost::asio::awaitable<std::vector<std::string>> create_indexes_impl(core_ptr core, std::string db,
                                                                                std::string coll,
                                                                                std::vector<index_model> indexes,
                                                                                trellis::write_concern wc);
    static boost::asio::awaitable<cursor> list_indexes_impl(core_ptr core, std::string db, std::string coll);
    static boost::asio::awaitable<void> drop_index_impl(core_ptr core, std::string db, std::string coll, std::string index,
                                                        trellis::write_concern wc);
    static boost::asio::awaitable<void> drop_impl(core_ptr core, std::string db, std::string coll, trellis::write_concern wc);
    static boost::asio::awaitable<void> rename_impl(core_ptr core, std::string db, std::string coll, std::string to,
                                                    bool drop_target, trellis::write_concern wc);

    std::shared_ptr<detail::client_core> core_;
    std::string db_, name_;
    trellis::write_concern write_concern_;
};

}  // namespace trellis
