// client::bulk_write: the bulkWrite command (MongoDB 8.0) of the bulk write spec. The models, in
// their order, are cut into batches by the connection's limits (maxWriteBatchSize, and
// maxMessageSizeBytes less 1000 bytes for the ops and nsInfo document sequences); each batch
// names only its own namespaces. The replies (counts, the results cursor's documents, write
// concern errors) are gathered into one result or one client_bulk_write_error. No I/O.
#pragma once

#include <cstddef>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ops/common.hpp"
#include "trellis/client_bulk_write.hpp"

namespace trellis::ops {

/// The server version the bulkWrite command needs: 8.0 (wire version 25).
inline constexpr int client_bulk_write_min_wire = 25;

struct client_bulk_write_op {
    struct batch {
        std::size_t first = 0;  ///< index of its first model
        std::size_t count = 0;  ///< models first .. first + count - 1
        /// Retryable as a write: no multi-document model (update_many, delete_many).
        bool retryable = true;
    };
    struct target {
        std::string db, coll;
    };

    std::vector<write_model> models;  // inserts carry their _id
    std::vector<target> namespaces;   // per model
    client_bulk_write_options options;
    write_concern wc;
    std::vector<bson::document> inserted_ids;  // {_id: v} per insert model (empty for others)

    /// Checks everything the spec refuses before sending (no models, an unacknowledged write
    /// concern with ordered or verbose_results, an update without operators, a replacement
    /// with them, sort on update_many, a namespace that is not "db.coll"): invalid_argument
    /// (invalid_name for the namespace) naming the model's index. Gives inserts an _id.
    static client_bulk_write_op make(std::vector<namespace_write_model> models, client_bulk_write_options options,
                                     write_concern wc);
    /// The batches for a connection's limits; invalid_argument when a model cannot fit in a
    /// message by itself (or an insert's document is over maxBsonObjectSize).
    std::vector<batch> batches(const connection_limits& limits) const;
    /// The batch that starts at model `from`, for a connection's limits (as batches()).
    batch next_batch(const connection_limits& limits, std::size_t from) const;
    struct sequences {
        std::vector<bson::document> ops, ns_info;
    };
    /// A batch's ops and nsInfo document sequences (command() is base_command() with them).
    sequences sequences_of(const batch& b) const;
    /// {bulkWrite: 1, errorsOnly, ordered, ..., ops: [...], nsInfo: [...]}: ops and nsInfo go
    /// out as document sequences.
    bson::document command(const batch& b) const;
    /// The command without ops and nsInfo (what batching counts against the message size).
    bson::document base_command() const;
    /// One model's ops entry, `ns_index` being its namespace's place in the batch's nsInfo.
    bson::document op_document(std::size_t model, std::int32_t ns_index) const;
};

/// What the replies of the batches said, gathered.
class client_bulk_write_results {
public:
    explicit client_bulk_write_results(const client_bulk_write_op& op);

    /// A batch's reply: its counts (nInserted, ...) and its writeConcernError, if any.
    void reply(const client_bulk_write_op::batch& b, bson::document_view reply);
    /// One document of the batch's results cursor ({ok, idx, n, ...}); idx is the batch's.
    void result(const client_bulk_write_op::batch& b, bson::document_view doc);
    /// After the batch's cursor was read: whether a write of it is known to have succeeded.
    void end_batch(const client_bulk_write_op::batch& b);
    /// An unacknowledged batch went out.
    void unacknowledged() { result_.acknowledged = false; }

    /// Ordered, and a write failed: no further batch.
    bool stopped() const { return op_.options.ordered && !write_errors_.empty(); }
    /// The result, or the client_bulk_write_error (thrown) for write errors and write concern errors.
    client_bulk_write_result finish() const;
    /// A top-level error `e` (a network or command error, a failed getMore): `e` itself when
    /// nothing was learnt before it, else a client_bulk_write_error holding it and what was.
    std::exception_ptr top_level(std::exception_ptr e) const;

private:
    client_bulk_write_error failure(std::exception_ptr top) const;

    const client_bulk_write_op& op_;
    client_bulk_write_result result_;
    bool succeeded_ = false;  // a write is known to have succeeded (the partial result is set)
    std::map<std::size_t, write_error_detail> write_errors_;
    std::vector<write_error_detail> write_concern_errors_;
    std::vector<std::string> labels_;
    // The batch under way: its nErrors and the smallest idx of its errors.
    std::int64_t batch_errors_ = 0;
    std::optional<std::int64_t> first_error_idx_;
};

}  // namespace trellis::ops
