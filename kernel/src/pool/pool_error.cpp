#include "pool/pool_error.hpp"

#include <string>

namespace trellis::pool {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "trellis.pool"; }

    std::string message(int value) const override {
        switch (static_cast<pool_errc>(value)) {
            case pool_errc::pool_closed: return "Attempted to check out a connection from closed connection pool";
            case pool_errc::pool_cleared: return "Connection pool was cleared";
            case pool_errc::wait_queue_timeout: return "Timed out while checking out a connection from connection pool";
        }
        return "unknown pool error " + std::to_string(value);
    }
};

}  // namespace

const std::error_category& pool_error_category() noexcept {
    static const category instance;
    return instance;
}

}  // namespace trellis::pool
