// A collection handle: cheap to copy. Once its client is destroyed every operation on it throws
// connection_failure; keeping or destroying it afterwards is safe.
//
// Every operation exists as an async operation taking any completion token (a callback
// receiving (std::exception_ptr, result), asio::use_future, asio::use_awaitable,
// asio::deferred) and as a blocking call that throws the typed trellis error.
//
// The blocking calls take filters, documents and pipelines as views (bson::document_view,
// array_view; a document or array converts): they read them before returning, so nothing is
// copied. The async ones take them by value, as the operation may outlive the caller's frame.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include "trellis/bson/document.hpp"
#include "trellis/change_stream.hpp"
#include "trellis/cursor.hpp"
#include "trellis/options.hpp"
#include "trellis/session.hpp"
#include "trellis/write_error.hpp"

namespace trellis {

/// An index hint: the index's name, or its key pattern.
using hint_type = std::variant<std::string, bson::document>;
/// A comment the server records with the operation (profiler, currentOp, logs).
using comment_type = std::variant<std::string, bson::document>;
/// An update: update operators ({$set: ...}), or an aggregation pipeline (MongoDB 4.2+).
using update_spec = std::variant<bson::document, bson::array>;
/// What a blocking update takes: an update_spec's content as a view (the call reads it before
/// it returns, so nothing is copied): a bson::document or bson::array, a view of either, or an
/// update_spec.
class update_view {
public:
    update_view(const bson::document& operators) noexcept : v_(std::in_place_index<0>, operators.view()) {}
    update_view(bson::document_view operators) noexcept : v_(std::in_place_index<0>, operators) {}
    update_view(const bson::array& pipeline) noexcept : v_(std::in_place_index<1>, pipeline.view()) {}
    update_view(bson::array_view pipeline) noexcept : v_(std::in_place_index<1>, pipeline) {}
    update_view(const update_spec& update) noexcept
        : v_(update.index() == 0 ? decltype(v_)(std::in_place_index<0>, std::get<0>(update).view())
                                 : decltype(v_)(std::in_place_index<1>, std::get<1>(update).view())) {}
    const std::variant<bson::document_view, bson::array_view>& get() const noexcept { return v_; }

private:
    std::variant<bson::document_view, bson::array_view> v_;
};

/// raw_data_note: the options' `raw_data` (rawData, MongoDB 8.2) is for MongoDB's own tools and
/// not meant for applications: on a time-series collection it makes the operation work on the
/// buckets as stored. It goes out only to a server of wire version 27 (8.2) or later, chosen at
/// each attempt, and is left out for older servers, as the CRUD spec asks.
enum class cursor_type {
    non_tailable,
    tailable,        ///< on a capped collection: the cursor stays open at the end of the data
    tailable_await,  ///< tailable, and getMore waits up to max_await_time for new data
};

struct find_options {
    std::optional<std::int64_t> limit;       ///< at most this many documents in all (0: no limit)
    std::optional<std::int32_t> batch_size;  ///< documents per batch (first batch and getMore)
    std::optional<std::int64_t> skip;
    std::optional<bson::document> sort;
    std::optional<bson::document> projection;
    std::optional<hint_type> hint;
    std::optional<std::chrono::milliseconds> max_time;  ///< maxTimeMS: the server's time limit
    std::optional<comment_type> comment;
    std::optional<bson::document> collation;
    std::optional<bool> allow_disk_use;
    std::optional<bool> no_cursor_timeout;
    std::optional<bson::document> let;
    trellis::cursor_type cursor_type = trellis::cursor_type::non_tailable;
    std::optional<std::chrono::milliseconds> max_await_time;  ///< tailable_await: getMore's maxTimeMS
    /// Unset: the collection's read preference.
    std::optional<trellis::read_preference> read_preference;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
    /// How timeout bounds the cursor; unset: cursor_lifetime (tailable: iteration). Needs a timeout.
    std::optional<trellis::timeout_mode> timeout_mode;
};

struct insert_one_options {
    std::optional<bool> bypass_document_validation;
    std::optional<comment_type> comment;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
};

struct insert_one_result {
    bson::document inserted_id;  ///< {_id: value}: the id given or the ObjectId generated
    bool acknowledged = true;
};

struct delete_result {
    std::int64_t deleted_count = 0;
    bool acknowledged = true;
};

struct insert_many_options {
    bool ordered = true;  ///< stop at the first error (true) or insert every document that can be
    std::optional<bool> bypass_document_validation;
    std::optional<comment_type> comment;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
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
    std::optional<bool> bypass_document_validation;
    std::optional<comment_type> comment;
    /// update_one and replace_one (MongoDB 8.0+): the first match in this order is the one
    /// changed. update_many refuses it (invalid_argument); older servers refuse it themselves.
    std::optional<bson::document> sort;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
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
    std::optional<bson::document> let;
    std::optional<comment_type> comment;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
};

struct count_options {
    std::optional<std::int64_t> skip;
    std::optional<std::int64_t> limit;
    std::optional<hint_type> hint;
    std::optional<bson::document> collation;
    std::optional<std::chrono::milliseconds> max_time;
    std::optional<comment_type> comment;
    std::optional<trellis::read_preference> read_preference;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
};

struct estimated_count_options {
    std::optional<std::chrono::milliseconds> max_time;
    std::optional<comment_type> comment;
    std::optional<trellis::read_preference> read_preference;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
};

struct distinct_options {
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;  ///< MongoDB 7.1+; older servers refuse it (unknown field)
    std::optional<std::chrono::milliseconds> max_time;
    std::optional<comment_type> comment;
    std::optional<trellis::read_preference> read_preference;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
};

struct aggregate_options {
    std::optional<std::int32_t> batch_size;
    std::optional<bool> allow_disk_use;
    std::optional<std::chrono::milliseconds> max_time;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
    std::optional<comment_type> comment;
    std::optional<bson::document> let;
    std::optional<bool> bypass_document_validation;  ///< $out / $merge
    /// Unset: the collection's. A pipeline ending in $out or $merge goes to the primary, unless
    /// this is not primary and every available server is 5.0+ (the CRUD spec's rule).
    std::optional<trellis::read_preference> read_preference;
    /// For $out / $merge; unset: the collection's.
    std::optional<trellis::write_concern> write_concern;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
    /// How timeout bounds the cursor; unset: cursor_lifetime (tailable: iteration). Needs a timeout.
    std::optional<trellis::timeout_mode> timeout_mode;
};

enum class return_document { before, after };

/// find_one_and_update, find_one_and_replace (array_filters: update only) and
/// find_one_and_delete (upsert, return_document, array_filters, bypass: not for a delete).
struct find_one_and_modify_options {
    std::optional<bson::document> projection;
    std::optional<bson::document> sort;  ///< which document, when several match
    bool upsert = false;
    trellis::return_document return_document = trellis::return_document::before;
    std::optional<bson::array> array_filters;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
    std::optional<bson::document> let;
    std::optional<std::chrono::milliseconds> max_time;
    std::optional<bool> bypass_document_validation;
    std::optional<comment_type> comment;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
};
using find_one_and_update_options = find_one_and_modify_options;
using find_one_and_replace_options = find_one_and_modify_options;
using find_one_and_delete_options = find_one_and_modify_options;

// bulk_write's models (the CRUD spec's WriteModel).
struct insert_one_model {
    bson::document document;
};
/// update_one_model (Many = false) and update_many_model (Many = true).
template <bool Many>
struct update_model {
    bson::document filter;
    update_spec update;
    bool upsert = false;
    std::optional<bson::array> array_filters;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
    /// update_one_model only (MongoDB 8.0+): which match is updated. update_many_model refuses
    /// it (invalid_argument naming the model).
    std::optional<bson::document> sort;
};
using update_one_model = update_model<false>;
using update_many_model = update_model<true>;
struct replace_one_model {
    bson::document filter;
    bson::document replacement;
    bool upsert = false;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
    std::optional<bson::document> sort;  ///< MongoDB 8.0+: which match is replaced
};
/// delete_one_model (Many = false) and delete_many_model (Many = true).
template <bool Many>
struct delete_model {
    bson::document filter;
    std::optional<bson::document> collation;
    std::optional<hint_type> hint;
};
using delete_one_model = delete_model<false>;
using delete_many_model = delete_model<true>;
using write_model = std::variant<insert_one_model, update_one_model, update_many_model, replace_one_model, delete_one_model,
                                 delete_many_model>;

struct bulk_write_options {
    bool ordered = true;  ///< stop at the first write error, or attempt every model
    std::optional<bool> bypass_document_validation;
    std::optional<bson::document> let;
    std::optional<comment_type> comment;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
};

/// One index: its key pattern and options ({name, unique, sparse, expireAfterSeconds, ...});
/// the name defaults to the server's ("a_1_b_-1").
struct index_model {
    bson::document keys;
    bson::document options;
};

/// The index management spec's options of createIndexes, listIndexes and dropIndexes.
struct create_indexes_options {
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
};
struct list_indexes_options {
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
};
struct drop_index_options {
    std::optional<bool> raw_data;  ///< internal: see raw_data_note
    /// timeoutMS of this operation (CSOT); unset: the handle's, zero: no limit. With it the
    /// deprecated limits (max_time, socketTimeoutMS, waitQueueTimeoutMS) are ignored.
    std::optional<std::chrono::milliseconds> timeout;
};

class collection {
public:
    using find_signature = void(std::exception_ptr, cursor);
    using insert_signature = void(std::exception_ptr, insert_one_result);
    using find_one_signature = void(std::exception_ptr, std::optional<bson::document>);
    using delete_signature = void(std::exception_ptr, delete_result);
    using insert_many_signature = void(std::exception_ptr, insert_many_result);
    using update_signature = void(std::exception_ptr, update_result);
    using bulk_signature = void(std::exception_ptr, bulk_write_result);
    using count_signature = void(std::exception_ptr, std::int64_t);
    using distinct_signature = void(std::exception_ptr, bson::array);
    using names_signature = void(std::exception_ptr, std::vector<std::string>);
    using name_signature = void(std::exception_ptr, std::string);
    using done_signature = void(std::exception_ptr);

