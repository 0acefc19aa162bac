#include "encryption/crypt_core.hpp"

// mongocrypt.h declares its functions without extern "C".
extern "C" {
#include <mongocrypt/mongocrypt.h>
}

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <tuple>

#include "trellis/base64.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/errors.hpp"

namespace trellis::encryption {

namespace {

// A libmongocrypt binary over bytes we keep alive for the call.
struct binary_ref {
    mongocrypt_binary_t* b;
    explicit binary_ref(std::span<const std::uint8_t> bytes)
        : b(mongocrypt_binary_new_from_data(const_cast<std::uint8_t*>(bytes.data()), static_cast<uint32_t>(bytes.size()))) {}
    ~binary_ref() { mongocrypt_binary_destroy(b); }
    binary_ref(const binary_ref&) = delete;
    binary_ref& operator=(const binary_ref&) = delete;
};

struct status_holder {
    mongocrypt_status_t* s = mongocrypt_status_new();
    ~status_holder() { mongocrypt_status_destroy(s); }
    status_holder() = default;
    status_holder(const status_holder&) = delete;
    status_holder& operator=(const status_holder&) = delete;
    std::string message() const {
        uint32_t len = 0;
        const char* m = mongocrypt_status_message(s, &len);
        return m ? std::string(m, len) : std::string("unknown libmongocrypt error");
    }
};

// The document a libmongocrypt call writes into a binary it is given (`fill` returns its success);
// nullopt when the call failed.
template <class F>
std::optional<bson::document> filled(F&& fill) {
    const std::unique_ptr<mongocrypt_binary_t, void (*)(mongocrypt_binary_t*)> out(mongocrypt_binary_new(),
                                                                                 mongocrypt_binary_destroy);
    if (!fill(out.get())) return std::nullopt;
    const std::span<const std::uint8_t> bytes(mongocrypt_binary_data(out.get()), mongocrypt_binary_len(out.get()));
    return bson::document::from_bytes(bytes);
}

struct provider_rule {
    std::vector<std::string_view> required;
    std::vector<std::string_view> optional;
    std::vector<std::string_view> alternative;  // a complete credential on its own (accessToken)
};

const std::map<std::string_view, provider_rule, std::less<>>& provider_rules() {
    static const std::map<std::string_view, provider_rule, std::less<>> rules = {
        {"local", {{"key"}, {}, {}}},
        {"aws", {{"accessKeyId", "secretAccessKey"}, {"sessionToken"}, {}}},
        {"azure", {{"tenantId", "clientId", "clientSecret"}, {"identityPlatformEndpoint"}, {"accessToken"}}},
        {"gcp", {{"email", "privateKey"}, {"endpoint"}, {"accessToken"}}},
        {"kmip", {{"endpoint"}, {}, {}}},
    };
    return rules;
}

[[noreturn]] void bad_provider(std::string_view provider, const std::string& why) {
    throw configuration_error("kmsProviders." + std::string(provider) + ": " + why);
}

// A byte-string credential: binary, or a base64 string. Its decoded bytes.
std::vector<std::uint8_t> bytes_of(std::string_view provider, std::string_view field, const bson::element& e) {
    if (e.type() == bson::type::binary) {
        const auto b = e.get_binary();
        return {b.bytes.begin(), b.bytes.end()};
    }
    if (e.type() == bson::type::string) {
        auto decoded = base64::decode(e.get_string());
        if (!decoded) bad_provider(provider, std::string(field) + " is not valid base64");
        return std::move(*decoded);
    }
    bad_provider(provider, std::string(field) + " must be binary or a base64 string");
}

}  // namespace

std::string libmongocrypt_version() { return mongocrypt_version(nullptr); }

std::pair<std::string, std::uint16_t> split_endpoint(std::string_view endpoint, std::uint16_t default_port) {
    auto bad = [&](const std::string& why) -> std::pair<std::string, std::uint16_t> {
        throw error(errc::invalid_argument, "KMS endpoint \"" + std::string(endpoint) + "\": " + why);
    };
    std::string_view host = endpoint;
    std::string_view port;
    if (endpoint.starts_with('[')) {  // [IPv6]:port
        const auto close = endpoint.find(']');
        if (close == std::string_view::npos) return bad("no closing ']'");
        host = endpoint.substr(1, close - 1);
        const std::string_view rest = endpoint.substr(close + 1);
        if (!rest.empty()) {
            if (!rest.starts_with(':')) return bad("unexpected text after ']'");
            port = rest.substr(1);
            if (port.empty()) return bad("empty port");
        }
    } else if (const auto colon = endpoint.rfind(':'); colon != std::string_view::npos) {
        if (endpoint.find(':') != colon) return bad("an IPv6 address must be in brackets");
        host = endpoint.substr(0, colon);
        port = endpoint.substr(colon + 1);
        if (port.empty()) return bad("empty port");
    }
    if (host.empty()) return bad("empty host");
    if (port.empty()) return {std::string(host), default_port};
    unsigned value = 0;
    for (const char c : port) {
        if (c < '0' || c > '9') return bad("port is not a number");
        value = value * 10 + static_cast<unsigned>(c - '0');
        if (value > 65535) return bad("port out of range");
    }
    if (value == 0) return bad("port out of range");
    return {std::string(host), static_cast<std::uint16_t>(value)};
}

void validate_kms_providers(bson::document_view providers) {
    if (providers.empty()) throw configuration_error("kmsProviders: no KMS provider is configured");
    std::set<std::string_view> seen;
    for (const auto& p : providers) {
        const std::string_view name = p.key();
        if (!seen.insert(name).second) bad_provider(name, "given twice");
        if (name.find(':') != std::string_view::npos)
            bad_provider(name, "named KMS providers (\"type:name\") need libmongocrypt 1.9; this build has " +
                                   std::string(mongocrypt_version(nullptr)));
        const auto rule = provider_rules().find(name);
        if (rule == provider_rules().end())
            bad_provider(name, "unknown KMS provider (known: aws, azure, gcp, kmip, local)");
        if (p.type() != bson::type::document) bad_provider(name, "must be a document");
        const bson::document_view fields = p.get_document();
        if (fields.empty())
            bad_provider(name, "empty: on-demand KMS credentials are not supported, give the credentials");
        const provider_rule& r = rule->second;
        auto listed = [](const std::vector<std::string_view>& v, std::string_view f) {
            for (auto x : v)
                if (x == f) return true;
            return false;
        };
        bool alternative = false;
        for (const auto& f : fields) {
            const std::string_view key = f.key();
            if (!listed(r.required, key) && !listed(r.optional, key) && !listed(r.alternative, key))
                bad_provider(name, "unknown field \"" + std::string(key) + "\"");
            if (listed(r.alternative, key)) alternative = true;
        }
        if (alternative && fields.count() != 1)
            bad_provider(name, "accessToken excludes every other credential field");
        if (alternative) {
            if (fields.begin()->type() != bson::type::string) bad_provider(name, "accessToken must be a string");
            continue;
        }
        for (const auto field : r.required)
            if (!fields.contains(field)) bad_provider(name, "missing required field \"" + std::string(field) + "\"");
        for (const auto& f : fields) {
            const std::string_view key = f.key();
            if ((name == "local" && key == "key") || (name == "gcp" && key == "privateKey")) {
                const auto bytes = bytes_of(name, key, f);
                if (name == "local" && bytes.size() != 96)
                    bad_provider(name, "key must be 96 bytes, got " + std::to_string(bytes.size()));
                if (bytes.empty()) bad_provider(name, std::string(key) + " is empty");
                continue;
            }
            if (f.type() != bson::type::string) bad_provider(name, std::string(key) + " must be a string");
            if (f.get_string().empty()) bad_provider(name, std::string(key) + " is empty");
        }
    }
}

// ---------------------------------------------------------------- crypt

crypt::crypt(bson::document_view kms_providers) {
    validate_kms_providers(kms_providers);
    handle_ = mongocrypt_new();
    if (!handle_) throw error(errc::configuration_error, "libmongocrypt: mongocrypt_new failed");
    const binary_ref providers(kms_providers.bytes());
    status_holder st;
    // Explicit encryption only: no query analysis, so neither crypt_shared nor mongocryptd is needed.
    mongocrypt_setopt_bypass_query_analysis(handle_);
    if (!mongocrypt_setopt_kms_providers(handle_, providers.b) || !mongocrypt_init(handle_)) {
        mongocrypt_status(handle_, st.s);
        const std::string why = st.message();
        mongocrypt_destroy(handle_);
        handle_ = nullptr;
        throw configuration_error("kmsProviders: libmongocrypt refused them: " + why);
    }
}

crypt::~crypt() { mongocrypt_destroy(handle_); }

// ---------------------------------------------------------------- context

context::context(const crypt& c) : ctx_(mongocrypt_ctx_new(c.get())) {
    if (!ctx_) throw error(errc::configuration_error, "libmongocrypt: mongocrypt_ctx_new failed");
}

context::~context() { mongocrypt_ctx_destroy(ctx_); }

context::context(context&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)), kms_(std::move(other.kms_)) {}

