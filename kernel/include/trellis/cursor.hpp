// A query's results, fetched a batch at a time: the first batch comes with find, the next
// ones by getMore on the server the cursor lives on, as the cursor is iterated. Closing a
// cursor that the server still holds hands it to the client's cursor manager plugin (by
// default "immediate", which sends killCursors at once).
//
//   auto c = coll.find(filter, {.batch_size = 100});
//   while (auto doc = c.next()) use(*doc);
//   while (auto view = c.next_view()) use(*view);                     // no copy: valid until the next call
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
#include <type_traits>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "trellis/bson/document.hpp"

namespace trellis {

namespace detail {
class client_core;
struct cursor_state;
}  // namespace detail

class cursor {
public:
    using next_signature = void(std::exception_ptr, std::optional<bson::document>);
    using next_view_signature = void(std::exception_ptr, std::optional<bson::document_view>);

    cursor() = default;
    cursor(cursor&&) noexcept = default;
    cursor& operator=(cursor&&) noexcept = default;
    /// Closes the cursor (see close()).
    ~cursor();

    /// The next document, or nullopt at the end. Blocks; throws trellis::error.
    /// A tailable cursor (find's cursor_type tailable / tailable_await) answers nullopt when a
    /// getMore brought nothing new (tailable_await: after waiting up to max_await_time) while the
    /// server keeps the cursor: alive() is then still true and a later next() looks again.
    std::optional<bson::document> next();
    /// The next document as a view into the batch in hand, or nullopt at the end, as next() but
    /// without a copy: it stays valid until this cursor's next call to next(), next_view(),
    /// async_next() or async_next_view(), or its end (take a bson::document of it to keep it longer).
    std::optional<bson::document_view> next_view();

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

    /// The next document, or nullopt at the end. While the batch in hand lasts, the document is
    /// taken from it and the completion posted to the handler's executor; a getMore goes
    /// through the client's strand. With asio::use_awaitable, a document in hand is the
    /// awaitable's result at once (the coroutine goes on without being posted).
    template <boost::asio::completion_token_for<next_signature> CompletionToken = boost::asio::deferred_t>
    auto async_next(CompletionToken&& token = {}) {
        if (!state_) throw_empty();
        if constexpr (std::is_same_v<std::decay_t<CompletionToken>, boost::asio::use_awaitable_t<boost::asio::any_io_executor>>) {
            (void)token;
            return next_awaitable(state_, executor());
        } else {
            return boost::asio::async_initiate<CompletionToken, next_signature>(
                [](auto handler, std::shared_ptr<detail::cursor_state> state, boost::asio::any_io_executor strand) {
                    if (auto d = take_buffered(*state)) {
                        // Posted, never run inline: a handler is not called from its initiating function.
                        auto ex = boost::asio::get_associated_executor(handler, strand);
                        boost::asio::post(ex, boost::asio::append(std::move(handler), std::exception_ptr(), std::move(d)));
                        return;
                    }
                    boost::asio::co_spawn(strand, next_impl(std::move(state)), std::move(handler));
                },
                token, state_, executor());
        }
    }

    /// As async_next, the document as a view into the batch in hand (as next_view(): valid until
    /// this cursor's next call), so iterating copies nothing.
    template <boost::asio::completion_token_for<next_view_signature> CompletionToken = boost::asio::deferred_t>
    auto async_next_view(CompletionToken&& token = {}) {
        if (!state_) throw_empty();
        if constexpr (std::is_same_v<std::decay_t<CompletionToken>, boost::asio::use_awaitable_t<boost::asio::any_io_executor>>) {
            (void)token;
            return next_view_awaitable(state_, executor());
        } else {
            return boost::asio::async_initiate<CompletionToken, next_view_signature>(
                [](auto handler, std::shared_ptr<detail::cursor_state> state, boost::asio::any_io_executor strand) {
                    if (auto v = take_buffered_view(*state)) {
                        // Posted, never run inline: a handler is not called from its initiating function.
                        auto ex = boost::asio::get_associated_executor(handler, strand);
                        boost::asio::post(ex, boost::asio::append(std::move(handler), std::exception_ptr(), v));
                        return;
                    }
                    boost::asio::co_spawn(strand, next_view_impl(std::move(state)), std::move(handler));
                },
                token, state_, executor());
        }
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
    [[noreturn]] static void throw_empty();
    boost::asio::any_io_executor executor() const;
    /// The next document of the batch in hand, if any (the limit allowing).
    static std::optional<bson::document> take_buffered(detail::cursor_state& state);
    static std::optional<bson::document_view> take_buffered_view(detail::cursor_state& state);
    static boost::asio::awaitable<std::optional<bson::document_view>> next_view_impl(std::shared_ptr<detail::cursor_state> state);
    static boost::asio::awaitable<std::optional<bson::document_view>> next_view_awaitable(
        std::shared_ptr<detail::cursor_state> state, boost::asio::any_io_executor strand);
    static boost::asio::awaitable<std::optional<bson::document>> next_impl(std::shared_ptr<detail::cursor_state> state);
    static boost::asio::awaitable<bool> fill_impl(std::shared_ptr<detail::cursor_state> state);
    static boost::asio::awaitable<std::optional<bson::document>> next_awaitable(std::shared_ptr<detail::cursor_state> state,
                                                                              boost::asio::any_io_executor strand);

    std::shared_ptr<detail::cursor_state> state_;
};

}  // namespace trellis
