// Suite unified: the entity map, createEntities and the client entity's event listeners.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include "unified.hpp"

namespace trellis::spec::unified {

// ---------------------------------------------------------------- the map

void entity_map::add(const std::string& id, entity e) {
    if (map_.contains(id)) fail("entity \"" + id + "\" is already defined");
    map_.emplace(id, std::move(e));
    order_.push_back(id);
}

entity* entity_map::find(const std::string& id) {
    auto it = map_.find(id);
    return it == map_.end() ? nullptr : &it->second;
}

namespace {

std::string_view kind_name(entity::kind k) {
    switch (k) {
        case entity::kind::client: return "client";
        case entity::kind::database: return "database";
        case entity::kind::collection: return "collection";
        case entity::kind::cursor: return "cursor";
        case entity::kind::session: return "session";
        case entity::kind::bucket: return "bucket";
        case entity::kind::value: return "BSON value";
        case entity::kind::change_stream: return "changeStream";
        case entity::kind::client_encryption: return "clientEncryption";
    }
    return "entity";
}

}  // namespace

entity& entity_map::get(const std::string& id, entity::kind k) {
    entity* e = find(id);
    if (!e) fail("entity \"" + id + "\" is not defined");
    if (e->k != k) fail("entity \"" + id + "\" is a " + std::string(kind_name(e->k)) + ", not a " + std::string(kind_name(k)));
    return *e;
}

void entity_map::clear() {
    // Newest first: cursors and handles go before the clients they belong to.
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) map_.erase(*it);
    order_.clear();
    map_.clear();
}

std::vector<std::pair<std::string, entity::kind>> entity_map::kinds() const {
    std::vector<std::pair<std::string, entity::kind>> out;
    for (const auto& [id, e] : map_) out.emplace_back(id, e.k);
    return out;
}

std::vector<std::shared_ptr<client_entity>> entity_map::clients() const {
    std::vector<std::shared_ptr<client_entity>> out;
    for (const auto& [id, e] : map_)
        if (e.k == entity::kind::client) out.push_back(e.client);
    return out;
}

// ---------------------------------------------------------------- static checks

namespace {

// KMS providers and the credential fields each needs when it is configured at all (an empty
// document asks for on-demand credentials, which is valid).
void validate_kms_providers(const json::value& v) {
    const json::object& providers = object_of(v, "kmsProviders");
    if (providers.empty()) fail("clientEncryption: kmsProviders names no KMS provider");
    static const std::map<std::string, std::vector<std::string>> required = {
        {"aws", {"accessKeyId", "secretAccessKey"}},
        {"azure", {"tenantId", "clientId", "clientSecret"}},
        {"gcp", {"email", "privateKey"}},
        {"kmip", {"endpoint"}},
        {"local", {"key"}}};
    for (const auto& [name, config] : providers) {
        std::string type(name);
        if (auto colon = type.find(':'); colon != std::string::npos) type.resize(colon);
        auto it = required.find(type);
        if (it == required.end()) fail("clientEncryption: unknown KMS provider \"" + std::string(name) + "\"");
        const json::object& fields = object_of(config, "kmsProviders." + std::string(name));
        if (fields.empty()) continue;
        for (const std::string& field : it->second)
            if (!fields.contains(field))
                fail("clientEncryption: KMS provider \"" + std::string(name) + "\" lacks " + field);
    }
}

}  // namespace