void context::raise(std::string_view during) const {
    status_holder st;
    mongocrypt_ctx_status(ctx_, st.s);
    // Client errors (a bad option, a missing or unusable data key, bad ciphertext) are the
    // caller's input; the rest (KMS, crypt_shared) are configuration.
    const errc code = mongocrypt_status_type(st.s) == MONGOCRYPT_STATUS_ERROR_CLIENT ? errc::invalid_argument
                                                                                      : errc::configuration_error;
    throw error(code, "client encryption (" + std::string(during) + "): " + st.message());
}

context context::data_key(const crypt& c, bson::document_view master_key, const std::vector<std::string>& key_alt_names,
                          const std::vector<std::uint8_t>* key_material) {
    context x(c);
    {
        const binary_ref kek(master_key.bytes());
        if (!mongocrypt_ctx_setopt_key_encryption_key(x.ctx_, kek.b)) x.raise("masterKey");
    }
    for (const auto& name : key_alt_names) {
        bson::builder b;
        b.append("keyAltName", name);
        const bson::document d = b.extract();
        const binary_ref alt(d.bytes());
        if (!mongocrypt_ctx_setopt_key_alt_name(x.ctx_, alt.b)) x.raise("keyAltNames");
    }
    if (key_material) {
        bson::builder b;
        b.append("keyMaterial", bson::binary{bson::binary_subtype::generic, *key_material});
        const bson::document d = b.extract();
        const binary_ref km(d.bytes());
        if (!mongocrypt_ctx_setopt_key_material(x.ctx_, km.b)) x.raise("keyMaterial");
    }
    if (!mongocrypt_ctx_datakey_init(x.ctx_)) x.raise("createDataKey");
    return x;
}

