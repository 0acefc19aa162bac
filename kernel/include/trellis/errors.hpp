// The one error family of Trellis.
//
// Every failure is a trellis::error (a std::system_error) whose code belongs to
// trellis::error_category(). Async completions carry the std::error_code; the
// sync faces throw the matching exception class below. Each class keeps what a
// caller needs to act on the failure (a byte offset, a location, a server reply).
#pragma once

#include <cstddef>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace trellis {

enum class errc : int {
    // Data layer (BSON, Extended JSON, wire protocol).
    bson_invalid = 1,       // malformed BSON bytes
    bson_type_mismatch,     // typed accessor used on an element of another type
    bson_key_not_found,     // lookup of a key that the document does not have
    bson_too_large,         // a document over the size limit
    json_invalid,           // malformed JSON or Extended JSON text
    protocol_error,         // malformed wire protocol frame
    message_too_large,      // a wire message over maxMessageSizeBytes
    compression_error,      // unknown compressor or a failed (de)compression
    // Driver layer (later issues fill these in).
    connection_failure,
    auto_reconnect,
    not_primary,
    server_selection_timeout,
    operation_failure,
    write_error,
    duplicate_key,
    configuration_error,
    invalid_name,
    plugin_error,
    // Connections and the pool (CMAP's error names in comments).
    pool_closed,            // PoolClosedError: the pool was closed; not retryable
    pool_cleared,           // PoolClearedError: the pool is paused or was cleared while waiting;
                            // retryable, and it must not mark the server Unknown
    wait_queue_timeout,     // WaitQueueTimeoutError: no connection within wait_queue_timeout
    network_timeout,        // connect_timeout or socket_timeout expired
    incompatible_server,    // the server's wire versions do not overlap ours (6 to 25)
    authentication_failed,  // a wrong password, a refused certificate, no such mechanism
    invalid_argument,       // refused before sending: an update without operators, an oversized document
    operation_timeout,      // MongoOperationTimeoutError: the operation's timeoutMS (CSOT) expired
};

}  // namespace trellis

template <>
struct std::is_error_code_enum<trellis::errc> : std::true_type {};

namespace trellis {

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// Base of every exception Trellis throws.
class error : public std::system_error {
public:
    error(errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}
    error(std::error_code code, const std::string& what) : std::system_error(code, what) {}
};

/// Malformed or mistyped BSON, or malformed (Extended) JSON.
/// offset() is the byte offset in the input where the problem was found
/// (npos when there is no input position, e.g. a type mismatch on a value).
class bson_error : public error {
public:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    bson_error(errc code, const std::string& what, std::size_t offset = npos)
        : error(code, offset == npos ? what : what + " (at byte " + std::to_string(offset) + ")"),
          offset_(offset) {}

    std::size_t offset() const noexcept { return offset_; }

private:
    std::size_t offset_;
};

/// A wire protocol frame that cannot be decoded or encoded.
class protocol_error : public error {
public:
    using error::error;
};

/// A bad connection string, option value or combination of options. what() names the
/// option (or host) and the reason.
class configuration_error : public error {
public:
    using error::error;
    explicit configuration_error(const std::string& what) : error(errc::configuration_error, what) {}
};

/// A command the server answered with ok: 0 (or a write concern error): the server's code,
/// its name and the error labels (RetryableWriteError, TransientTransactionError, ...).
class operation_failure : public error {
public:
    operation_failure(int server_code, std::string code_name, std::vector<std::string> labels, const std::string& what,
                      errc kind = errc::operation_failure)
        : error(kind, what), server_code_(server_code), code_name_(std::move(code_name)), labels_(std::move(labels)) {}
    int server_code() const noexcept { return server_code_; }
    const std::string& code_name() const noexcept { return code_name_; }
    const std::vector<std::string>& error_labels() const noexcept { return labels_; }
    bool has_error_label(std::string_view label) const noexcept {
        for (const auto& l : labels_)
            if (l == label) return true;
        return false;
    }
    /// A label the driver adds (transactions: TransientTransactionError, UnknownTransactionCommitResult).
    void add_error_label(std::string label) {
        if (!has_error_label(label)) labels_.push_back(std::move(label));
    }

private:
    int server_code_;
    std::string code_name_;
    std::vector<std::string> labels_;
};

/// An operation's timeoutMS (client-side operations timeout) expired: the spec's
/// MongoOperationTimeoutError. cause() is the error of the blocking step that ran out of time
/// (server selection, connection check-out, a socket timeout, the server's MaxTimeMSExpired 50),
/// null when the timeout was found before a step began; what() includes its text.
class operation_timeout : public error {
public:
    operation_timeout(const std::string& what, std::exception_ptr cause = nullptr)
        : error(errc::operation_timeout, what), cause_(std::move(cause)) {}
    const std::exception_ptr& cause() const noexcept { return cause_; }
    /// The cause's code (errc::operation_timeout when there is none).
    std::error_code cause_code() const noexcept {
        try {
            if (cause_) std::rethrow_exception(cause_);
        } catch (const std::system_error& e) {
            return e.code();
        } catch (...) {
        }
        return code();
    }

private:
    std::exception_ptr cause_;
};

/// A plugin that cannot be loaded or created: path() names its file, kind()
/// its kind when known ("transport", ...; empty otherwise).
class plugin_error : public error {
public:
    plugin_error(std::string path, std::string kind, const std::string& what)
        : error(errc::plugin_error, what), path_(std::move(path)), kind_(std::move(kind)) {}
    const std::string& path() const noexcept { return path_; }
    const std::string& kind() const noexcept { return kind_; }

private:
    std::string path_;
    std::string kind_;
};

}  // namespace trellis
