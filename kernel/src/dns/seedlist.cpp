// The initial DNS seedlist discovery step: SRV and TXT asked concurrently, then resolve_srv().
#include <random>

#include <boost/asio/io_context.hpp>

#include "trellis/dns.hpp"
#include "trellis/errors.hpp"

namespace trellis::dns {
namespace {

// An internal operation: its end is a plain function called inline. The resolver calls it from
// inside c-ares, under its mutex, so `f` must only do pure work and complete another operation
// (which posts).
template <typename Result, typename F>
class callback_op final : public detail::pending_op<Result> {
public:
    explicit callback_op(F f) : f_(std::move(f)) {}

private:
    void finish(std::error_code ec, Result result, std::string message) override {
        f_(ec, std::move(result), std::move(message));
    }
    F f_;
};

template <typename Result, typename F>
std::shared_ptr<detail::pending_op<Result>> make_callback_op(F f) {
    return std::make_shared<callback_op<Result, F>>(std::move(f));
}

// Waits for both answers. Both arrive from c-ares callbacks under the resolver's mutex, so the
// fields need no lock of their own.
struct join {
    join(const connection_string& parsed, std::shared_ptr<detail::seedlist_op> op) : parsed(parsed), op(std::move(op)) {}

    connection_string parsed;
    std::shared_ptr<detail::seedlist_op> op;
    int remaining = 2;
    std::vector<srv_record> srv;
    std::vector<txt_record> txt;
    std::error_code srv_error, txt_error;
    std::string srv_message, txt_message;

    void done() {
        if (--remaining > 0) return;
        // The SRV failure first: it is the one that says the URI cannot give hosts.
        if (srv_error) return fail(srv_error, std::move(srv_message));
        if (txt_error) return fail(txt_error, std::move(txt_message));
        seedlist_result result;
        try {
            thread_local std::mt19937 random{std::random_device{}()};
            static_cast<connection_string&>(result) = resolve_srv(parsed, srv, txt, random);
        } catch (const error& e) {
            // Without the ": <category>" what() appends: throw_error() appends it again.
            std::string what = e.what();
            const std::string suffix = ": " + e.code().message();
            if (what.ends_with(suffix)) what.resize(what.size() - suffix.size());
            return fail(e.code(), std::move(what));
        } catch (const std::exception& e) {
            return fail(errc::configuration_error, e.what());
        }
        op->complete({}, std::move(result), {});
    }

    void fail(std::error_code ec, std::string message) {
        seedlist_result result;
        result.error_message = message;
        op->complete(ec, std::move(result), std::move(message));
    }
};

}  // namespace

void throw_error(std::error_code ec, const std::string& message) {
    const std::string what = message.empty() ? ec.message() : message;
    if (ec == errc::configuration_error) throw configuration_error(what);
    throw error(ec, what);
}

void detail::start_seedlist(resolver& r, const connection_string& parsed, std::shared_ptr<seedlist_op> op) {
    if (!parsed.options.is_srv) {  // nothing to look up
        seedlist_result result;
        static_cast<connection_string&>(result) = parsed;
        op->complete({}, std::move(result), {});
        return;
    }
    auto j = std::make_shared<join>(parsed, std::move(op));
    r.start_srv(srv_query_name(parsed.options),
                make_callback_op<std::vector<srv_record>>(
                    [j](std::error_code ec, std::vector<srv_record> records, std::string message) {
                        j->srv = std::move(records);
                        j->srv_error = ec;
                        j->srv_message = std::move(message);
                        j->done();
                    }));
    r.start_txt(parsed.options.srv_host,
                make_callback_op<std::vector<txt_record>>(
                    [j](std::error_code ec, std::vector<txt_record> records, std::string message) {
                        j->txt = std::move(records);
                        j->txt_error = ec;
                        j->txt_message = std::move(message);
                        j->done();
                    }));
}

client_options resolve_seedlist(const connection_string& parsed, const resolver_options& options,
                                std::vector<std::string>* warnings) {
    if (!parsed.options.is_srv) return parsed.options;
    boost::asio::io_context io;
    std::error_code ec;
    seedlist_result result;
    {
        resolver r(io.get_executor(), options);
        async_resolve_seedlist(r, parsed, [&](std::error_code e, seedlist_result res) {
            ec = e;
            result = std::move(res);
        });
        io.run();
    }
    if (ec) throw_error(ec, result.error_message);
    if (warnings) {
        // resolve_srv() appends the TXT record's warnings to the parsed ones.
        for (std::size_t i = parsed.warnings.size(); i < result.warnings.size(); ++i)
            warnings->push_back(std::move(result.warnings[i]));
    }
    return std::move(result.options);
}

}  // namespace trellis::dns