    /// An empty handle (what an async create_collection completes with on failure); assign
    /// one from database::get_collection before use.
    collection() = default;

    const std::string& name() const noexcept { return t_.coll; }
    const std::string& database_name() const noexcept { return t_.db; }
    std::string full_name() const { return t_.db + "." + t_.coll; }

    /// This handle's settings (unset: the database's, then the client's).
    const handle_options& options() const noexcept { return t_.settings; }
    /// The same collection with some settings replaced.
    collection with_options(const handle_options& o) const {
        collection c(*this);
        c.t_.settings = t_.settings.merged(o);
        return c;
    }
    /// The same collection whose operations (and their cursors' getMores) run in `session`.
    /// errc::invalid_argument when the session was started by another client or has ended.
    collection with_session(const client_session& session) const;
    /// The same collection with implicit sessions again.
    collection without_session() const {
        collection c(*this);
        c.t_.session.reset();
        return c;
    }
    /// The settings in force now (the handle's, else the client's).
    trellis::read_preference read_preference() const;
    trellis::read_concern read_concern() const;
    trellis::write_concern write_concern() const;
    void set_write_concern(trellis::write_concern wc) { t_.settings.write_concern = std::move(wc); }

    // ---- writes. A write error is a bulk_write_error (every error the server sent, by index).

