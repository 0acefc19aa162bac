// The error client_session::with_transaction throws when its time limit runs out.
#pragma once

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "trellis/errors.hpp"

namespace trellis {

/// with_transaction gave up retrying: its time limit (the convenient transactions API spec's
/// 120 s) ran out. It carries the last error that made it retry: that error's server code, code
/// name and labels (TransientTransactionError, UnknownTransactionCommitResult) are this one's,
/// and last_error() rethrows it as it was thrown. code() is errc::operation_failure.
class transaction_timeout : public operation_failure {
public:
    transaction_timeout(std::exception_ptr last, int server_code, std::string code_name, std::vector<std::string> labels,
                        const std::string& what)
        : operation_failure(server_code, std::move(code_name), std::move(labels), what), last_(std::move(last)) {}
    const std::exception_ptr& last_error() const noexcept { return last_; }

private:
    std::exception_ptr last_;
};

}  // namespace trellis