void validate_entities(const json::array& list, entity_map* existing) {
    std::map<std::string, std::string> defined;  // id -> type
    if (existing)
        for (const auto& [id, k] : existing->kinds()) defined.emplace(id, std::string(k == entity::kind::value ? "value" : kind_name(k)));
    auto need = [&](const json::object& o, std::string_view field, std::string_view type, std::string_view who) {
        const auto* ref = o.if_contains(field);
        if (!ref) fail(std::string(who) + " lacks \"" + std::string(field) + "\"");
        const std::string id = string_of(*ref, field);
        auto it = defined.find(id);
        if (it == defined.end()) fail(std::string(who) + " refers to an undefined " + std::string(type) + " \"" + id + "\"");
        if (it->second != type) fail(std::string(who) + " refers to \"" + id + "\", a " + it->second + ", not a " + std::string(type));
    };
    for (const json::value& item : list) {
        const json::object& wrapper = object_of(item, "an entity");
        if (wrapper.size() != 1) fail("an entity must have exactly one key: " + show(item));
        const std::string type(wrapper.begin()->key());
        const json::object& o = object_of(wrapper.begin()->value(), type);
        const std::string id = string_of(field(o, "id"), type + ".id");
        const std::string who = type + " \"" + id + "\"";
        if (type == "database") need(o, "client", "client", who);
        if (type == "collection" || type == "bucket") need(o, "database", "database", who);
        if (type == "session") need(o, "client", "client", who);
        if (type == "client")
            if (const auto* api = o.if_contains("serverApi")) {
                const std::string version = string_of(object_of(*api, "serverApi").contains("version") ? api->at("version") : json::value(),
                                                      "serverApi.version");
                if (version != "1") fail(who + ": serverApi version \"" + version + "\" is not a declared API version");
            }
        if (type == "clientEncryption") {
            const json::object& opts = object_of(field(o, "clientEncryptionOpts"),
                                                 "clientEncryptionOpts");
            need(opts, "keyVaultClient", "client", who);
            if (!opts.contains("kmsProviders")) fail(who + " lacks kmsProviders");
            validate_kms_providers(opts.at("kmsProviders"));
        }
        if (!defined.emplace(id, type).second) fail("entity \"" + id + "\" is defined twice");
    }
}

// ---------------------------------------------------------------- options


trellis::write_concern write_concern_of(const json::value& v) {
    const json::object& o = object_of(v, "writeConcern");
    trellis::write_concern wc;
    for (const auto& [key, value] : o) {
        if (key == "w") {
            if (value.is_string())
                wc.w = std::string(value.get_string());
            else
                wc.w = static_cast<std::int32_t>(integer_of(value, "writeConcern.w"));
        } else if (key == "wtimeoutMS" || key == "wtimeout") {
            wc.wtimeout = std::chrono::milliseconds(integer_of(value, "writeConcern.wtimeoutMS"));
        } else if (key == "journal" || key == "j") {
            if (!value.is_bool()) fail("writeConcern.journal is not a boolean");
            wc.journal = value.get_bool();
        } else {
            fail("unknown writeConcern field " + std::string(key));
        }
    }
    return wc;
}


trellis::read_preference read_preference_of(const json::value& v) {
    const json::object& o = object_of(v, "readPreference");
    trellis::read_preference rp;
    for (const auto& [key, value] : o) {
        if (key == "mode") {
            const std::string m = string_of(value, "readPreference.mode");
            if (m == "primary") rp.mode = read_preference_mode::primary;
            else if (m == "primaryPreferred") rp.mode = read_preference_mode::primary_preferred;
            else if (m == "secondary") rp.mode = read_preference_mode::secondary;
            else if (m == "secondaryPreferred") rp.mode = read_preference_mode::secondary_preferred;
            else if (m == "nearest") rp.mode = read_preference_mode::nearest;
            else fail("unknown read preference mode \"" + m + "\"");
        } else if (key == "tagSets" || key == "tags") {
            for (const json::value& set : array_of(value, "readPreference.tagSets")) {
                tag_set tags;
                for (const auto& [k, t] : object_of(set, "a tag set")) tags.emplace_back(std::string(k), string_of(t, "a tag"));
                rp.tag_sets.push_back(std::move(tags));
            }
        } else if (key == "maxStalenessSeconds") {
            const std::int64_t s = integer_of(value, "maxStalenessSeconds");
            if (s >= 0) rp.max_staleness = std::chrono::seconds(s);
        } else {
            skip("option readPreference." + std::string(key) + " not supported");
        }
    }
    return rp;
}

trellis::transaction_options transaction_options_of(const json::object& o, std::string_view what) {
    trellis::transaction_options out;
    for (const auto& [key, value] : o) {
        if (key == "readConcern") {
            trellis::read_concern rc;
            for (const auto& [k, level] : object_of(value, "readConcern")) {
                if (k != "level") skip("option " + std::string(what) + ".readConcern." + std::string(k) + " not supported");
                rc.level = string_of(level, "readConcern.level");
            }
            out.read_concern = std::move(rc);
        } else if (key == "writeConcern") {
            out.write_concern = write_concern_of(value);
        } else if (key == "readPreference") {
            out.read_preference = read_preference_of(value);
        } else if (key == "maxCommitTimeMS") {
            out.max_commit_time = std::chrono::milliseconds(integer_of(value, "maxCommitTimeMS"));
        }
    }
    return out;
}

