// Change streams (the change streams spec): the watch helpers, the resume token, and the one
// resume after a resumable error. The stream drives a tailable cursor of its aggregate.
#include <algorithm>
#include <utility>

#include "client/wait.hpp"
#include "client/core.hpp"
#include "client/failures.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/change_stream.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"

namespace trellis {

namespace asio = boost::asio;

namespace detail {

namespace {

// The spec's resumable errors: a network error, CursorNotFound, and a server error labelled
// ResumableChangeStreamError (4.4+, wire 9) or, from older servers, one of the listed codes.
bool resumable(const std::exception_ptr& e, int max_wire_version) {
    try {
        std::rethrow_exception(e);
    } catch (const operation_failure& x) {
        if (x.server_code() == 43) return true;  // CursorNotFound
        if (max_wire_version >= 9) return x.has_error_label("ResumableChangeStreamError");
        static constexpr int codes[] = {6,   7,   89,    91,    189,   262,   9001,  10107, 11600,
                                        11602, 13435, 13436, 63, 150, 13388, 234, 133};
        return std::find(std::begin(codes), std::end(codes), x.server_code()) != std::end(codes);
    } catch (const error& x) {
        const auto c = x.code();
        return c == errc::connection_failure || c == errc::auto_reconnect || c == errc::network_timeout ||
               c == errc::protocol_error || c == errc::compression_error || c == errc::pool_cleared;
    } catch (...) {
    }
    return false;
}

}  // namespace

session_ptr client_session_for(const std::shared_ptr<client_core>& core, const session_ptr& s, const char* where) {
    if (!s) throw error(errc::invalid_argument, std::string(where) + ": the session was moved from");
    if (s->core != core) throw error(errc::invalid_argument, std::string(where) + ": the session was started by a different client");
    std::lock_guard lock(s->mutex);
    if (s->ended) throw error(errc::invalid_argument, std::string(where) + ": the session has ended");
    return s;
}

struct change_stream_state {
    std::shared_ptr<client_core> core;
    std::string db, coll;  // coll empty: the database ({aggregate: 1}), or the cluster
    bool cluster = false;
    bson::array pipeline;  // the stages after $changeStream
    change_stream_options options;
    client_core::op_settings settings;
    session_ptr session;
    // Without an explicit session: the implicit one of the first aggregate, which every getMore
    // and a resume use too ("the resume attempt MUST use the same session"); released at the end.
    std::optional<server_session> implicit;
    std::shared_ptr<cursor_state> cursor;
    std::optional<bson::document> resume_token;
    std::optional<bson::timestamp> operation_time;  // startAtOperationTime, given or saved
    bool returned_any = false;
    bool resuming = false;
    bool ended = false;
    // CSOT: a next() timed out; the stream stays valid and the next call resumes first.
    bool resume_pending = false;
    int wire_version = 0;  // of the server of the last aggregate

    static asio::awaitable<change_stream> open(std::shared_ptr<client_core> core, std::string db, std::string coll,
                                               bool cluster, client_core::op_settings settings, session_ptr session,
                                               bson::array pipeline, change_stream_options options) {
        if (options.batch_size && *options.batch_size < 0)
            throw error(errc::invalid_argument,
                        "watch: batch_size must not be negative (got " + std::to_string(*options.batch_size) + ")");
        if (options.max_await_time && options.max_await_time->count() < 0)
            throw error(errc::invalid_argument, "watch: max_await_time must not be negative");
        if (const auto t = core->effective_timeout(settings.timeout);
            options.max_await_time && t.count() > 0 && *options.max_await_time >= t)
            throw error(errc::invalid_argument, "watch: max_await_time (" + std::to_string(options.max_await_time->count()) +
                                                    " ms) must be less than timeoutMS (" + std::to_string(t.count()) + " ms)");
        auto st = std::make_shared<change_stream_state>();
        st->core = std::move(core);
        st->db = std::move(db);
        st->coll = std::move(coll);
        st->cluster = cluster;
        st->settings = std::move(settings);
        st->session = std::move(session);
        st->pipeline = std::move(pipeline);
        st->options = std::move(options);
        if (st->options.start_after) st->resume_token = st->options.start_after;
        else if (st->options.resume_after) st->resume_token = st->options.resume_after;
        st->operation_time = st->options.start_at_operation_time;
        co_await st->aggregate();
        co_return change_stream(std::move(st));
    }

