// wait(): a blocking face's wait for its operation on the client's strand (on the client's own
// io_context, the calling thread runs it meanwhile: client/runtime.hpp).
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "client/core.hpp"
#include "client/runtime.hpp"

namespace trellis::detail {

namespace asio = boost::asio;

template <class T>
T wait(const std::shared_ptr<client_core>& core, asio::awaitable<T> op) {
    core->check_blocking({});
    own_runtime* rt = core->own_runtime();
    if (!rt) return asio::co_spawn(core->strand(), std::move(op), asio::use_future).get();
    // The client's own io_context: this thread runs it until the operation is done.
    blocking_call call;
    std::exception_ptr failure;
    if constexpr (std::is_void_v<T>) {
        asio::co_spawn(core->strand(), std::move(op), [rt, &call, &failure](std::exception_ptr e) {
            failure = std::move(e);
            rt->complete(call);
        });
        rt->wait(call);
        if (failure) std::rethrow_exception(failure);
    } else {
        std::optional<T> result;
        asio::co_spawn(core->strand(), std::move(op), [rt, &call, &failure, &result](std::exception_ptr e, T value) {
            if (e) failure = std::move(e);
            else result.emplace(std::move(value));
            rt->complete(call);
        });
        rt->wait(call);
        if (failure) std::rethrow_exception(failure);
        return std::move(*result);
    }
}


}  // namespace trellis::detail