namespace {

trellis::handle_options handle_options_of(const json::object& o, std::string_view field) {
    trellis::handle_options out;
    const auto* v = o.if_contains(field);
    if (!v) return out;
    for (const auto& [key, value] : object_of(*v, field)) {
        if (key == "writeConcern") {
            out.write_concern = write_concern_of(value);
        } else if (key == "readPreference") {
            out.read_preference = read_preference_of(value);
        } else if (key == "readConcern") {
            trellis::read_concern rc;
            for (const auto& [k, level] : object_of(value, "readConcern")) {
                if (k != "level") skip("option " + std::string(field) + ".readConcern." + std::string(k) + " not supported");
                rc.level = string_of(level, "readConcern.level");
            }
            out.read_concern = std::move(rc);
        } else if (key == "timeoutMS") {
            out.timeout = std::chrono::milliseconds(integer_of(value, std::string(field) + ".timeoutMS"));
        } else if (key == "batchSize") {
            skip("option " + std::string(field) + "." + std::string(key) + " not supported");
        } else {
            fail("unknown " + std::string(field) + " field " + std::string(key));
        }
    }
    return out;
}

// ---------------------------------------------------------------- client entities

std::string uri_value(const std::string& key, const json::value& v) {
    if (v.is_bool()) return v.get_bool() ? "true" : "false";
    if (v.is_string()) return std::string(v.get_string());
    if (auto n = number_of(v)) return n->integral ? std::to_string(n->i) : json::serialize(v);
    skip("uriOption " + key + " with a document value not supported");
}

// Adds key=value to a connection string.
std::string with_option(std::string uri, const std::string& key, const std::string& value) {
    const auto scheme = uri.find("://");
    const auto slash = uri.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    if (slash == std::string::npos) uri += '/';
    uri += uri.find('?') == std::string::npos ? '?' : '&';
    return uri + key + "=" + value;
}

bool is_sensitive(std::string_view name) {
    static const std::set<std::string, std::less<>> names = {"authenticate", "saslStart", "saslContinue", "getnonce",
                                                             "createUser",   "updateUser", "copydbgetnonce",
                                                             "copydbsaslstart", "copydb"};
    return names.contains(name);
}
bool is_hello(std::string_view name) { return name == "hello" || name == "isMaster" || name == "ismaster"; }

std::string cmap_name(std::string_view type_name) {
    // "ConnectionPoolCreated" -> "poolCreatedEvent"; "ConnectionCheckedOut" -> "connectionCheckedOutEvent".
    std::string n(type_name);
    if (n.starts_with("ConnectionPool")) n = n.substr(std::string_view("Connection").size());
    n[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(n[0])));
    return n + "Event";
}

// The first host:port of a mongodb:// URI's seed list.
std::string first_seed(const std::string& uri) {
    auto from = uri.find("://");
    from = from == std::string::npos ? 0 : from + 3;
    if (const auto at = uri.find('@', from); at != std::string::npos && at < uri.find_first_of("/?", from)) from = at + 1;
    const auto to = uri.find_first_of(",/?", from);
    return uri.substr(from, to == std::string::npos ? std::string::npos : to - from);
}

