// The shell of client_encryption: drives a crypt_core context, doing its key vault reads with the
// key vault client and its KMS round trips over TLS, and the key management queries of the spec.
#include "trellis/client_encryption.hpp"

#include <boost/asio/use_awaitable.hpp>
#include <variant>

#include "client/wait.hpp"
#include "encryption/crypt_core.hpp"
#include "encryption/kms_io.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/database.hpp"
#include "trellis/errors.hpp"

namespace trellis {

namespace {

bson::document box_of(bson::element value) {
    bson::builder b;
    b.append("v", value);
    return b.extract();
}

bson::document id_filter(const bson::uuid& id) {
    bson::builder b;
    b.append("_id", id);
    return b.extract();
}

// A need_kms round, one request after the other.
boost::asio::awaitable<void> kms_requests(encryption::context& ctx, const std::vector<encryption::kms_request>& requests,
                                          const encryption::kms_tls_contexts& tls, std::chrono::milliseconds timeout,
                                          errc timeout_code) {
    for (const auto& r : requests) {
        const auto& settings = tls.for_provider(r.provider);
        co_await encryption::kms_round_trip(ctx, r, settings, timeout, timeout_code);
    }
}

}  // namespace

owned_value::owned_value() : owned_value(owned_value::of(nullptr)) {}

owned_value::owned_value(bson::document box) : box_(std::move(box)) {
    if (!box_.contains("v")) throw error(errc::invalid_argument, "owned_value: the document has no field \"v\"");
}

struct client_encryption::impl {
    client_encryption_options options;
    std::string db, coll;
    encryption::crypt crypt;
    encryption::kms_tls_contexts tls;

    explicit impl(client_encryption_options o)
        : options(std::move(o)),
          crypt((check(options), options.kms_providers.view())),
          tls(encryption::parse_kms_tls_options(options.tls_options, options.kms_providers), options.kms_providers) {
        const auto dot = options.key_vault_namespace.find('.');
        db = options.key_vault_namespace.substr(0, dot);
        coll = options.key_vault_namespace.substr(dot + 1);
    }

    static int check(const client_encryption_options& o) {
        if (!o.key_vault_client) throw configuration_error("client_encryption_options: key_vault_client is not set");
        const auto& ns = o.key_vault_namespace;
        const auto dot = ns.find('.');
        if (dot == std::string::npos || dot == 0 || dot + 1 == ns.size())
            throw configuration_error("client_encryption_options: key_vault_namespace \"" + ns +
                                      "\" is not of the form \"database.collection\"");
        if (o.kms_timeout <= std::chrono::milliseconds::zero())
            throw configuration_error("client_encryption_options: kms_timeout must be positive");
        return 0;
    }

    // The key vault with readConcern and writeConcern majority, as the spec asks.
    collection key_vault() const {
        handle_options h;
        h.read_concern = read_concern{std::string("majority")};
        write_concern wc;
        wc.w = std::string("majority");
        h.write_concern = wc;
        return (*options.key_vault_client)[db][coll].with_options(h);
    }

    // One need_kms round on the key vault client's executor. Its timeoutMS bounds each round trip
    // when it has one, kms_timeout otherwise.
    boost::asio::awaitable<void> kms_round(encryption::context& ctx, const std::vector<encryption::kms_request>& requests) const {
        const auto csot = options.key_vault_client->core()->options().timeout;
        const bool bounded = csot && csot->count() > 0;
        const std::chrono::milliseconds timeout = bounded ? *csot : options.kms_timeout;
        const errc expired = bounded ? errc::operation_timeout : errc::network_timeout;
        co_await kms_requests(ctx, requests, tls, timeout, expired);
        ctx.kms_done();
    }