    template <boost::asio::completion_token_for<insert_signature> T = boost::asio::deferred_t>
    auto async_insert_one(bson::document document, insert_one_options options = {}, T&& token = {}) {
        return spawn(insert_one_impl(t_, std::move(document), std::move(options)), std::forward<T>(token));
    }
    insert_one_result insert_one(bson::document_view document, insert_one_options options = {});
    template <boost::asio::completion_token_for<insert_signature> T>
    auto async_insert_one(bson::document document, T&& token) {
        return async_insert_one(std::move(document), insert_one_options{}, std::forward<T>(token));
    }

    /// Inserts the documents in batches the server accepts (maxWriteBatchSize, maxBsonObjectSize).
    template <boost::asio::completion_token_for<insert_many_signature> T = boost::asio::deferred_t>
    auto async_insert_many(std::vector<bson::document> documents, insert_many_options options = {}, T&& token = {}) {
        return spawn(insert_many_impl(t_, std::move(documents), std::move(options)), std::forward<T>(token));
    }
    insert_many_result insert_many(std::span<const bson::document> documents, insert_many_options options = {});
    insert_many_result insert_many(std::initializer_list<bson::document> documents, insert_many_options options = {}) {
        return insert_many(std::span<const bson::document>(documents.begin(), documents.size()), std::move(options));
    }