void create_client(test_context& ctx, const std::string& id, const json::object& o) {
    auto ce = std::make_shared<client_entity>();
    ce->log = std::make_shared<event_log>();
    std::set<std::string> observe, ignore;
    bool observe_sensitive = false;
    std::string uri = ctx.where.uri;
    bool use_multiple = false;
    std::vector<std::pair<std::string, std::string>> options;
    for (const auto& [key, value] : o) {
        if (key == "id") continue;
        if (key == "uriOptions") {
            for (const auto& [k, v] : object_of(value, "uriOptions")) {
                // Refused by the client as not implemented (configuration_error): the test cannot run.
                if (k == "proxyHost" || k == "waitQueueMultiple")
                    skip("uriOption " + std::string(k) + " not implemented");
                options.emplace_back(std::string(k), uri_value(std::string(k), v));
            }
        } else if (key == "useMultipleMongoses") {
            use_multiple = value.is_bool() && value.get_bool();
        } else if (key == "observeEvents") {
            for (const auto& n : array_of(value, "observeEvents")) observe.insert(string_of(n, "observeEvents"));
        } else if (key == "ignoreCommandMonitoringEvents") {
            for (const auto& n : array_of(value, "ignoreCommandMonitoringEvents")) ignore.insert(string_of(n, "ignoreCommandMonitoringEvents"));
        } else if (key == "observeSensitiveCommands") {
            observe_sensitive = value.is_bool() && value.get_bool();
        } else if (key == "storeEventsAsEntities") {
            skip("client option storeEventsAsEntities not supported");
        } else if (key == "serverApi") {
            skip("client option serverApi not supported");
        } else if (key == "observeLogMessages") {
            skip("client option observeLogMessages not supported");
        } else if (key == "autoEncryptOpts") {
            skip("autoEncryptOpts: automatic encryption needs crypt_shared or mongocryptd (Debian ships neither) "
                 "and is not implemented; explicit encryption (clientEncryption) is");
        } else if (key == "awaitMinPoolSizeMS") {
            skip("client option awaitMinPoolSizeMS not supported");
        } else {
            fail("unknown client entity field " + std::string(key));
        }
    }
    // useMultipleMongoses: false means one router (the default when the field is absent is
    // "not specified": also one router, which keeps fail points and operations together).
    if (!use_multiple && ctx.where.topology == "sharded" && !ctx.where.mongoses.empty())
        uri = ctx.where.uri_for(ctx.where.mongoses.front(), false);
    // directConnection=true takes a single seed and no replicaSet (the format's rule): the first.
    const bool direct = std::any_of(options.begin(), options.end(),
                                    [](const auto& kv) { return kv.first == "directConnection" && kv.second == "true"; });
    if (direct) uri = ctx.where.uri_for(first_seed(uri), false);
    std::set<std::string> given;
    for (const auto& [k, v] : options) {
        uri = with_option(uri, k, v);
        given.insert(k);
    }
    // A bound on a broken run: never the 30 s default.
    if (!given.contains("serverSelectionTimeoutMS")) uri = with_option(uri, "serverSelectionTimeoutMS", "10000");
    // The format lets runners speed up SDAM recovery after a fail point (never for a client that
    // sets heartbeatFrequencyMS): polling monitors answer an operation's request for an immediate
    // check at once, where a streaming monitor waits out its awaitable hello.
    if (!given.contains("heartbeatFrequencyMS") && !given.contains("serverMonitoringMode"))
        uri = with_option(uri, "serverMonitoringMode", "poll");

    client_settings settings;
    std::weak_ptr<event_log> weak = ce->log;
    settings.on_command = [weak, observe, ignore, observe_sensitive](const command_event& ev) {
        auto log = weak.lock();
        if (!log) return;
        std::visit(
            [&](const auto& e) {
                using T = std::decay_t<decltype(e)>;
                json::object body;
                body["commandName"] = e.command_name;
                body["databaseName"] = e.database_name;
                body["hasServiceId"] = e.service_id.has_value();
                body["hasServerConnectionId"] = e.server_connection_id.has_value();
                std::string name;
                bool redacted = false;
                if constexpr (std::is_same_v<T, command_started_event>) {
                    name = "commandStartedEvent";
                    body["command"] = from_bson(e.command);
                    redacted = e.command.empty();
                } else if constexpr (std::is_same_v<T, command_succeeded_event>) {
                    name = "commandSucceededEvent";
                    body["reply"] = from_bson(e.reply);
                    redacted = e.reply.empty();
                } else {
                    name = "commandFailedEvent";
                    redacted = e.reply.empty() && e.failure.empty();
                }
                std::lock_guard lock(log->mutex);
                if (e.command_name == "configureFailPoint") {
                    if constexpr (std::is_same_v<T, command_succeeded_event>) log->last_configure_fail_point_address = e.address;
                    return;  // the runner's own fail points are never observed
                }
                if (!log->listening || !observe.contains(name) || ignore.contains(e.command_name)) return;
                // The connection handshake (legacy hello on admin, before the connection knows its
                // server's connectionId): Trellis publishes it as command events; the format's
                // tests are written for drivers that do not, so it is never observed here.
                if (is_hello(e.command_name) && e.database_name == "admin" && !e.server_connection_id) return;
                if (!observe_sensitive && (is_sensitive(e.command_name) || (is_hello(e.command_name) && redacted))) return;
                json::object wrapped;
                wrapped[name] = std::move(body);
                log->command.push_back(std::move(wrapped));
            },
            ev);
    };
    settings.on_cmap = [weak, observe](const cmap_event& ev) {
        auto log = weak.lock();
        if (!log) return;
        const std::string name = cmap_name(event_name(ev));
        json::object body;
        std::visit(
            [&](const auto& e) {
                using T = std::decay_t<decltype(e)>;
                if constexpr (std::is_same_v<T, connection_closed_event>) body["reason"] = std::string(to_string(e.reason));
                if constexpr (std::is_same_v<T, connection_check_out_failed_event>) body["reason"] = std::string(to_string(e.reason));
                if constexpr (std::is_same_v<T, pool_cleared_event>) {
                    body["hasServiceId"] = e.service_id.has_value();
                    body["interruptInUseConnections"] = e.interrupt_in_use_connections;
                }
            },
            ev);
        std::lock_guard lock(log->mutex);
        if (name == "connectionCheckedOutEvent") ++log->checked_out;
        if (name == "connectionCheckedInEvent") --log->checked_out;
        if (!log->listening || !observe.contains(name)) return;
        json::object wrapped;
        wrapped[name] = std::move(body);
        log->cmap.push_back(std::move(wrapped));
    };
    settings.on_sdam = [weak, observe](const sdam_event& ev) {
        auto log = weak.lock();
        if (!log) return;
        // "TopologyDescriptionChanged" -> "topologyDescriptionChangedEvent"; descriptions as {type}.
        std::string name(event_name(ev));
        name[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[0])));
        name += "Event";
        json::object body;
        std::visit(
            [&](const auto& e) {
                using T = std::decay_t<decltype(e)>;
                if constexpr (std::is_same_v<T, server_description_changed_event>) {
                    body["address"] = e.address;
                    body["previousDescription"] = json::object{{"type", std::string(sdk::to_string(e.previous_description.type))}};
                    body["newDescription"] = json::object{{"type", std::string(sdk::to_string(e.new_description.type))}};
                } else if constexpr (std::is_same_v<T, topology_description_changed_event>) {
                    body["previousDescription"] = json::object{{"type", std::string(sdk::to_string(e.previous_description.type))}};
                    body["newDescription"] = json::object{{"type", std::string(sdk::to_string(e.new_description.type))}};
                } else if constexpr (std::is_same_v<T, server_heartbeat_started_event> ||
                                     std::is_same_v<T, server_heartbeat_succeeded_event> ||
                                     std::is_same_v<T, server_heartbeat_failed_event>) {
                    body["awaited"] = e.awaited;
                }
            },
            ev);
        std::lock_guard lock(log->mutex);
        if (!log->listening || !observe.contains(name)) return;
        json::object wrapped;
        wrapped[name] = std::move(body);
        log->sdam.push_back(std::move(wrapped));
    };
    try {
        ce->client = std::make_unique<trellis::client>(uri, std::move(settings));
    } catch (const trellis::configuration_error& e) {
        skip(std::string("client uriOptions refused by the connection string parser: ") + e.what());
    }
    entity e;
    e.k = entity::kind::client;
    e.client = std::move(ce);
    ctx.entities.add(id, std::move(e));
}

