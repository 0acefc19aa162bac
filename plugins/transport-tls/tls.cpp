// transport "tls": TCP + TLS through OpenSSL.
#include <boost/asio/ssl.hpp>
#include <map>
#include <mutex>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "../transport-plain/connect.hpp"
#include "trellis/sdk/tls_diagnostics.hpp"

namespace {

using namespace trellis;
using transport_detail::tcp;
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;

// OpenSSL's text, then the cause in the terms of the options that govern it.
std::string openssl_reason(const boost::system::error_code& ec, SSL* handle, const std::string& host, const std::string& ca_file) {
    std::string why = ec.message();
    if (handle)
        why += sdk::explain_verify_failure(SSL_get_verify_result(handle), "the server's certificate", host,
                                           ca_file.empty() ? std::string("the system's trust store") : "tlsCAFile " + ca_file);
    if (ec.category() == asio::error::get_ssl_category()) {
        const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
        if (reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION || reason == SSL_R_UNSUPPORTED_PROTOCOL)
            why += ": the server offers no TLS version this client accepts (TLS 1.2 or later)";
    }
    return why;
}

bool is_ip_address(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

class tls_stream final : public sdk::stream {
public:
    tls_stream(std::shared_ptr<ssl::context> ctx, ssl::stream<tcp::socket> s, std::string where)
        : ctx_(std::move(ctx)), stream_(std::move(s)), where_(std::move(where)) {}

    sdk::asio::any_io_executor get_executor() override { return stream_.get_executor(); }
    void async_read_some(sdk::asio::mutable_buffer buffer,
                         sdk::asio::any_completion_handler<void(std::error_code, std::size_t)> handler) override {
        stream_.async_read_some(buffer, [h = std::move(handler)](const boost::system::error_code& ec, std::size_t n) mutable {
            std::move(h)(ec, n);
        });
    }
    void async_write_some(sdk::asio::const_buffer buffer,
                          sdk::asio::any_completion_handler<void(std::error_code, std::size_t)> handler) override {
        stream_.async_write_some(buffer, [h = std::move(handler)](const boost::system::error_code& ec, std::size_t n) mutable {
            std::move(h)(ec, n);
        });
    }
    void close() override {
        boost::system::error_code ignored;
        stream_.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.lowest_layer().close(ignored);
    }
    std::string description() const override {
        const char* version = SSL_get_version(const_cast<ssl::stream<tcp::socket>&>(stream_).native_handle());
        return "tls " + where_ + " (" + (version ? version : "?") + ")";
    }
    std::optional<std::string> peer_subject() const override {
        X509* cert = SSL_get_peer_certificate(const_cast<ssl::stream<tcp::socket>&>(stream_).native_handle());
        if (!cert) return std::nullopt;
        BIO* bio = BIO_new(BIO_s_mem());
        X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
        char* data = nullptr;
        const long n = BIO_get_mem_data(bio, &data);
        std::string subject(data, static_cast<std::size_t>(n));
        BIO_free(bio);
        X509_free(cert);
        return subject;
    }

private:
    std::shared_ptr<ssl::context> ctx_;  // outlives the stream
    ssl::stream<tcp::socket> stream_;
    std::string where_;
};

class tls_transport final : public sdk::transport {
public:
    void async_connect(sdk::asio::any_io_executor executor, const sdk::connect_request& request,
                       sdk::asio::any_completion_handler<void(sdk::connect_error, std::unique_ptr<sdk::stream>)> handler) override {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        const std::string where = transport_detail::endpoint_text(request.host, request.port);
        std::shared_ptr<ssl::context> ctx;
        try {
            ctx = context_for(request.tls);
        } catch (const boost::system::system_error& e) {
            return asio::post(executor, [h, where, e] {
                std::move(*h)(sdk::connect_error{e.code(), "TLS set-up for " + where + " failed: " + e.what()}, nullptr);
            });
        }
        const sdk::connect_request req = request;
        transport_detail::async_tcp_connect(executor, request, [h, where, ctx, req](sdk::connect_error err, tcp::socket socket) {
            if (err.code) return std::move(*h)(std::move(err), nullptr);
            auto s = std::make_shared<ssl::stream<tcp::socket>>(std::move(socket), *ctx);
            if (!is_ip_address(req.host)) SSL_set_tlsext_host_name(s->native_handle(), req.host.c_str());  // SNI
            if (!req.tls.allow_invalid_hostnames && !req.tls.allow_invalid_certificates) {
                // DNS names match DNS SANs (or the CN); IP addresses match IP SANs.
                X509_VERIFY_PARAM* param = SSL_get0_param(s->native_handle());
                X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                if (is_ip_address(req.host)) X509_VERIFY_PARAM_set1_ip_asc(param, req.host.c_str());
                else X509_VERIFY_PARAM_set1_host(param, req.host.c_str(), 0);
            }
            s->async_handshake(ssl::stream_base::client, [h, s, ctx, where, req](const boost::system::error_code& ec) {
                if (ec) {
                    const std::string why = openssl_reason(ec, s->native_handle(), req.host, req.tls.ca_file);
                    return std::move(*h)(sdk::connect_error{ec, "TLS handshake with " + where + " failed: " + why}, nullptr);
                }
                std::move(*h)(sdk::connect_error{}, std::make_unique<tls_stream>(ctx, std::move(*s), where));
            });
        });
    }

private:
    // One context per distinct setting: contexts are costly to build, cheap to share.
    std::shared_ptr<ssl::context> context_for(const sdk::tls_settings& t) {
        const std::string key = t.ca_file + '\n' + t.certificate_key_file + '\n' + t.certificate_key_file_password + '\n' +
                                (t.allow_invalid_certificates ? "1" : "0");
        std::lock_guard lock(mutex_);
        if (auto it = contexts_.find(key); it != contexts_.end()) return it->second;
        auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
        SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
        if (t.ca_file.empty()) ctx->set_default_verify_paths();
        else ctx->load_verify_file(t.ca_file);
        ctx->set_verify_mode(t.allow_invalid_certificates ? ssl::verify_none : ssl::verify_peer);
        if (!t.certificate_key_file.empty()) {
            if (!t.certificate_key_file_password.empty()) {
                const std::string password = t.certificate_key_file_password;
                ctx->set_password_callback([password](std::size_t, ssl::context::password_purpose) { return password; });
            }
            ctx->use_certificate_chain_file(t.certificate_key_file);
            boost::system::error_code ec;
            ctx->use_private_key_file(t.certificate_key_file, ssl::context::pem, ec);
            if (ec) {
                const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
                const bool decrypt = ec.category() == asio::error::get_ssl_category() &&
                                     (reason == EVP_R_BAD_DECRYPT || reason == PEM_R_BAD_DECRYPT || reason == PEM_R_BAD_PASSWORD_READ);
                throw boost::system::system_error(
                    ec, "cannot read the private key in tlsCertificateKeyFile " + t.certificate_key_file +
                            (decrypt ? (t.certificate_key_file_password.empty()
                                            ? std::string(": it is encrypted and no tlsCertificateKeyFilePassword was given")
                                            : std::string(": wrong tlsCertificateKeyFilePassword"))
                                     : std::string()));
            }
        }
        contexts_.emplace(key, ctx);
        return ctx;
    }

    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<ssl::context>> contexts_;
};

}  // namespace

TRELLIS_PLUGIN(transport, "tls", "1.0.0", "TLS 1.2+ through OpenSSL (CA file, client certificates, hostname verification)",
               tls_transport)
