#include "encryption/kms_io.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <vector>

#include "trellis/sdk/tls_diagnostics.hpp"

namespace trellis::encryption {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

[[noreturn]] void bad_tls(std::string_view provider, const std::string& why) {
    throw configuration_error("tlsOptions." + std::string(provider) + ": " + why);
}

bool is_ip_address(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

// OpenSSL's text, with the verification failure in terms of the option that governs it.
std::string tls_reason(const boost::system::error_code& ec, SSL* handle, const std::string& host, const std::string& ca_file) {
    if (!handle) return ec.message();
    return ec.message() + sdk::explain_verify_failure(SSL_get_verify_result(handle), "the KMS certificate", host,
                                                      ca_file.empty() ? std::string("the system's trust store; set tlsOptions tlsCAFile")
                                                                      : "tlsCAFile " + ca_file);
}

// What the timer and the steps share: the timer's handler may run after the coroutine is gone.
struct exchange_state {
    tcp::resolver resolver;
    ssl::stream<tcp::socket> stream;
    asio::steady_timer timer;
    bool timed_out = false;
    exchange_state(const asio::any_io_executor& ex, ssl::context& tls) : resolver(ex), stream(ex, tls), timer(ex) {}
};

}  // namespace

std::map<std::string, kms_tls_settings, std::less<>> parse_kms_tls_options(bson::document_view tls_options,
                                                                           bson::document_view kms_providers) {
    std::map<std::string, kms_tls_settings, std::less<>> out;
    for (const auto& p : tls_options) {
        const std::string_view provider = p.key();
        if (!kms_providers.contains(provider)) bad_tls(provider, "no such provider in kmsProviders");
        if (p.type() != bson::type::document) bad_tls(provider, "must be a document");
        kms_tls_settings s;
        for (const auto& f : p.get_document()) {
            const std::string_view key = f.key();
            if (key == "tlsInsecure" || key == "tlsAllowInvalidCertificates" || key == "tlsAllowInvalidHostnames" ||
                key == "tlsDisableCertificateRevocationCheck")
                bad_tls(provider, "Insecure TLS options prohibited: " + std::string(key));
            if (key == "tls" || key == "ssl") {
                if (f.type() != bson::type::boolean) bad_tls(provider, std::string(key) + " must be a boolean");
                if (!f.get_bool()) bad_tls(provider, "TLS is required: " + std::string(key) + " cannot be false");
                continue;
            }
            if (key == "tlsDisableOCSPEndpointCheck") {  // allowed by the spec; no OCSP is done here
                if (f.type() != bson::type::boolean) bad_tls(provider, "tlsDisableOCSPEndpointCheck must be a boolean");
                continue;
            }
            std::string* target = key == "tlsCAFile"                       ? &s.ca_file
                                  : key == "tlsCertificateKeyFile"         ? &s.certificate_key_file
                                  : key == "tlsCertificateKeyFilePassword" ? &s.certificate_key_file_password
                                                                           : nullptr;
            if (!target) bad_tls(provider, "unknown option \"" + std::string(key) + "\"");
            if (f.type() != bson::type::string || f.get_string().empty())
                bad_tls(provider, std::string(key) + " must be a non-empty string");
            *target = std::string(f.get_string());
        }
        if (!s.certificate_key_file_password.empty() && s.certificate_key_file.empty())
            bad_tls(provider, "tlsCertificateKeyFilePassword without tlsCertificateKeyFile");
        out.emplace(provider, std::move(s));
    }
    return out;
}

kms_tls_contexts::kms_tls_contexts(const std::map<std::string, kms_tls_settings, std::less<>>& settings,
                                   bson::document_view kms_providers) {
    for (const auto& p : kms_providers) {
        const std::string_view provider = p.key();
        if (provider == "local") continue;
        const auto found = settings.find(provider);
        const kms_tls_settings s = found == settings.end() ? kms_tls_settings{} : found->second;
        auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
        SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
        boost::system::error_code ec;
        if (s.ca_file.empty()) ctx->set_default_verify_paths(ec);
        else ctx->load_verify_file(s.ca_file, ec);
        if (ec) bad_tls(provider, "cannot load " + (s.ca_file.empty() ? std::string("the system's trust store")
                                                                       : "tlsCAFile " + s.ca_file) + ": " + ec.message());
        ctx->set_verify_mode(ssl::verify_peer);
        if (!s.certificate_key_file.empty()) {
            if (!s.certificate_key_file_password.empty()) {
                const std::string password = s.certificate_key_file_password;
                ctx->set_password_callback([password](std::size_t, ssl::context::password_purpose) { return password; });
            }
            ctx->use_certificate_chain_file(s.certificate_key_file, ec);
            if (!ec) ctx->use_private_key_file(s.certificate_key_file, ssl::context::pem, ec);
            if (ec) bad_tls(provider, "cannot read tlsCertificateKeyFile " + s.certificate_key_file + ": " + ec.message());
        }
        contexts_.emplace(provider, entry{std::move(ctx), s.ca_file});
    }
}

const kms_tls_contexts::entry& kms_tls_contexts::for_provider(std::string_view provider) const {
    const auto it = contexts_.find(provider);
    if (it == contexts_.end())
        throw error(errc::configuration_error, "KMS provider \"" + std::string(provider) + "\" has no TLS settings");
    return it->second;
}

asio::awaitable<void> kms_round_trip(context& ctx, const kms_request& r, const kms_tls_contexts::entry& tls,
                                     std::chrono::milliseconds timeout, errc timeout_code) {
    const auto ex = co_await asio::this_coro::executor;
    const auto st = std::make_shared<exchange_state>(ex, *tls.context);
    const std::string where = "KMS provider \"" + r.provider + "\" at " + r.endpoint;
    // However the round trip ends, the timer stops (a blocking caller's run() returns) and the
    // connection closes.
    struct finish {
        std::shared_ptr<exchange_state> st;
        ~finish() {
            st->timer.cancel();
            boost::system::error_code ignored;
            st->stream.lowest_layer().close(ignored);
        }
    } const guard{st};
    st->timer.expires_after(timeout);
    st->timer.async_wait([st](const boost::system::error_code& ec) {
        if (ec) return;
        st->timed_out = true;
        st->resolver.cancel();
        boost::system::error_code ignored;
        st->stream.lowest_layer().close(ignored);
    });
    boost::system::error_code ec;
    auto failed = [&](std::string_view step, const std::string& why) {
        if (st->timed_out)
            return error(timeout_code, where + ": no reply within " + std::to_string(timeout.count()) + " ms (" +
                                           std::string(step) + ")");
        return error(errc::connection_failure, where + ": " + std::string(step) + " failed: " + why);
    };
    const std::string port = std::to_string(r.port);
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    const tcp::resolver::results_type addresses = co_await st->resolver.async_resolve(r.host, port, token);
    if (ec || st->timed_out) throw failed("resolve", ec.message());
    co_await asio::async_connect(st->stream.lowest_layer(), addresses, token);
    if (ec || st->timed_out) throw failed("connect", ec.message());
    SSL* handle = st->stream.native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(handle);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip_address(r.host)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, r.host.c_str());
    } else {
        SSL_set_tlsext_host_name(handle, r.host.c_str());  // SNI
        X509_VERIFY_PARAM_set1_host(param, r.host.c_str(), 0);
    }
    co_await st->stream.async_handshake(ssl::stream_base::client, token);
    if (ec || st->timed_out) {
        const std::string why = tls_reason(ec, handle, r.host, tls.ca_file);
        throw failed("TLS handshake", why);
    }
    const auto request = asio::buffer(r.message);
    co_await asio::async_write(st->stream, request, token);
    if (ec || st->timed_out) throw failed("write", ec.message());
    std::vector<std::uint8_t> buffer;
    for (std::size_t needed = ctx.kms_bytes_needed(r.index); needed > 0; needed = ctx.kms_bytes_needed(r.index)) {
        buffer.resize(needed);
        const auto into = asio::buffer(buffer);
        const std::size_t got = co_await st->stream.async_read_some(into, token);
        if (ec == asio::error::eof || ec == ssl::error::stream_truncated)
            throw failed("read", "the KMS closed the connection before its reply was complete");
        if (ec || st->timed_out) throw failed("read", ec.message());
        ctx.feed_kms(r.index, std::span<const std::uint8_t>(buffer.data(), got));
    }
}

}  // namespace trellis::encryption