// A $$placeholder credential's value: TRELLIS_TEST_KMS_<PROVIDER>_<FIELD> from the environment,
// else a well-formed stand-in (the remote KMSes are never contacted here; local's is the spec
// tests' usual local master key).
json::value kms_placeholder(std::string_view provider, std::string_view field) {
    std::string var = "TRELLIS_TEST_KMS_" + std::string(provider) + "_" + std::string(field);
    for (char& ch : var) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    for (char& ch : var)
        if (ch == ':') ch = '_';
    if (const char* v = std::getenv(var.c_str())) return json::value(v);
    static const std::map<std::string, std::string, std::less<>> stand_in = {
        {"aws.accessKeyId", "trellis-placeholder-access-key-id"},
        {"aws.secretAccessKey", "trellis-placeholder-secret-access-key"},
        {"aws.sessionToken", "trellis-placeholder-session-token"},
        {"azure.tenantId", "trellis-placeholder-tenant"},
        {"azure.clientId", "trellis-placeholder-client"},
        {"azure.clientSecret", "trellis-placeholder-secret"},
        {"azure.identityPlatformEndpoint", "login.microsoftonline.com"},
        {"gcp.email", "trellis-placeholder@example.invalid"},
        {"gcp.privateKey", "dHJlbGxpcy1wbGFjZWhvbGRlcg=="},
        {"gcp.endpoint", "oauth2.googleapis.com"},
        {"kmip.endpoint", "localhost:5698"},
        {"local.key", "Mng0NCt4ZHVUYUJCa1kxNkVyNUR1QURhZ2h2UzR2d2RrZzh0cFBwM3R6NmdWMDFBMUN3YkQ5aXRRMkhGRGdQV09wOGVNYUMxT2k3NjZKelhaQmRCZGJkTXVyZG9uSjFk"},
    };
    std::string type(provider.substr(0, provider.find(':')));
    const auto it = stand_in.find(type + "." + std::string(field));
    if (it == stand_in.end()) fail("kmsProviders." + std::string(provider) + "." + std::string(field) + ": no value for this $$placeholder");
    return json::value(it->second);
}

