// bulk_write: the models split into insert, update and delete commands (ordered: consecutive
// runs of one kind; unordered: one group per kind), each split again at the server's limits;
// the replies merged into one result, write errors indexed by model.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "ops/update.hpp"

namespace trellis::ops {

struct bulk_write_op {
    enum class kind { insert, update, remove };
    /// One command: models of one kind, by their index in `models`.
    struct batch {
        kind what = kind::insert;
        std::vector<std::size_t> models;
        /// Retryable as a write: no multi-document statement (update_many, delete_many).
        bool retryable = true;
        bool hinted = false;  ///< a statement has a hint
    };

    std::string collection;
    std::vector<write_model> models;
    bulk_write_options options;
    write_concern wc;
    std::vector<bson::document> inserted_ids;  // {_id: v} per model (empty for non-inserts)
    /// The models in the order they are sent (ordered: as given; unordered: by kind).
    std::vector<std::size_t> order;

    /// Checks every model (invalid_argument naming the model's index) and gives inserts an _id.
    static bulk_write_op make(std::string collection, std::vector<write_model> models, bulk_write_options options,
                              write_concern wc);
    /// The batch that starts at `from` (a place in `order`): one kind, within the limits.
    batch next_batch(const connection_limits& limits, std::size_t from) const;
    std::vector<batch> batches(const connection_limits& limits) const;
    /// The command of a batch's kind without its statements, which go in sequence_of(kind).
    bson::document head(kind k) const;
    static const char* sequence_of(kind k);
    kind kind_at(std::size_t from) const;  ///< the kind of the model at `from` in `order`
    /// The batch's statements; an insert's is the model's document itself, borrowed: the
    /// result must not outlive this op.
    std::vector<bson::document> statements(const batch& b) const;
    bson::document command(const batch& b) const;

    /// Adds what a batch's reply says was done (n, nModified, upserted; the inserts before the
    /// first write error, or all but the failed ones when unordered) to `into`.
    void merge(const batch& b, bson::document_view reply, const std::vector<write_error_detail>& batch_errors,
               bulk_write_result& into) const;
};

}  // namespace trellis::ops
