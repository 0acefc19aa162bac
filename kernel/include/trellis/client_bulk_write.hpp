// client::bulk_write (the bulk write spec, MongoDB 8.0's bulkWrite command): inserts, updates,
// replaces and deletes on any collections of the deployment, in as few commands as the
// server's limits allow.
//
//   std::vector<trellis::namespace_write_model> models;
//   models.push_back({"app.events", trellis::insert_one_model{doc}});
//   models.push_back({"app.stats", trellis::update_one_model{filter, update}});
//   auto r = client.bulk_write(std::move(models), {.verbose_results = true});
//
// Its types are its own (the spec asks for them): the options, the result and the error are not
// the collection bulk_write's. The write models are the same (collection.hpp), each with the
// namespace it applies to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trellis/collection.hpp"
#include "trellis/errors.hpp"
#include "trellis/options.hpp"
#include "trellis/write_error.hpp"

namespace trellis {

/// One write and the collection it applies to: `ns` is "database.collection".
struct namespace_write_model {
    std::string ns;
    write_model model;
};

struct client_bulk_write_options {
    /// Stop at the first write error (true), or attempt every model.
    bool ordered = true;
    std::optional<bool> bypass_document_validation;
    /// Variables for the models' filters and pipelines ($$name).
    std::optional<bson::document> let;
    std::optional<comment_type> comment;
    /// Unset: the client's.
    std::optional<trellis::write_concern> write_concern;
    /// Results of every model that succeeded (insert_results, update_results, delete_results);
    /// false: the counts only (the server sends back errors alone, which is cheaper).
    bool verbose_results = false;
    std::optional<bool> raw_data;  ///< internal: see raw_data_note (trellis/collection.hpp)
};

struct client_insert_one_result {
    bson::document inserted_id;  ///< {_id: value}
};
struct client_update_result {
    std::int64_t matched_count = 0;
    std::int64_t modified_count = 0;
    std::optional<bson::document> upserted_id;  ///< {_id: value} when an upsert inserted ({_id: null} is an id)
};
struct client_delete_result {
    std::int64_t deleted_count = 0;
};

/// What a client bulk write did. With an unacknowledged write concern nothing is known:
/// acknowledged is false and every count 0. The three maps, keyed by the model's index, are
/// filled only when has_verbose_results (verbose_results was asked for); empty otherwise.
struct client_bulk_write_result {
    bool acknowledged = true;
    bool has_verbose_results = false;
    std::int64_t inserted_count = 0;
    std::int64_t upserted_count = 0;
    std::int64_t matched_count = 0;
    std::int64_t modified_count = 0;
    std::int64_t deleted_count = 0;
    std::map<std::size_t, client_insert_one_result> insert_results;
    std::map<std::size_t, client_update_result> update_results;
    std::map<std::size_t, client_delete_result> delete_results;
};

/// A client bulk write that did not fully succeed: the write errors by model index, every
/// write concern error (one per command that had one), the top-level error that stopped it if
/// one did (a network or command error: top_level_error(), whose kind, codes, labels and text
/// this error takes), and what was done before, when anything was (partial_result()).
/// Without a top-level error: code() is write_error (duplicate_key when the first write error
/// is 11000) and server_code() the first write error's code (else the first write concern
/// error's). A top-level error with nothing done before it is thrown as it is, not as this.
class client_bulk_write_error : public operation_failure {
public:
    client_bulk_write_error(errc kind, int server_code, std::string code_name, std::vector<std::string> labels,
                            const std::string& what, std::exception_ptr top_level, std::map<std::size_t, write_error_detail> write_errors,
                            std::vector<write_error_detail> write_concern_errors, std::optional<client_bulk_write_result> partial)
        : operation_failure(server_code, std::move(code_name), std::move(labels), what, kind),
          top_level_(std::move(top_level)), write_errors_(std::move(write_errors)),
          write_concern_errors_(std::move(write_concern_errors)), partial_(std::move(partial)) {}
    /// The network or command error that stopped the bulk write (a command_failure keeps the
    /// server's reply); null when only write errors or write concern errors occurred.
    const std::exception_ptr& top_level_error() const noexcept { return top_level_; }
    /// By the model's index in the list given; at most one when ordered.
    const std::map<std::size_t, write_error_detail>& write_errors() const noexcept { return write_errors_; }
    const std::vector<write_error_detail>& write_concern_errors() const noexcept { return write_concern_errors_; }
    /// Set when at least one write is known to have succeeded.
    const std::optional<client_bulk_write_result>& partial_result() const noexcept { return partial_; }

private:
    std::exception_ptr top_level_;
    std::map<std::size_t, write_error_detail> write_errors_;
    std::vector<write_error_detail> write_concern_errors_;
    std::optional<client_bulk_write_result> partial_;
};

}  // namespace trellis