void create_client_encryption(test_context& ctx, const std::string& id, const json::object& o) {
    for (const auto& [key, value] : o)
        if (key != "id" && key != "clientEncryptionOpts") fail("unknown clientEncryption entity field " + std::string(key));
    const json::object& opts = o.at("clientEncryptionOpts").get_object();
    trellis::client_encryption_options ceo;
    json::object providers;
    for (const auto& [key, value] : opts) {
        if (key == "keyVaultClient") {
            ceo.key_vault_client = ctx.entities.get(string_of(value, "keyVaultClient"), entity::kind::client).client->client.get();
        } else if (key == "keyVaultNamespace") {
            ceo.key_vault_namespace = string_of(value, "keyVaultNamespace");
        } else if (key == "kmsProviders") {
            for (const auto& [name, config] : object_of(value, "kmsProviders")) {
                const json::object& fields = object_of(config, "kmsProviders." + std::string(name));
                if (fields.empty())
                    skip("kmsProviders: on-demand KMS credentials (an empty provider document) are not supported");
                json::object replaced;
                for (const auto& [field, v] : fields) {
                    const bool placeholder = v.is_object() && v.get_object().contains("$$placeholder");
                    replaced[field] = placeholder ? kms_placeholder(name, field) : v;
                }
                providers[name] = std::move(replaced);
            }
        } else if (key == "keyExpirationMS") {
            skip("clientEncryption keyExpirationMS needs libmongocrypt 1.11 (this build has " +
                 trellis::client_encryption::libmongocrypt_version() + ")");
        } else {
            fail("unknown clientEncryptionOpts field " + std::string(key));
        }
    }
    if (ceo.key_vault_namespace.empty()) fail("clientEncryption \"" + id + "\" lacks keyVaultNamespace");
    ceo.kms_providers = to_bson(providers);
    entity e;
    e.k = entity::kind::client_encryption;
    e.encryption = std::make_shared<trellis::client_encryption>(std::move(ceo));
    ctx.entities.add(id, std::move(e));
}

}  // namespace