context context::explicit_encrypt(const crypt& c, bson::document_view box, const std::vector<std::uint8_t>* key_id,
                                  const std::string* key_alt_name, std::string_view algorithm) {
    context x(c);
    if (key_id) {
        const binary_ref id(*key_id);
        if (!mongocrypt_ctx_setopt_key_id(x.ctx_, id.b)) x.raise("keyId");
    }
    if (key_alt_name) {
        bson::builder b;
        b.append("keyAltName", *key_alt_name);
        const bson::document d = b.extract();
        const binary_ref alt(d.bytes());
        if (!mongocrypt_ctx_setopt_key_alt_name(x.ctx_, alt.b)) x.raise("keyAltName");
    }
    if (!mongocrypt_ctx_setopt_algorithm(x.ctx_, algorithm.data(), static_cast<int>(algorithm.size()))) x.raise("algorithm");
    const binary_ref value(box.bytes());
    if (!mongocrypt_ctx_explicit_encrypt_init(x.ctx_, value.b)) x.raise("encrypt");
    return x;
}

context context::explicit_decrypt(const crypt& c, bson::document_view box) {
    context x(c);
    const binary_ref value(box.bytes());
    if (!mongocrypt_ctx_explicit_decrypt_init(x.ctx_, value.b)) x.raise("decrypt");
    return x;
}

context context::rewrap(const crypt& c, bson::document_view filter, const bson::document* new_master_key) {
    context x(c);
    if (new_master_key) {
        const binary_ref kek(new_master_key->bytes());
        if (!mongocrypt_ctx_setopt_key_encryption_key(x.ctx_, kek.b)) x.raise("masterKey");
    }
    const binary_ref f(filter.bytes());
    if (!mongocrypt_ctx_rewrap_many_datakey_init(x.ctx_, f.b)) x.raise("rewrapManyDataKey");
    return x;
}