    // The $changeStream stage: the options, and where to start (the spec's resume process when
    // resuming: the cached token, else the operation time, else as first opened).
    bson::document stage() const {
        bson::builder b;
        b.open_document("$changeStream");
        if (options.full_document) b.append("fullDocument", *options.full_document);
        if (options.full_document_before_change) b.append("fullDocumentBeforeChange", *options.full_document_before_change);
        if (cluster) b.append("allChangesForCluster", true);
        if (options.show_expanded_events) b.append("showExpandedEvents", *options.show_expanded_events);
        if (!resuming) {
            if (options.resume_after) b.append("resumeAfter", options.resume_after->view());
            if (options.start_after) b.append("startAfter", options.start_after->view());
            if (options.start_at_operation_time) b.append("startAtOperationTime", *options.start_at_operation_time);
        } else if (resume_token) {
            b.append(options.start_after && !returned_any ? "startAfter" : "resumeAfter", resume_token->view());
        } else if (operation_time && wire_version >= 7) {
            b.append("startAtOperationTime", *operation_time);
        }
        b.close_document();
        return b.extract();
    }

    // `deadline`: a resume's, the rest of its next() call's (CSOT); none when opening.
    asio::awaitable<void> aggregate(std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt) {
        bson::builder all(bson::builder::root::array);
        all.append(stage().view());
        for (const auto& s : pipeline) all.append_value(s);
        aggregate_options o;
        o.batch_size = options.batch_size;
        o.collation = options.collation;
        o.comment = options.comment;
        // CSOT: a change stream is an awaitData cursor: each next() gets the whole timeoutMS.
        if (settings.timeout || core->options().timeout) o.timeout_mode = timeout_mode::iteration;
        if (deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                throw operation_timeout("change stream: its timeoutMS (" +
                                        std::to_string(core->effective_timeout(settings.timeout).count()) +
                                        " ms) expired before the resume's aggregate was sent");
            o.timeout = left;
        }
        const bool first_open = !cursor && !resuming;
        bson::array stages(all.extract());
        std::exception_ptr failed;
        try {
            auto c = co_await core->aggregate(db, coll, std::move(stages), std::move(o), settings, session, implicit);
            cursor = client_core::release_cursor(std::move(c));
        } catch (...) {
            failed = std::current_exception();
        }
        if (failed) {
            if (implicit && network_failure(failed)) implicit->dirty = true;
            std::rethrow_exception(failed);
        }
        if (!cursor) throw error(errc::protocol_error, "watch: the aggregate gave no cursor");
        wire_version = cursor->max_wire_version;
        cursor->timeout = core->effective_timeout(settings.timeout);  // a resume's was what remained
        // The stream keeps the implicit session; the cursor uses it without releasing it.
        if (implicit && !cursor->session && cursor->id != 0) cursor->session = implicit;
        if (cursor->session) {
            implicit = cursor->session;
            cursor->session_borrowed = true;
        }
        cursor->tailable = true;  // an empty getMore is an answer, not the end
        cursor->max_await_time = options.max_await_time;
        if (cursor->batch.empty() && cursor->post_batch_resume_token) resume_token = cursor->post_batch_resume_token;
        // The operation time to resume from when no token ever comes (servers 4.0+, wire 7).
        if (first_open && !options.resume_after && !options.start_after && !options.start_at_operation_time &&
            cursor->max_wire_version >= 7 && cursor->batch.empty() && !cursor->post_batch_resume_token)
            operation_time = cursor->operation_time;
    }