void create_entities(test_context& ctx, const json::array& list) {
    validate_entities(list, &ctx.entities);
    for (const json::value& item : list) {
        const json::object& wrapper = item.get_object();
        const std::string type(wrapper.begin()->key());
        const json::object& o = wrapper.begin()->value().get_object();
        const std::string id = string_of(o.at("id"), "id");
        if (type == "client") {
            create_client(ctx, id, o);
        } else if (type == "database") {
            for (const auto& [key, value] : o)
                if (key != "id" && key != "client" && key != "databaseName" && key != "databaseOptions")
                    fail("unknown database entity field " + std::string(key));
            entity& c = ctx.entities.get(string_of(o.at("client"), "client"), entity::kind::client);
            const handle_options opts = handle_options_of(o, "databaseOptions");
            entity e;
            e.k = entity::kind::database;
            e.client = c.client;
            e.client_id = string_of(o.at("client"), "client");
            e.db = c.client->client->get_database(string_of(field(o, "databaseName"), "databaseName")).with_options(opts);
            ctx.entities.add(id, std::move(e));
        } else if (type == "collection") {
            for (const auto& [key, value] : o)
                if (key != "id" && key != "database" && key != "collectionName" && key != "collectionOptions")
                    fail("unknown collection entity field " + std::string(key));
            entity& d = ctx.entities.get(string_of(o.at("database"), "database"), entity::kind::database);
            const handle_options opts = handle_options_of(o, "collectionOptions");
            entity e;
            e.k = entity::kind::collection;
            e.client = d.client;
            e.client_id = d.client_id;
            e.coll = d.db->get_collection(string_of(field(o, "collectionName"), "collectionName")).with_options(opts);
            ctx.entities.add(id, std::move(e));
        } else if (type == "session") {
            for (const auto& [key, value] : o)
                if (key != "id" && key != "client" && key != "sessionOptions") fail("unknown session entity field " + std::string(key));
            entity& c = ctx.entities.get(string_of(o.at("client"), "client"), entity::kind::client);
            session_options so;
            if (const auto* v = o.if_contains("sessionOptions")) {
                for (const auto& [key, value] : object_of(*v, "sessionOptions")) {
                    if (key == "causalConsistency") so.causal_consistency = value.as_bool();
                    else if (key == "snapshot") so.snapshot = value.as_bool();
                    else if (key == "defaultTransactionOptions") {
                        const json::object& d = object_of(value, "defaultTransactionOptions");
                        for (const auto& [k, v] : d)
                            if (k != "readConcern" && k != "writeConcern" && k != "readPreference" && k != "maxCommitTimeMS")
                                fail("unknown defaultTransactionOptions field " + std::string(k));
                        so.default_transaction_options = transaction_options_of(d, "defaultTransactionOptions");
                    }
                    else fail("unknown sessionOptions field " + std::string(key));
                }
            }
            entity e;
            e.k = entity::kind::session;
            e.client = c.client;
            e.client_id = string_of(o.at("client"), "client");
            e.session = std::make_shared<trellis::client_session>(c.client->client->start_session(so));
            ctx.entities.add(id, std::move(e));
        } else if (type == "bucket") {
            for (const auto& [key, value] : o)
                if (key != "id" && key != "database" && key != "bucketOptions") fail("unknown bucket entity field " + std::string(key));
            entity& d = ctx.entities.get(string_of(o.at("database"), "database"), entity::kind::database);
            gridfs::bucket_options bo;
            json::object concerns;  // readConcern, readPreference, writeConcern: as other entities'
            if (const auto* v = o.if_contains("bucketOptions")) {
                for (const auto& [key, value] : object_of(*v, "bucketOptions")) {
                    if (key == "bucketName") bo.bucket_name = string_of(value, "bucketName");
                    else if (key == "chunkSizeBytes") bo.chunk_size_bytes = static_cast<std::int32_t>(integer_of(value, "chunkSizeBytes"));
                    else if (key == "disableMD5") (void)value.as_bool();  // MD5 is never computed
                    else concerns[key] = value;
                }
            }
            const json::object wrapped{{"bucketOptions", concerns}};
            const handle_options h = handle_options_of(wrapped, "bucketOptions");
            bo.read_concern = h.read_concern;
            bo.read_preference = h.read_preference;
            bo.write_concern = h.write_concern;
            entity e;
            e.k = entity::kind::bucket;
            e.client = d.client;
            e.client_id = d.client_id;
            e.bucket = std::make_shared<gridfs::bucket>(*d.db, std::move(bo));
            ctx.entities.add(id, std::move(e));
        } else if (type == "clientEncryption") {
            create_client_encryption(ctx, id, o);
        } else if (type == "thread") {
            skip("thread entities not implemented");
        } else {
            fail("unknown entity type \"" + type + "\"");
        }
    }
}

// ---------------------------------------------------------------- target

std::string target::uri_for(const std::string& address, bool direct) const {
    std::string options;
    if (const auto q = uri.find('?'); q != std::string::npos) {
        std::istringstream in(uri.substr(q + 1));
        for (std::string kv; std::getline(in, kv, '&');)
            if (!kv.empty() && !kv.starts_with("replicaSet=") && !kv.starts_with("directConnection=") &&
                !kv.starts_with("serverSelectionTimeoutMS="))
                options += "&" + kv;
    }
    std::string path = "/";
    if (const auto scheme = uri.find("://"); scheme != std::string::npos) {
        const auto slash = uri.find('/', scheme + 3);
        const auto q = uri.find('?');
        if (slash != std::string::npos && (q == std::string::npos || slash < q))
            path = uri.substr(slash, (q == std::string::npos ? uri.size() : q) - slash);
    }
    return "mongodb://" + credentials + address + path + "?directConnection=" + (direct ? "true" : "false") + options;
}

trellis::client& target::direct_client(const std::string& address) {
    auto& c = direct[address];
    if (!c) c = std::make_unique<trellis::client>(uri_for(address, true) + "&serverSelectionTimeoutMS=5000");
    return *c;
}

}  // namespace trellis::spec::unified