    /// `update`: update operators ($set, ...) or a pipeline; invalid_argument otherwise.
    template <boost::asio::completion_token_for<update_signature> T = boost::asio::deferred_t>
    auto async_update_one(bson::document filter, update_spec update, update_options options = {}, T&& token = {}) {
        return spawn(update_impl(t_, std::move(filter), std::move(update), std::move(options), false, false), std::forward<T>(token));
    }
    update_result update_one(bson::document_view filter, update_view update, update_options options = {});
    template <boost::asio::completion_token_for<update_signature> T = boost::asio::deferred_t>
    auto async_update_many(bson::document filter, update_spec update, update_options options = {}, T&& token = {}) {
        return spawn(update_impl(t_, std::move(filter), std::move(update), std::move(options), true, false), std::forward<T>(token));
    }
    update_result update_many(bson::document_view filter, update_view update, update_options options = {});
    /// `replacement` holds no operator; invalid_argument otherwise (array_filters too).
    template <boost::asio::completion_token_for<update_signature> T = boost::asio::deferred_t>
    auto async_replace_one(bson::document filter, bson::document replacement, update_options options = {}, T&& token = {}) {
        return spawn(update_impl(t_, std::move(filter), std::move(replacement), std::move(options), false, true),
                     std::forward<T>(token));
    }
    update_result replace_one(bson::document_view filter, bson::document_view replacement, update_options options = {});

    template <boost::asio::completion_token_for<delete_signature> T = boost::asio::deferred_t>
    auto async_delete_one(bson::document filter, delete_options options = {}, T&& token = {}) {
        return spawn(delete_impl(t_, std::move(filter), std::move(options), false), std::forward<T>(token));
    }
    delete_result delete_one(bson::document_view filter, delete_options options = {});
    template <boost::asio::completion_token_for<delete_signature> T = boost::asio::deferred_t>
    auto async_delete_many(bson::document filter, delete_options options = {}, T&& token = {}) {
        return spawn(delete_impl(t_, std::move(filter), std::move(options), true), std::forward<T>(token));
    }
    delete_result delete_many(bson::document_view filter, delete_options options = {});

    /// The models in as few insert/update/delete commands as the server's limits allow: in order
    /// (ordered: stop at the first write error) or grouped by kind (unordered). A failure is a
    /// bulk_write_error whose indexes are the models' and whose partial_result() says what was done.
    template <boost::asio::completion_token_for<bulk_signature> T = boost::asio::deferred_t>
    auto async_bulk_write(std::vector<write_model> models, bulk_write_options options = {}, T&& token = {}) {
        return spawn(bulk_write_impl(t_, std::move(models), std::move(options)), std::forward<T>(token));
    }
    /// Blocking: the models' documents are read in place (nothing is copied).
    bulk_write_result bulk_write(std::span<const write_model> models, bulk_write_options options = {});
    bulk_write_result bulk_write(std::initializer_list<write_model> models, bulk_write_options options = {}) {
        return bulk_write(std::span<const write_model>(models.begin(), models.size()), std::move(options));
    }

