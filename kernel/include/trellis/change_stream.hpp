// A change stream: the changes to a collection, a database or the whole cluster, as they happen
// (the change streams spec). collection::watch, database::watch and client::watch open one with
// an aggregate whose first stage is $changeStream; it is iterated like a tailable awaitData
// cursor, keeps the resume token of what it returned, and on a resumable error (a network
// error, CursorNotFound, a ResumableChangeStreamError label) opens itself again once, from that
// token, before reporting anything.
//
//   auto stream = coll.watch();                          // blocking face
//   while (auto event = stream.next()) use(*event);      // waits for each event; nullopt: it ended
//   auto maybe = stream.try_next();                      // one getMore at most
//   save(stream.resume_token());                         // what a new watch can resume_after
//
//   // async: any completion token; completes with (std::exception_ptr, std::optional<document>)
//   auto event = co_await stream.async_next(asio::use_awaitable);
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>

#include "trellis/bson/document.hpp"

namespace trellis {

namespace detail {
struct change_stream_state;
}  // namespace detail

/// The $changeStream stage's options and the cursor's. Unset: the server's default.
struct change_stream_options {
    /// "default", "updateLookup" (update events carry the document as it is when read),
    /// "whenAvailable" or "required" (the post-image).
    std::optional<std::string> full_document;
    /// "off", "whenAvailable" or "required": update, replace and delete events carry the
    /// document as it was before.
    std::optional<std::string> full_document_before_change;
    std::optional<bson::document> resume_after;  ///< a resume token: the events after it
    std::optional<bson::document> start_after;   ///< as resume_after, and may follow an invalidate
    std::optional<bson::timestamp> start_at_operation_time;  ///< the events at or after this time
    std::optional<std::chrono::milliseconds> max_await_time;  ///< getMore's maxTimeMS: how long it waits
    std::optional<std::int32_t> batch_size;
    std::optional<bson::document> collation;
    std::optional<std::variant<std::string, bson::document>> comment;  ///< on the aggregate and each getMore
    std::optional<bool> show_expanded_events;  ///< DDL events (create, createIndexes, ...) too
};

class change_stream {
public:
    using next_signature = void(std::exception_ptr, std::optional<bson::document>);

    change_stream() = default;
    change_stream(change_stream&&) noexcept = default;
    change_stream& operator=(change_stream&&) noexcept = default;
    /// Closes the stream (see close()).
    ~change_stream();

    /// The next event, waiting as long as it takes (getMore after getMore). nullopt once the
    /// stream has ended (after an invalidate event, or closed). Blocks; throws trellis::error.
    /// With timeoutMS each call (its getMores and a resume) is bounded by it; a call that times
    /// out throws trellis::operation_timeout and leaves the stream valid: call next() again (it
    /// resumes first, with a new aggregate from the resume token), or close the stream and watch
    /// again. A timeout before any event came suggests the server could not get through the
    /// oplog in time: watch again with a higher timeout.
    std::optional<bson::document> next();
    /// The next event if one is in hand or one getMore brings it (which waits up to
    /// max_await_time on the server); nullopt otherwise. resume_token() is current after each
    /// call: this is how to store every resume token, even while no events come.
    std::optional<bson::document> try_next();

    /// next(), as an async operation on the client's strand.
    template <boost::asio::completion_token_for<next_signature> CompletionToken = boost::asio::deferred_t>
    auto async_next(CompletionToken&& token = {}) {
        return boost::asio::co_spawn(executor(), next_impl(state_, true), std::forward<CompletionToken>(token));
    }
    /// try_next(), as an async operation.
    template <boost::asio::completion_token_for<next_signature> CompletionToken = boost::asio::deferred_t>
    auto async_try_next(CompletionToken&& token = {}) {
        return boost::asio::co_spawn(executor(), next_impl(state_, false), std::forward<CompletionToken>(token));
    }

    /// The token a resume would use: the postBatchResumeToken of the last batch when its events
    /// are all returned, else the _id of the last event returned (or the token watch was given).
    std::optional<bson::document> resume_token() const;
    /// False once the stream has ended or is closed.
    bool alive() const noexcept;
    /// Ends the stream: its server cursor is killed (through the client's cursor manager).
    void close() noexcept;

private:
    friend struct detail::change_stream_state;
    explicit change_stream(std::shared_ptr<detail::change_stream_state> state) : state_(std::move(state)) {}
    boost::asio::any_io_executor executor() const;
    static boost::asio::awaitable<std::optional<bson::document>> next_impl(std::shared_ptr<detail::change_stream_state> state,
                                                                          bool wait);

    std::shared_ptr<detail::change_stream_state> state_;
};

}  // namespace trellis