    // The stream is over: its cursor goes, and its implicit session back to the pool.
    void finish() {
        ended = true;
        if (cursor && cursor->getmore_in_flight && implicit) {
            // A getMore still uses the session: the cursor releases it when that is back.
            cursor->session = std::exchange(implicit, std::nullopt);
            cursor->session_borrowed = false;
        }
        let_go_of_cursor();
        if (implicit) core->release_session(*implicit);
        implicit.reset();
    }

    // Kills the server cursor, if any (errors are the cursor manager's and never reach here).
    void let_go_of_cursor() {
        if (!cursor) return;
        const auto c = std::move(cursor);
        if (c->session && implicit) implicit->dirty = implicit->dirty || c->session->dirty;  // a failed getMore's
        if (!c->closed) {
            core->cursor_closed(*c);
        } else if (c->id != 0) {
            core->kill_cursors(c->address, c->ns, {c->id});  // a failed getMore: its cursor may be alive
        }
    }

    // A resume: the new aggregate (errors are the caller's; after a timeout the stream stays
    // valid and the next call tries again).
    asio::awaitable<void> resume(std::optional<std::chrono::steady_clock::time_point> deadline) {
        resuming = true;
        std::exception_ptr again;
        try {
            co_await aggregate(deadline);
        } catch (...) {
            again = std::current_exception();
        }
        if (!again) co_return;
        cursor.reset();
        if (timed_out(again)) {
            resume_pending = true;
        } else {
            finish();
        }
        std::rethrow_exception(again);
    }

    static bool timed_out(const std::exception_ptr& e) {
        try {
            std::rethrow_exception(e);
        } catch (const operation_timeout&) {
            return true;
        } catch (...) {
        }
        return false;
    }