    /// findAndModify: the document before (or after) the change; nullopt when none matched.
    template <boost::asio::completion_token_for<find_one_signature> T = boost::asio::deferred_t>
    auto async_find_one_and_update(bson::document filter, update_spec update, find_one_and_update_options options = {},
                                   T&& token = {}) {
        return spawn(find_and_modify_impl(t_, std::move(filter), std::move(update), std::move(options), modify_kind::update),
                     std::forward<T>(token));
    }
    std::optional<bson::document> find_one_and_update(bson::document_view filter, update_view update,
                                                      find_one_and_update_options options = {});
    template <boost::asio::completion_token_for<find_one_signature> T = boost::asio::deferred_t>
    auto async_find_one_and_replace(bson::document filter, bson::document replacement,
                                    find_one_and_replace_options options = {}, T&& token = {}) {
        return spawn(find_and_modify_impl(t_, std::move(filter), std::move(replacement), std::move(options), modify_kind::replace),
                     std::forward<T>(token));
    }
    std::optional<bson::document> find_one_and_replace(bson::document_view filter, bson::document_view replacement,
                                                       find_one_and_replace_options options = {});
    template <boost::asio::completion_token_for<find_one_signature> T = boost::asio::deferred_t>
    auto async_find_one_and_delete(bson::document filter, find_one_and_delete_options options = {}, T&& token = {}) {
        return spawn(find_and_modify_impl(t_, std::move(filter), bson::document(), std::move(options), modify_kind::remove),
                     std::forward<T>(token));
    }
    std::optional<bson::document> find_one_and_delete(bson::document_view filter, find_one_and_delete_options options = {});

    // ---- reads

    template <boost::asio::completion_token_for<find_signature> T = boost::asio::deferred_t>
    auto async_find(bson::document filter, find_options options = {}, T&& token = {}) {
        return spawn(find_impl(t_, std::move(filter), std::move(options)), std::forward<T>(token));
    }
    cursor find(bson::document_view filter = {}, find_options options = {});

    /// The first match (limit and single batch: no cursor is left open); nullopt when none.
    template <boost::asio::completion_token_for<find_one_signature> T = boost::asio::deferred_t>
    auto async_find_one(bson::document filter, find_options options = {}, T&& token = {}) {
        return spawn(find_one_impl(t_, std::move(filter), std::move(options)), std::forward<T>(token));
    }
    std::optional<bson::document> find_one(bson::document_view filter = {}, find_options options = {});
    template <boost::asio::completion_token_for<find_one_signature> T>
    auto async_find_one(bson::document filter, T&& token) {
        return async_find_one(std::move(filter), find_options{}, std::forward<T>(token));
    }

    template <boost::asio::completion_token_for<count_signature> T = boost::asio::deferred_t>
    auto async_count_documents(bson::document filter, count_options options = {}, T&& token = {}) {
        return spawn(count_documents_impl(t_, std::move(filter), std::move(options)), std::forward<T>(token));
    }
    std::int64_t count_documents(bson::document_view filter = {}, count_options options = {});
    /// Deprecated (the CRUD spec's `count`): the count command, {count, query, skip, limit, ...}.
    /// Its result can be wrong on a sharded cluster (orphans, migrations) and after an unclean
    /// shutdown; use count_documents (an exact aggregate) or estimated_document_count instead.
    template <boost::asio::completion_token_for<count_signature> T = boost::asio::deferred_t>
    [[deprecated("count is deprecated: use count_documents or estimated_document_count")]]
    auto async_count(bson::document filter, count_options options = {}, T&& token = {}) {
        return spawn(count_impl(t_, std::move(filter), std::move(options)), std::forward<T>(token));
    }
    [[deprecated("count is deprecated: use count_documents or estimated_document_count")]]
    std::int64_t count(bson::document_view filter = {}, count_options options = {});
    /// The collection's metadata count (fast; may be off after an unclean shutdown or in a sharded cluster).
    template <boost::asio::completion_token_for<count_signature> T = boost::asio::deferred_t>
    auto async_estimated_document_count(estimated_count_options options = {}, T&& token = {}) {
        return spawn(estimated_count_impl(t_, std::move(options)), std::forward<T>(token));
    }
    std::int64_t estimated_document_count(estimated_count_options options = {});
    template <boost::asio::completion_token_for<count_signature> T>
    auto async_estimated_document_count(T&& token) {
        return async_estimated_document_count(estimated_count_options{}, std::forward<T>(token));
    }

