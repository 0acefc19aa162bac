#include "trellis/errors.hpp"

namespace trellis {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "trellis"; }

    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::bson_invalid: return "invalid BSON";
            case errc::bson_type_mismatch: return "BSON type mismatch";
            case errc::bson_key_not_found: return "BSON key not found";
            case errc::bson_too_large: return "BSON document too large";
            case errc::json_invalid: return "invalid JSON or Extended JSON";
            case errc::protocol_error: return "wire protocol error";
            case errc::message_too_large: return "wire message too large";
            case errc::compression_error: return "compression error";
            case errc::connection_failure: return "connection failure";
            case errc::auto_reconnect: return "connection lost, will reconnect";
            case errc::not_primary: return "not primary";
            case errc::server_selection_timeout: return "server selection timed out";
            case errc::operation_failure: return "operation failed";
            case errc::write_error: return "write error";
            case errc::duplicate_key: return "duplicate key";
            case errc::configuration_error: return "configuration error";
            case errc::invalid_name: return "invalid name";
            case errc::plugin_error: return "plugin error";
            case errc::pool_closed: return "Attempted to check out a connection from closed connection pool";
            case errc::pool_cleared: return "Connection pool was cleared";
            case errc::wait_queue_timeout: return "Timed out while checking out a connection from connection pool";
            case errc::network_timeout: return "network timeout";
            case errc::incompatible_server: return "incompatible server wire version";
            case errc::authentication_failed: return "authentication failed";
            case errc::invalid_argument: return "invalid argument";
            case errc::operation_timeout: return "operation timed out (timeoutMS)";
        }
        return "unknown trellis error " + std::to_string(value);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const category instance;
    return instance;
}

}  // namespace trellis