    asio::awaitable<std::optional<bson::document>> next(bool wait) {
        // CSOT: one deadline for this call, its getMores and a resume (the spec's cursors section).
        const auto deadline = core->deadline_for(settings.timeout);
        for (;;) {
            if (ended || (!cursor && !resume_pending)) co_return std::nullopt;
            if (resume_pending) {
                resume_pending = false;
                co_await resume(deadline);
                continue;
            }
            const auto c = cursor;
            c->deadline = deadline;  // iteration mode: each getMore of this call shares it
            std::optional<bson::document> d;
            std::exception_ptr failure;
            try {
                d = co_await core->cursor_next(c);
            } catch (...) {
                failure = std::current_exception();
            }
            if (failure && timed_out(failure)) {
                // The CSOT spec: a timeout does not invalidate the stream; the next call resumes.
                let_go_of_cursor();
                resume_pending = true;
                std::rethrow_exception(failure);
            }
            if (failure) {
                if (!resumable(failure, c->max_wire_version)) {
                    finish();
                    std::rethrow_exception(failure);
                }
                // Resume once: a failure of the new aggregate is the caller's.
                let_go_of_cursor();
                co_await resume(deadline);
                continue;
            }
            if (d) {
                const auto id = d->view().find("_id");
                if (!id || id->type() != bson::type::document) {
                    finish();
                    throw error(errc::invalid_argument,
                                "change stream: an event has no _id (its resume token), so the stream could not resume "
                                "after it: the pipeline must keep _id (cannot provide resume functionality when the resume "
                                "token is missing)");
                }
                returned_any = true;
                if (c->batch.empty() && c->post_batch_resume_token) resume_token = c->post_batch_resume_token;
                else resume_token = bson::document(id->get_document());
                co_return d;
            }
            if (c->batch.empty() && c->post_batch_resume_token) resume_token = c->post_batch_resume_token;
            if (c->closed || c->id == 0) {  // the server ended it (after an invalidate)
                cursor.reset();
                finish();
                co_return std::nullopt;
            }
            if (!wait) co_return std::nullopt;
        }
    }
};

}  // namespace detail

// ---------------------------------------------------------------- change_stream

change_stream::~change_stream() { close(); }

asio::any_io_executor change_stream::executor() const {
    if (!state_) throw error(errc::configuration_error, "use of an empty or closed change stream");
    state_->core->check_usable();
    return state_->core->strand();
}

asio::awaitable<std::optional<bson::document>> change_stream::next_impl(std::shared_ptr<detail::change_stream_state> state,
                                                                       bool wait) {
    co_return co_await state->next(wait);
}

std::optional<bson::document> change_stream::next() {
    if (!state_) return std::nullopt;
    return detail::wait(state_->core, next_impl(state_, true));
}

std::optional<bson::document> change_stream::try_next() {
    if (!state_) return std::nullopt;
    return detail::wait(state_->core, next_impl(state_, false));
}

std::optional<bson::document> change_stream::resume_token() const {
    return state_ ? state_->resume_token : std::nullopt;
}

bool change_stream::alive() const noexcept { return state_ && !state_->ended; }

void change_stream::close() noexcept {
    if (!state_) return;
    auto s = std::move(state_);
    if (s->core->finished()) return;
    try {
        asio::post(s->core->strand(), [s] { s->finish(); });
    } catch (...) {
    }
}

// ---------------------------------------------------------------- the watch helpers

asio::awaitable<change_stream> collection::watch_impl(target t, bson::array pipeline, change_stream_options o) {
    auto s = t.core->settings_for(t.settings);
    co_return co_await detail::change_stream_state::open(t.core, std::move(t.db), std::move(t.coll), false, std::move(s),
                                                         std::move(t.session), std::move(pipeline), std::move(o));
}
change_stream collection::watch(bson::array pipeline, change_stream_options options) {
    return detail::wait(t_.core, watch_impl(t_, std::move(pipeline), std::move(options)));
}

asio::awaitable<change_stream> database::watch_impl(target t, bson::array pipeline, change_stream_options o) {
    auto s = t.core->settings_for(t.settings);
    std::string none;  // {aggregate: 1}
    co_return co_await detail::change_stream_state::open(t.core, std::move(t.db), std::move(none), false, std::move(s),
                                                         std::move(t.session), std::move(pipeline), std::move(o));
}
change_stream database::watch(bson::array pipeline, change_stream_options options) {
    return detail::wait(t_.core, watch_impl(t_, std::move(pipeline), std::move(options)));
}

namespace {
// A change stream on the whole cluster (admin, allChangesForCluster), in `session` if given.
asio::awaitable<change_stream> cluster_stream(std::shared_ptr<detail::client_core> core, detail::session_ptr session,
                                              bson::array pipeline, change_stream_options o) {
    const handle_options defaults;
    auto s = core->settings_for(defaults);
    std::string admin = "admin", none;
    co_return co_await detail::change_stream_state::open(std::move(core), std::move(admin), std::move(none), true, std::move(s),
                                                         std::move(session), std::move(pipeline), std::move(o));
}
}  // namespace

asio::awaitable<change_stream> client::watch_impl(std::shared_ptr<detail::client_core> core, bson::array pipeline,
                                                  change_stream_options o) {
    detail::session_ptr no_session;
    co_return co_await cluster_stream(std::move(core), std::move(no_session), std::move(pipeline), std::move(o));
}
asio::awaitable<change_stream> client::watch_impl(std::shared_ptr<detail::client_core> core,
                                                  std::shared_ptr<detail::session_state> session, bson::array pipeline,
                                                  change_stream_options o) {
    session = detail::client_session_for(core, session, "client::watch");
    co_return co_await cluster_stream(std::move(core), std::move(session), std::move(pipeline), std::move(o));
}
change_stream client::watch(bson::array pipeline, change_stream_options options) {
    return detail::wait(core_, watch_impl(core_, std::move(pipeline), std::move(options)));
}
change_stream client::watch(const client_session& session, bson::array pipeline, change_stream_options options) {
    return detail::wait(core_, watch_impl(core_, session.state(), std::move(pipeline), std::move(options)));
}

}  // namespace trellis