    template <boost::asio::completion_token_for<distinct_signature> T = boost::asio::deferred_t>
    auto async_distinct(std::string key, bson::document filter = {}, distinct_options options = {}, T&& token = {}) {
        return spawn(distinct_impl(t_, std::move(key), std::move(filter), std::move(options)), std::forward<T>(token));
    }
    bson::array distinct(std::string key, bson::document_view filter = {}, distinct_options options = {});
    template <boost::asio::completion_token_for<distinct_signature> T>
    auto async_distinct(std::string key, bson::document filter, T&& token) {
        return async_distinct(std::move(key), std::move(filter), distinct_options{}, std::forward<T>(token));
    }

    /// A cursor over the pipeline's results; a pipeline ending in $out or $merge is a write.
    template <boost::asio::completion_token_for<find_signature> T = boost::asio::deferred_t>
    auto async_aggregate(bson::array pipeline, aggregate_options options = {}, T&& token = {}) {
        return spawn(aggregate_impl(t_, std::move(pipeline), std::move(options)), std::forward<T>(token));
    }
    cursor aggregate(bson::array_view pipeline, aggregate_options options = {});

    using change_stream_signature = void(std::exception_ptr, change_stream);
    /// A change stream on this collection (trellis/change_stream.hpp); `pipeline` ($match,
    /// $project, ...) runs on each event. Needs a replica set or a sharded cluster.
    template <boost::asio::completion_token_for<change_stream_signature> T = boost::asio::deferred_t>
    auto async_watch(bson::array pipeline = {}, change_stream_options options = {}, T&& token = {}) {
        return spawn(watch_impl(t_, std::move(pipeline), std::move(options)), std::forward<T>(token));
    }
    change_stream watch(bson::array pipeline = {}, change_stream_options options = {});

    // ---- indexes and the collection itself

