// Server errors with their reply: a command the server refused (command_failure), and
// everything the server said about a write it (partly) refused (bulk_write_error).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trellis/bson/document.hpp"
#include "trellis/errors.hpp"

namespace trellis {

/// An operation_failure that came with a server reply: every command error the server answered
/// (ok: 0) is thrown as one. reply() is the whole document: {ok: 0, errmsg, code, codeName, ...}
/// with whatever else the server sent (keyPattern/keyValue of a duplicate key, errInfo of a
/// failed validation). Catch operation_failure for the code and labels, this for the reply.
class command_failure : public operation_failure {
public:
    command_failure(int server_code, std::string code_name, std::vector<std::string> labels, const std::string& what,
                    errc kind, bson::document reply)
        : operation_failure(server_code, std::move(code_name), std::move(labels), what, kind), reply_(std::move(reply)) {}
    const bson::document& reply() const noexcept { return reply_; }

private:
    bson::document reply_;
};

/// One write the server refused, as its writeErrors entry says.
struct write_error_detail {
    std::int64_t index = 0;  ///< position of the write in the operation's list (insert_many: the document's)
    int code = 0;
    std::string code_name;
    std::string message;
    bson::document details;  ///< errInfo, when the server sent one
};

/// What a bulk write did (and, in a bulk_write_error, what it did before or besides the errors).
struct bulk_write_result {
    std::int64_t inserted_count = 0;
    std::int64_t matched_count = 0;
    std::int64_t modified_count = 0;
    std::int64_t deleted_count = 0;
    std::int64_t upserted_count = 0;
    std::map<std::int64_t, bson::document> inserted_ids;  ///< model index -> {_id: value}, of the inserts done
    std::map<std::int64_t, bson::document> upserted_ids;  ///< model index -> {_id: value}
    bool acknowledged = true;
};

/// A write the server answered with write errors or a write concern error: every one it sent,
/// and the counts of what was done nevertheless. code() is errc::duplicate_key when the first
/// write error is 11000, errc::write_error otherwise; server_code() the first error's code.
class bulk_write_error : public command_failure {
public:
    bulk_write_error(std::vector<write_error_detail> errors, std::optional<write_error_detail> write_concern_error,
                     std::vector<std::string> labels, bson::document reply, const std::string& what,
                     std::optional<bulk_write_result> partial = std::nullopt)
        : command_failure(!errors.empty() ? errors.front().code : write_concern_error ? write_concern_error->code : 0,
                          !errors.empty() ? errors.front().code_name
                                          : write_concern_error ? write_concern_error->code_name : std::string(),
                          std::move(labels), what,
                          !errors.empty() && errors.front().code == 11000 ? errc::duplicate_key : errc::write_error,
                          std::move(reply)),
          errors_(std::move(errors)), write_concern_error_(std::move(write_concern_error)), partial_(std::move(partial)) {}
    /// A bulk write stopped by another error (a network error, a command error): that error's
    /// kind, code, code name, labels, text and reply (empty without one), and what was done before.
    bulk_write_error(errc kind, int server_code, std::string code_name, std::vector<std::string> labels, const std::string& what,
                     bson::document reply, bulk_write_result partial)
        : command_failure(server_code, std::move(code_name), std::move(labels), what, kind, std::move(reply)),
          partial_(std::move(partial)) {}
    const std::vector<write_error_detail>& write_errors() const noexcept { return errors_; }
    const std::optional<write_error_detail>& write_concern_error() const noexcept { return write_concern_error_; }
    // reply() (command_failure's): the server's whole reply (n, nModified, upserted, ... of what succeeded).
    /// bulk_write and insert_many: what was done across every batch, errors aside.
    const std::optional<bulk_write_result>& partial_result() const noexcept { return partial_; }

private:
    std::vector<write_error_detail> errors_;
    std::optional<write_error_detail> write_concern_error_;
    std::optional<bulk_write_result> partial_;
};

}  // namespace trellis