next_action context::next() {
    switch (mongocrypt_ctx_state(ctx_)) {
        case MONGOCRYPT_CTX_NEED_MONGO_KEYS: {
            auto filter = filled([this](mongocrypt_binary_t* b) { return mongocrypt_ctx_mongo_op(ctx_, b); });
            if (!filter) raise("run");
            return action::need_keys{std::move(*filter)};
        }
        case MONGOCRYPT_CTX_NEED_KMS: {
            kms_.clear();
            action::need_kms need;
            while (mongocrypt_kms_ctx_t* kms = mongocrypt_ctx_next_kms_ctx(ctx_)) {
                kms_request r;
                r.index = kms_.size();
                uint32_t len = 0;
                const char* name = mongocrypt_kms_ctx_get_kms_provider(kms, &len);
                r.provider = name ? std::string(name, len) : std::string("unknown");
                const char* endpoint = nullptr;
                if (!mongocrypt_kms_ctx_endpoint(kms, &endpoint) || !endpoint) raise_kms(kms, r, "endpoint");
                r.endpoint = endpoint;
                std::tie(r.host, r.port) = split_endpoint(r.endpoint);
                const std::unique_ptr<mongocrypt_binary_t, void (*)(mongocrypt_binary_t*)> msg(mongocrypt_binary_new(),
                                                                                             mongocrypt_binary_destroy);
                if (!mongocrypt_kms_ctx_message(kms, msg.get())) raise_kms(kms, r, "message");
                const std::uint8_t* data = mongocrypt_binary_data(msg.get());
                r.message.assign(data, data + mongocrypt_binary_len(msg.get()));
                kms_.emplace_back(kms, r);
                need.requests.push_back(std::move(r));
            }
            return need;
        }
        case MONGOCRYPT_CTX_READY: {
            auto result = filled([this](mongocrypt_binary_t* b) { return mongocrypt_ctx_finalize(ctx_, b); });
            if (!result) raise("run");
            return action::done{std::move(*result)};
        }
        case MONGOCRYPT_CTX_ERROR: raise("run");
        case MONGOCRYPT_CTX_DONE:  // finished without a result (rewrap: no key matched)
            return action::done{bson::document()};
        case MONGOCRYPT_CTX_NEED_MONGO_COLLINFO:
        case MONGOCRYPT_CTX_NEED_MONGO_MARKINGS:
        case MONGOCRYPT_CTX_NEED_KMS_CREDENTIALS: break;
    }
    throw error(errc::configuration_error, "client encryption: libmongocrypt asked for automatic encryption's inputs, "
                                        "which explicit encryption never needs");
}

void context::feed_key(bson::document_view key) {
    const binary_ref k(key.bytes());
    if (!mongocrypt_ctx_mongo_feed(ctx_, k.b)) raise("run");
}

void context::keys_done() {
    if (!mongocrypt_ctx_mongo_done(ctx_)) raise("run");
}

void context::raise_kms(_mongocrypt_kms_ctx_t* kms, const kms_request& r, std::string_view during) {
    status_holder st;
    mongocrypt_kms_ctx_status(kms, st.s);
    // A reply refused (the KMS's error reply, or one libmongocrypt cannot parse) is the remote
    // service failing; a request that cannot be made is configuration.
    const errc code = during == "reply" || mongocrypt_status_type(st.s) == MONGOCRYPT_STATUS_ERROR_KMS
                          ? errc::operation_failure
                          : errc::configuration_error;
    throw error(code, "KMS provider \"" + r.provider + "\" at " + r.endpoint + " (" + std::string(during) +
                          "): " + st.message());
}

std::size_t context::kms_bytes_needed(std::size_t index) const {
    return mongocrypt_kms_ctx_bytes_needed(kms_.at(index).first);
}

void context::feed_kms(std::size_t index, std::span<const std::uint8_t> reply) {
    auto& [kms, r] = kms_.at(index);
    const binary_ref bytes(reply);
    if (!mongocrypt_kms_ctx_feed(kms, bytes.b)) raise_kms(kms, r, "reply");
}

void context::kms_done() {
    for (const auto& [kms, r] : kms_)
        if (mongocrypt_kms_ctx_bytes_needed(kms) != 0)
            throw error(errc::configuration_error, "KMS provider \"" + r.provider + "\" at " + r.endpoint +
                                                       ": kms_done() before its reply was complete");
    kms_.clear();
    if (!mongocrypt_ctx_kms_done(ctx_)) raise("KMS");
}

}  // namespace trellis::encryption