    // The one loop over a context's states.
    static boost::asio::awaitable<bson::document> run(std::shared_ptr<impl> self, encryption::context& ctx) {
        std::string looked_up;  // the last key vault filter, for errors about a missing key
        auto with_context = [&](const error& e) {
            std::string what = e.what();  // "<text>: <the code's message>": keep the text
            const std::string suffix = ": " + e.code().message();
            if (what.ends_with(suffix)) what.resize(what.size() - suffix.size());
            return error(e.code(), what + " (key vault " + self->options.key_vault_namespace + ", filter " + looked_up + ")");
        };
        for (;;) {
            encryption::next_action next;
            try {
                next = ctx.next();
            } catch (const error& e) {
                if (looked_up.empty()) throw;
                throw with_context(e);
            }
            if (auto* d = std::get_if<encryption::action::done>(&next)) co_return std::move(d->result);
            if (auto* k = std::get_if<encryption::action::need_kms>(&next)) {
                co_await self->kms_round(ctx, k->requests);
                continue;
            }
            auto& keys = std::get<encryption::action::need_keys>(next);
            looked_up = bson::to_json(keys.filter, bson::json_mode::relaxed);
            collection vault = self->key_vault();
            const find_options all;
            cursor found = co_await vault.async_find(std::move(keys.filter), all, boost::asio::use_awaitable);
            for (;;) {
                const std::optional<bson::document> key = co_await found.async_next(boost::asio::use_awaitable);
                if (!key) break;
                ctx.feed_key(*key);
            }
            try {
                ctx.keys_done();
            } catch (const error& e) {
                throw with_context(e);
            }
        }
    }
};

client_encryption::client_encryption(client_encryption_options options)
    : impl_(std::make_shared<impl>(std::move(options))) {}
client_encryption::~client_encryption() = default;
std::string client_encryption::libmongocrypt_version() { return encryption::libmongocrypt_version(); }
client_encryption::client_encryption(client_encryption&&) noexcept = default;
client_encryption& client_encryption::operator=(client_encryption&&) noexcept = default;

boost::asio::any_io_executor client_encryption::executor() const {
    if (!impl_) throw error(errc::invalid_argument, "client_encryption: used after it was moved from");
    return impl_->options.key_vault_client->get_executor();
}

template <class R>
R client_encryption::wait(const impl_ptr& self, boost::asio::awaitable<R> work) {
    if (!self) throw error(errc::invalid_argument, "client_encryption: used after it was moved from");
    return detail::wait(self->options.key_vault_client->core(), std::move(work));
}

// ---------------------------------------------------------------- data keys, encrypt, decrypt

boost::asio::awaitable<bson::uuid> client_encryption::create_data_key_impl(impl_ptr self, std::string kms_provider,
                                                                          data_key_options options) {
    const auto& providers = self->options.kms_providers;
    if (!providers.contains(kms_provider))
        throw error(errc::invalid_argument,
                    "create_data_key: KMS provider \"" + kms_provider + "\" is not configured in kms_providers");
    if (kms_provider == "local" && options.master_key && !options.master_key->empty())
        throw error(errc::invalid_argument, "create_data_key: the local provider takes no master_key");
    if (options.key_material && options.key_material->size() != 96)
        throw error(errc::invalid_argument, "create_data_key: key_material must be 96 bytes, got " +
                                                std::to_string(options.key_material->size()));
    for (const auto& name : options.key_alt_names)
        if (name.empty()) throw error(errc::invalid_argument, "create_data_key: a key_alt_name is empty");
    bson::builder kek;
    kek.append("provider", kms_provider);
    if (options.master_key) {
        if (options.master_key->contains("provider"))
            throw error(errc::invalid_argument, "create_data_key: master_key must not name the provider");
        kek.concat(*options.master_key);
    }
    const bson::document master_key = kek.extract();
    auto ctx = encryption::context::data_key(self->crypt, master_key, options.key_alt_names,
                                             options.key_material ? &*options.key_material : nullptr);
    bson::document key = co_await impl::run(self, ctx);
    const bson::uuid id = key["_id"].get_uuid();
    collection vault = self->key_vault();
    const insert_one_options insert;
    co_await vault.async_insert_one(std::move(key), insert, boost::asio::use_awaitable);
    co_return id;
}

bson::uuid client_encryption::create_data_key(std::string_view kms_provider, const data_key_options& options) {
    return wait(impl_, create_data_key_impl(impl_, std::string(kms_provider), options));
}

boost::asio::awaitable<owned_value> client_encryption::encrypt_impl(impl_ptr self, owned_value value, encrypt_options options) {
    if (options.key_id.has_value() == options.key_alt_name.has_value())
        throw error(errc::invalid_argument, "encrypt: give exactly one of key_id and key_alt_name");
    if (options.algorithm != encryption_algorithm::deterministic && options.algorithm != encryption_algorithm::random)
        throw error(errc::invalid_argument,
                    "encrypt: algorithm \"" + options.algorithm + "\" is not supported (use " +
                        std::string(encryption_algorithm::deterministic) + " or " +
                        std::string(encryption_algorithm::random) + "; Indexed, Unindexed and Range need queryable encryption)");
    if (value.type() == bson::type::binary && value.get().get_binary().subtype == bson::binary_subtype::encrypted)
        throw error(errc::invalid_argument, "encrypt: the value is already encrypted (binary subtype 6)");
    std::vector<std::uint8_t> id;
    if (options.key_id) id.assign(options.key_id->bytes.begin(), options.key_id->bytes.end());
    auto ctx = encryption::context::explicit_encrypt(self->crypt, value.box(), options.key_id ? &id : nullptr,
                                                     options.key_alt_name ? &*options.key_alt_name : nullptr,
                                                     options.algorithm);
    bson::document result = co_await impl::run(self, ctx);
    co_return owned_value(std::move(result));
}

owned_value client_encryption::encrypt(bson::element value, const encrypt_options& options) {
    return wait(impl_, encrypt_impl(impl_, owned_value(box_of(value)), options));
}

boost::asio::awaitable<owned_value> client_encryption::decrypt_impl(impl_ptr self, owned_value ciphertext) {
    if (ciphertext.type() != bson::type::binary)
        throw error(errc::invalid_argument, "decrypt: the value is not binary (subtype 6, encrypted)");
    const auto subtype = ciphertext.get().get_binary().subtype;
    if (subtype != bson::binary_subtype::encrypted)
        throw error(errc::invalid_argument,
                    "decrypt: the value is binary subtype " + std::to_string(subtype) + ", not 6 (encrypted)");
    auto ctx = encryption::context::explicit_decrypt(self->crypt, ciphertext.box());
    bson::document result = co_await impl::run(self, ctx);
    co_return owned_value(std::move(result));
}

owned_value client_encryption::decrypt(bson::binary ciphertext) {
    return wait(impl_, decrypt_impl(impl_, owned_value::of(ciphertext)));
}

// ---------------------------------------------------------------- key management

boost::asio::awaitable<std::optional<bson::document>> client_encryption::get_key_impl(impl_ptr self, bson::uuid id) {
    collection vault = self->key_vault();
    bson::document filter = id_filter(id);
    const find_options one;
    co_return co_await vault.async_find_one(std::move(filter), one, boost::asio::use_awaitable);
}
std::optional<bson::document> client_encryption::get_key(const bson::uuid& id) { return wait(impl_, get_key_impl(impl_, id)); }

boost::asio::awaitable<cursor> client_encryption::get_keys_impl(impl_ptr self) {
    collection vault = self->key_vault();
    const find_options all;
    co_return co_await vault.async_find(bson::document(), all, boost::asio::use_awaitable);
}
cursor client_encryption::get_keys() { return wait(impl_, get_keys_impl(impl_)); }

boost::asio::awaitable<delete_result> client_encryption::delete_key_impl(impl_ptr self, bson::uuid id) {
    collection vault = self->key_vault();
    bson::document filter = id_filter(id);
    const delete_options one;
    co_return co_await vault.async_delete_one(std::move(filter), one, boost::asio::use_awaitable);
}
delete_result client_encryption::delete_key(const bson::uuid& id) { return wait(impl_, delete_key_impl(impl_, id)); }

namespace {

bson::document add_alt_name_update(std::string_view name) {
    bson::builder u;
    u.open_document("$addToSet").append("keyAltNames", name).close_document();
    return u.extract();
}

// The spec's pipeline: drop the name, and the field itself when the name was its only entry.
bson::array remove_alt_name_pipeline(std::string_view name) {
    bson::builder p(bson::builder::root::array);
    p.open_document()
        .open_document("$set")
        .open_document("keyAltNames")
        .open_array("$cond")
        .open_document()
        .open_array("$eq")
        .append("$keyAltNames")
        .open_array()
        .append(name)
        .close_array()
        .close_array()
        .close_document()
        .append("$$REMOVE")
        .open_document()
        .open_document("$filter")
        .append("input", "$keyAltNames")
        .open_document("cond")
        .open_array("$ne")
        .append("$$this")
        .append(name)
        .close_array()
        .close_document()
        .close_document()
        .close_document()
        .close_array()
        .close_document()
        .close_document()
        .close_document();
    return bson::array(p.extract());
}

}  // namespace

boost::asio::awaitable<std::optional<bson::document>> client_encryption::alt_name_impl(impl_ptr self, bson::uuid id,
                                                                                      std::string name, bool add) {
    collection vault = self->key_vault();
    bson::document filter = id_filter(id);
    update_spec change = add ? update_spec(add_alt_name_update(name)) : update_spec(remove_alt_name_pipeline(name));
    const find_one_and_update_options before;  // returns the key as it was
    co_return co_await vault.async_find_one_and_update(std::move(filter), std::move(change), before,
                                                       boost::asio::use_awaitable);
}

std::optional<bson::document> client_encryption::add_key_alt_name(const bson::uuid& id, std::string_view name) {
    return wait(impl_, alt_name_impl(impl_, id, std::string(name), true));
}

std::optional<bson::document> client_encryption::remove_key_alt_name(const bson::uuid& id, std::string_view name) {
    return wait(impl_, alt_name_impl(impl_, id, std::string(name), false));
}

boost::asio::awaitable<std::optional<bson::document>> client_encryption::get_key_by_alt_name_impl(impl_ptr self,
                                                                                                  std::string name) {
    bson::builder f;
    f.append("keyAltNames", name);
    bson::document filter = f.extract();
    collection vault = self->key_vault();
    const find_options one;
    co_return co_await vault.async_find_one(std::move(filter), one, boost::asio::use_awaitable);
}

std::optional<bson::document> client_encryption::get_key_by_alt_name(std::string_view name) {
    return wait(impl_, get_key_by_alt_name_impl(impl_, std::string(name)));
}

boost::asio::awaitable<rewrap_many_data_key_result> client_encryption::rewrap_impl(impl_ptr self, bson::document filter,
                                                                                  rewrap_many_data_key_options options) {
    if (options.provider.empty() && options.master_key)
        throw error(errc::invalid_argument, "rewrap_many_data_key: master_key needs a provider");
    std::optional<bson::document> kek;
    if (!options.provider.empty()) {
        if (!self->options.kms_providers.contains(options.provider))
            throw error(errc::invalid_argument, "rewrap_many_data_key: KMS provider \"" + options.provider +
                                                    "\" is not configured in kms_providers");
        bson::builder b;
        b.append("provider", options.provider);
        if (options.master_key) b.concat(*options.master_key);
        kek = b.extract();
    }
    auto ctx = encryption::context::rewrap(self->crypt, filter, kek ? &*kek : nullptr);
    const bson::document rewrapped = co_await impl::run(self, ctx);
    std::vector<write_model> models;
    const auto keys = rewrapped.find("v");
    for (const auto& e : keys ? keys->get_array() : bson::array_view()) {
        const bson::document_view key = e.get_document();
        bson::builder u;
        u.open_document("$set")
            .append("masterKey", key["masterKey"])
            .append("keyMaterial", key["keyMaterial"])
            .close_document()
            .open_document("$currentDate")
            .append("updateDate", true)
            .close_document();
        bson::builder f;
        f.append("_id", key["_id"]);
        update_one_model m;
        m.filter = f.extract();
        m.update = u.extract();
        models.push_back(std::move(m));
    }
    rewrap_many_data_key_result result;
    if (!models.empty()) {
        collection vault = self->key_vault();
        const bulk_write_options ordered;
        result.bulk_write_result = co_await vault.async_bulk_write(std::move(models), ordered, boost::asio::use_awaitable);
    }
    co_return result;
}

rewrap_many_data_key_result client_encryption::rewrap_many_data_key(bson::document_view filter,
                                                                     const rewrap_many_data_key_options& options) {
    return wait(impl_, rewrap_impl(impl_, bson::document(filter), options));
}

}  // namespace trellis