    /// The names of the indexes created, in order.
    template <boost::asio::completion_token_for<names_signature> T = boost::asio::deferred_t>
    auto async_create_indexes(std::vector<index_model> indexes, T&& token = {}) {
        return spawn(create_indexes_impl(t_, std::move(indexes), {}), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<names_signature> T = boost::asio::deferred_t>
    auto async_create_indexes(std::vector<index_model> indexes, create_indexes_options options, T&& token = {}) {
        return spawn(create_indexes_impl(t_, std::move(indexes), std::move(options)), std::forward<T>(token));
    }
    /// Blocking: the models' documents are read in place (nothing is copied).
    std::vector<std::string> create_indexes(std::span<const index_model> indexes, create_indexes_options options = {});
    std::vector<std::string> create_indexes(std::initializer_list<index_model> indexes, create_indexes_options options = {}) {
        return create_indexes(std::span<const index_model>(indexes.begin(), indexes.size()), std::move(options));
    }
    /// One index; its name.
    template <boost::asio::completion_token_for<name_signature> T = boost::asio::deferred_t>
    auto async_create_index(bson::document keys, bson::document options = {}, T&& token = {}) {
        return spawn(create_index_impl(t_, std::move(keys), std::move(options)), std::forward<T>(token));
    }
    std::string create_index(bson::document_view keys, bson::document_view options = {});
    /// A cursor over the index descriptions ({v, key, name, ...}).
    template <boost::asio::completion_token_for<find_signature> T = boost::asio::deferred_t>
    auto async_list_indexes(T&& token = {}) {
        return spawn(list_indexes_impl(t_, {}), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<find_signature> T = boost::asio::deferred_t>
    auto async_list_indexes(list_indexes_options options, T&& token = {}) {
        return spawn(list_indexes_impl(t_, std::move(options)), std::forward<T>(token));
    }
    cursor list_indexes(list_indexes_options options = {});
    /// dropIndexes by name ("*": every index but _id's).
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_drop_index(std::string index_name, T&& token = {}) {
        return spawn(drop_index_impl(t_, std::move(index_name), {}), std::forward<T>(token));
    }
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_drop_index(std::string index_name, drop_index_options options, T&& token = {}) {
        return spawn(drop_index_impl(t_, std::move(index_name), std::move(options)), std::forward<T>(token));
    }
    void drop_index(std::string index_name, drop_index_options options = {});
    /// Every index but _id's.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_drop_indexes(drop_index_options options = {}, T&& token = {}) {
        return async_drop_index("*", std::move(options), std::forward<T>(token));
    }
    void drop_indexes(drop_index_options options = {}) { drop_index("*", std::move(options)); }

    /// Drops the collection; dropping one that does not exist is not an error.
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_drop(T&& token = {}) {
        return spawn(drop_impl(t_), std::forward<T>(token));
    }
    void drop();
    /// renameCollection to `new_name` in the same database (NamespaceExists unless drop_target).
    template <boost::asio::completion_token_for<done_signature> T = boost::asio::deferred_t>
    auto async_rename(std::string new_name, bool drop_target = false, T&& token = {}) {
        return spawn(rename_impl(t_, std::move(new_name), drop_target), std::forward<T>(token));
    }
    void rename(std::string new_name, bool drop_target = false);

private:
    friend class database;
    friend class client;
    // What every operation of this handle needs. The coroutines take a copy: they must not refer
    // to this handle, which may be gone by the time they run (the copy keeps the core alive).
    struct target {
        std::shared_ptr<detail::client_core> core;
        std::string db, coll;
        handle_options settings;
        std::shared_ptr<detail::session_state> session;  // with_session: every operation's
    };
    enum class modify_kind { update, replace, remove };
    explicit collection(target t) : t_(std::move(t)) {}
    boost::asio::any_io_executor executor() const;
    template <class R, class T>
    auto spawn(boost::asio::awaitable<R> work, T&& token) const {
        return boost::asio::co_spawn(executor(), std::move(work), std::forward<T>(token));
    }
    static boost::asio::awaitable<insert_one_result> insert_one_impl(target t, bson::document document, insert_one_options o);
    static boost::asio::awaitable<insert_many_result> insert_many_impl(target t, std::vector<bson::document> documents,
                                                                       insert_many_options o);
    static boost::asio::awaitable<update_result> update_impl(target t, bson::document filter, update_spec update,
                                                             update_options o, bool multi, bool replace);
    static boost::asio::awaitable<delete_result> delete_impl(target t, bson::document filter, delete_options o, bool multi);
    static boost::asio::awaitable<bulk_write_result> bulk_write_impl(target t, std::vector<write_model> models,
                                                                     bulk_write_options o);
    static boost::asio::awaitable<std::optional<bson::document>> find_and_modify_impl(target t, bson::document filter,
                                                                                      update_spec change,
                                                                                      find_one_and_modify_options o,
                                                                                      modify_kind kind);
    static boost::asio::awaitable<cursor> find_impl(target t, bson::document filter, find_options o);
    static boost::asio::awaitable<std::optional<bson::document>> find_one_impl(target t, bson::document filter, find_options o);
    static boost::asio::awaitable<std::int64_t> count_documents_impl(target t, bson::document filter, count_options o);
    static boost::asio::awaitable<std::int64_t> estimated_count_impl(target t, estimated_count_options o);
    static boost::asio::awaitable<std::int64_t> count_impl(target t, bson::document filter, count_options o);
    static boost::asio::awaitable<bson::array> distinct_impl(target t, std::string key, bson::document filter,
                                                             distinct_options o);
    static boost::asio::awaitable<cursor> aggregate_impl(target t, bson::array pipeline, aggregate_options o);
    static boost::asio::awaitable<change_stream> watch_impl(target t, bson::array pipeline, change_stream_options o);
    static boost::asio::awaitable<std::vector<std::string>> create_indexes_impl(target t, std::vector<index_model> indexes,
                                                                                create_indexes_options o);
    static boost::asio::awaitable<std::string> create_index_impl(target t, bson::document keys, bson::document options);
    static boost::asio::awaitable<cursor> list_indexes_impl(target t, list_indexes_options o);
    static boost::asio::awaitable<void> drop_index_impl(target t, std::string index, drop_index_options o);
    static boost::asio::awaitable<void> drop_impl(target t);
    static boost::asio::awaitable<void> rename_impl(target t, std::string to, bool drop_target);

    target t_;
};

}  // namespace trellis
