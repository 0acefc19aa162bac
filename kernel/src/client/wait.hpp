// How a blocking face waits for its async operation: on the client's own io_context (this
// thread may run it, and does its operation's I/O: runtime.hpp) or, given an executor, on a
// future.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_future.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>

#include "client/core.hpp"
#include "client/runtime.hpp"

namespace trellis::detail {

/// Enters the runtime and spawns `op` on the strand with `call` offered to its first step, in
/// which execute() takes it: the operation's commands park their I/O there.
template <class T, class Handler>
void spawn_for(const std::shared_ptr<client_core>& core, blocking_call& call, boost::asio::awaitable<T> op, Handler handler) {
    namespace asio = boost::asio;
    call.runtime->enter();
    struct abandon_unless_posted {
        blocking_call& call;
        bool posted = false;
        ~abandon_unless_posted() {
            if (!posted) call.runtime->abandon();
        }
    } guard{call};
    asio::dispatch(core->strand(), [strand = core->strand(), &call, op = std::move(op), handler = std::move(handler)]() mutable {
        starting_parking() = &call;
        asio::co_spawn(strand, std::move(op), std::move(handler));  // on the strand: its first step runs now
        starting_parking() = nullptr;
    });
    guard.posted = true;
}

template <class T>
T wait(const std::shared_ptr<client_core>& core, boost::asio::awaitable<T> op) {
    namespace asio = boost::asio;
    core->check_blocking({});
    own_runtime* rt = core->own_runtime();
    if (!rt) return asio::co_spawn(core->strand(), std::move(op), asio::use_future).get();
    // The client's own io_context: this thread runs it until the operation is done.
    blocking_call call(*rt);
    std::exception_ptr failure;
    if constexpr (std::is_void_v<T>) {
        spawn_for(core, call, std::move(op), [rt, &call, &failure](std::exception_ptr e) {
            failure = std::move(e);
            rt->complete(call);
        });
        rt->wait(call);
        if (failure) std::rethrow_exception(failure);
    } else {
        std::optional<T> result;
        spawn_for(core, call, std::move(op), [rt, &call, &failure, &result](std::exception_ptr e, T value) {
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
