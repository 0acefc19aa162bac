// A query's results, fetched a batch at a time: the first batch comes with find, the next
// ones by getMore on the server the cursor lives on, as the cursor is iterated. Closing a
// cursor that the server still holds hands it to the client's cursor manager plugin (by
// default "immediate", which sends killCursors at once).
//
//   auto c = coll.find(filter, {.batch_size = 100});
//   while (auto doc = c.next()) use(*doc);
//   for (const bson::document& doc : coll.find(filter)) use(doc);   // the same, blocking
//
//   // async: any completion token; completes with (std::exception_ptr, std::optional<document>)
//   auto doc = co_await c.async_next(asio::use_awaitable);
#pragma once

#include <cstdint>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include "trellis/bson/document.hpp"

namespace trellis {

namespace detail {
class client_core;
struct cursor_state;
}  // namespace detail

class cursor {
public:
    using next_signature = void(std::exception_ptr, std::optional<bson::document>);

    cursor() = default;
    cursor(cursor&&) noexcept = default;
    cursor& operator=(cursor&&) noexcept = default;
    /// Closes the cursor (see close()).
    ~cursor();

    /// The next document, or nullopt at the end. Blocks; throws trellis::error.
    std::optional<bson::document> next();

    /// An input iterator over the remaining documents (blocking, as next()).
    class iterator {
    public:
        using value_type = bson::document;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        const bson::document& operator*() const { return *current_; }
        const bson::document* operator->() const { return &*current_; }
        iterator& operator++() {
            current_ = cursor_->next();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& i, std::default_sentinel_t) noexcept { return !i.current_.has_value(); }

    private:
        friend class cursor;
        explicit iterator(cursor* c) : cursor_(c), current_(c->next()) {}
        cursor* cursor_ = nullptr;
        std::optional<bson::document> current_;
    };
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() const noexcept { return {}; }

    template <boost::asio::completion_token_for<next_signature> CompletionToken = boost::asio::deferred_t>
    auto async_next(CompletionToken&& token = {}) {
        return boost::asio::co_spawn(executor(), next_impl(state_), std::forward<CompletionToken>(token));
    }

    /// The server-side id; 0 once the server has no more results.
    std::int64_t id() const noexcept;
    /// "db.collection".
    const std::string& ns() const noexcept;
    /// "host:port" of the server the cursor lives on.
    const std::string& address() const noexcept;
    bool alive() const noexcept;

    /// Ends the cursor: the client's cursor manager decides when killCursors goes to its server.
    /// A getMore in flight (async_next) finishes first, then completes with nullopt. After the
    /// client is gone this only lets go (the server times the cursor out).
    void close() noexcept;

private:
    friend class detail::client_core;
    explicit cursor(std::shared_ptr<detail::cursor_state> state) : state_(std::move(state)) {}
    boost::asio::any_io_executor executor() const;
    static boost::asio::awaitable<std::optional<bson::document>> next_impl(std::shared_ptr<detail::cursor_state> state);

    std::shared_ptr<detail::cursor_state> state_;
};

}  // namespace trellis
