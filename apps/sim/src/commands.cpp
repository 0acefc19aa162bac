// Command handlers of a simulated member. Replies are shaped as mongod's.
#include <algorithm>
#include <unistd.h>

#include "auth_glue.hpp"
#include "trellis/bson/json.hpp"
#include "session.hpp"

namespace trellis::sim {

using asio::use_awaitable;

namespace {

constexpr std::int32_t max_bson_size = 16 * 1024 * 1024;
constexpr std::int32_t max_message_size = 48000000;
constexpr std::int32_t max_write_batch = 100000;

// ---------------------------------------------------------------- replies

bson::document error_reply(int code, std::string_view code_name, std::string_view msg,
                           bson::document_view labels = bson::document_view(), bson::document_view extra = bson::document_view()) {
    bson::builder b;
    b.append("ok", 0.0).append("errmsg", msg).append("code", code).append("codeName", code_name);
    if (!labels.empty()) b.append("errorLabels", bson::array_view(labels));
    b.concat(extra);
    return b.extract();
}

bson::document error_reply(const command_error& e) { return error_reply(e.code(), e.code_name(), e.message(), {}, e.extra()); }

const char* code_name_of(int code) {
    switch (code) {
        case 1: return "InternalError";
        case 2: return "BadValue";
        case 6: return "HostUnreachable";
        case 7: return "HostNotFound";
        case 8: return "UnknownError";
        case 9: return "FailedToParse";
        case 11: return "UserNotFound";
        case 13: return "Unauthorized";
        case 18: return "AuthenticationFailed";
        case 26: return "NamespaceNotFound";
        case 43: return "CursorNotFound";
        case 50: return "MaxTimeMSExpired";
        case 59: return "CommandNotFound";
        case 63: return "StaleShardVersion";
        case 64: return "WriteConcernFailed";
        case 89: return "NetworkTimeout";
        case 91: return "ShutdownInProgress";
        case 112: return "WriteConflict";
        case 133: return "FailedToSatisfyReadPreference";
        case 150: return "StaleEpoch";
        case 189: return "PrimarySteppedDown";
        case 262: return "ExceededTimeLimit";
        case 9001: return "SocketException";
        case 10107: return "NotWritablePrimary";
        case 11000: return "DuplicateKey";
        case 11600: return "InterruptedAtShutdown";
        case 11602: return "InterruptedDueToReplStateChange";
        case 13388: return "StaleConfig";
        case 13435: return "NotPrimaryNoSecondaryOk";
        case 13436: return "NotPrimaryOrSecondary";
        default: return "";
    }
}

// Codes after which a retryable write may be retried (retryable writes spec).
bool retryable_code(int code) {
    static constexpr int codes[] = {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 13388, 134};
    return std::find(std::begin(codes), std::end(codes), code) != std::end(codes);
}

bson::document retryable_label() {
    bson::builder b(bson::builder::root::array);
    b.append("RetryableWriteError");
    return b.extract();
}

bool is_write_command(std::string_view n) {
    return n == "insert" || n == "update" || n == "delete" || n == "findAndModify" || n == "findandmodify";
}

bool needs_primary(std::string_view n) {
    return is_write_command(n) || n == "create" || n == "drop" || n == "dropDatabase" || n == "createIndexes" ||
           n == "dropIndexes" || n == "copydb" || n == "renameCollection";
}

bool is_read_command(std::string_view n) {
    return n == "find" || n == "count" || n == "distinct" || n == "aggregate" || n == "listCollections" ||
           n == "listIndexes" || n == "listDatabases" || n == "dbStats" || n == "collStats";
}

bool allowed_without_auth(std::string_view n) {
    return n == "hello" || n == "isMaster" || n == "ismaster" || n == "saslStart" || n == "saslContinue" ||
           n == "authenticate" || n == "ping" || n == "buildInfo" || n == "buildinfo" || n == "getnonce" ||
           n == "endSessions" || n == "logout";
}

std::string version_for_wire(int wire) {
    if (wire >= 21) return "7.0.0";
    if (wire >= 17) return "6.0.0";
    if (wire >= 13) return "5.0.0";
    if (wire >= 9) return "4.4.0";
    if (wire >= 8) return "4.2.0";
    if (wire >= 7) return "4.0.0";
    if (wire >= 6) return "3.6.0";
    return "3.4.0";
}

std::string collection_arg(const request& req) {
    const bson::element first = *req.body.begin();
    if (first.type() != bson::type::string)
        throw command_error(73, "InvalidNamespace", "collection name has invalid type " + std::string(bson::type_name(first.type())));
    return std::string(first.get_string());
}

bson::document doc_or_empty(bson::document_view body, std::string_view key) {
    if (auto e = body.find(key); e && e->type() == bson::type::document) return bson::document(e->get_document());
    return bson::document();
}

std::int64_t int_or(bson::document_view body, std::string_view key, std::int64_t fallback) {
    if (auto e = body.find(key); e && e->is_number()) return e->as_int64();
    return fallback;
}

bool bool_or(bson::document_view body, std::string_view key, bool fallback) {
    if (auto e = body.find(key)) {
        if (e->type() == bson::type::boolean) return e->get_bool();
        if (e->is_number()) return e->as_double() != 0;
    }
    return fallback;
}

std::optional<retry_key> retry_key_of(const request& req) {
    auto lsid = req.body.find("lsid");
    auto txn = req.body.find("txnNumber");
    if (!lsid || !txn || lsid->type() != bson::type::document || !txn->is_number()) return std::nullopt;
    auto id = lsid->get_document().find("id");
    if (!id || id->type() != bson::type::binary) return std::nullopt;
    const auto bytes = id->get_binary().bytes;
    return retry_key{std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), txn->as_int64()};
}

// ---------------------------------------------------------------- cursors

bson::document cursor_reply(member& m, const std::string& ns, std::vector<bson::document> docs, std::int64_t batch_size,
                            bool single_batch, bool no_timeout, const char* batch_name = "firstBatch") {
    std::deque<bson::document> rest(std::make_move_iterator(docs.begin()), std::make_move_iterator(docs.end()));
    bson::builder b;
    b.open_document("cursor");
    b.open_array(batch_name);
    std::size_t bytes = 0, n = 0;
    while (!rest.empty() && (batch_size <= 0 || static_cast<std::int64_t>(n) < batch_size)) {
        if (n > 0 && bytes + rest.front().size() > static_cast<std::size_t>(max_bson_size)) break;
        bytes += rest.front().size();
        b.append(rest.front().view());
        rest.pop_front();
        ++n;
    }
    b.close_array();
    std::int64_t id = 0;
    if (!rest.empty() && !single_batch) {
        do id = static_cast<std::int64_t>(m.rng() & 0x3FFFFFFFFFFFFFFFULL);
        while (id == 0 || m.cursors.count(id));
        m.cursors[id] = cursor{id, ns, std::move(rest), steady::now(), no_timeout};
    }
    b.append("id", id).append("ns", ns).close_document().append("ok", 1.0);
    return b.extract();
}

void sweep_cursors(member& m) {
    const auto now = steady::now();
    for (auto it = m.cursors.begin(); it != m.cursors.end();) {
        if (!it->second.no_timeout && now - it->second.last_used > m.dep.cfg.cursor_timeout) it = m.cursors.erase(it);
        else ++it;
    }
}

// ---------------------------------------------------------------- the handler context

struct context {
    session& s;
    request& req;
    member& self;    // the member the client talks to
    member& target;  // where the data lives (the shard's primary behind a router)
    const std::string& db;
};

collection& write_collection(context& c, const std::string& coll, oplog& log) {
    return c.target.data.get_or_create(c.db, coll, log);
}

// Runs the writes of one command, records them (with the retry record) and waits for the write concern.
asio::awaitable<bson::document> finish_write(context& c, oplog log, bson::builder& reply_body) {
    auto& d = c.target.dep;
    reply_body.append("ok", 1.0);
    bson::document reply = reply_body.extract();
    std::optional<std::pair<retry_key, bson::document>> retry;
    if (auto key = retry_key_of(c.req)) retry.emplace(*key, reply);
    const bool replicated = !log.empty() || retry.has_value();
    optime op{};
    if (replicated) op = d.record_write(c.target, std::move(log), std::move(retry));
    if (!replicated && !c.target.log.empty()) op = c.target.log.back().op;
    auto wce = co_await d.await_write_concern(c.target, op, doc_or_empty(c.req.body, "writeConcern"));
    if (!wce) co_return reply;
    bson::builder b;
    b.concat(reply);
    b.append("writeConcernError", *wce);
    const bool label = (*wce)["code"].as_int64() == 11602 && retry_key_of(c.req);
    if (label) b.append("errorLabels", bson::array_view(retryable_label().view()));
    co_return b.extract();
}

void write_error(bson::builder& b, std::size_t index, const command_error& e) {
    b.open_document().append("index", static_cast<std::int32_t>(index)).append("code", e.code());
    b.append("codeName", e.code_name()).append("errmsg", e.message()).concat(e.extra()).close_document();
}

// ---------------------------------------------------------------- CRUD

asio::awaitable<bson::document> cmd_insert(context& c) {
    const std::string coll = collection_arg(c.req);
    const bool ordered = bool_or(c.req.body, "ordered", true);
    oplog log;
    std::int64_t n = 0;
    bson::builder errors(bson::builder::root::array);
    bool any_error = false;
    if (auto docs = c.req.body.find("documents"); docs && docs->type() == bson::type::array) {
        std::size_t i = 0;
        collection& target = write_collection(c, coll, log);
        for (const auto& e : docs->get_array()) {
            try {
                if (e.type() != bson::type::document) throw command_error(2, "BadValue", "documents must be objects");
                target.insert(bson::document(e.get_document()), log);
                ++n;
                ++c.target.opcounters["insert"];
            } catch (const command_error& err) {
                write_error(errors, i, err);
                any_error = true;
                if (ordered) break;
            }
            ++i;
        }
    }
    bson::builder b;
    b.append("n", n);
    if (any_error) b.append("writeErrors", bson::array(errors.extract()));
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_update(context& c) {
    const std::string coll = collection_arg(c.req);
    const bool ordered = bool_or(c.req.body, "ordered", true);
    oplog log;
    std::int64_t n = 0, modified = 0;
    bson::builder errors(bson::builder::root::array), upserted(bson::builder::root::array);
    bool any_error = false, any_upsert = false;
    if (auto updates = c.req.body.find("updates"); updates && updates->type() == bson::type::array) {
        std::size_t i = 0;
        for (const auto& e : updates->get_array()) {
            try {
                if (e.type() != bson::type::document) throw command_error(9, "FailedToParse", "updates must be objects");
                const bson::document_view u = e.get_document();
                auto q = u.find("q"), up = u.find("u");
                if (!q || q->type() != bson::type::document || !up || up->type() != bson::type::document)
                    throw command_error(9, "FailedToParse", "update statements need q and u documents");
                collection& target = write_collection(c, coll, log);
                const update_result r = target.update(q->get_document(), up->get_document(), bool_or(u, "upsert", false),
                                                      bool_or(u, "multi", false), log);
                ++c.target.opcounters["update"];
                n += r.matched;
                modified += r.modified;
                if (r.upserted_id) {
                    ++n;
                    any_upsert = true;
                    upserted.open_document().append("index", static_cast<std::int32_t>(i)).concat(*r.upserted_id).close_document();
                }
            } catch (const command_error& err) {
                write_error(errors, i, err);
                any_error = true;
                if (ordered) break;
            }
            ++i;
        }
    }
    bson::builder b;
    b.append("n", n).append("nModified", modified);
    if (any_upsert) b.append("upserted", bson::array(upserted.extract()));
    if (any_error) b.append("writeErrors", bson::array(errors.extract()));
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_delete(context& c) {
    const std::string coll = collection_arg(c.req);
    const bool ordered = bool_or(c.req.body, "ordered", true);
    oplog log;
    std::int64_t n = 0;
    bson::builder errors(bson::builder::root::array);
    bool any_error = false;
    if (auto deletes = c.req.body.find("deletes"); deletes && deletes->type() == bson::type::array) {
        std::size_t i = 0;
        for (const auto& e : deletes->get_array()) {
            try {
                if (e.type() != bson::type::document) throw command_error(9, "FailedToParse", "deletes must be objects");
                const bson::document_view d = e.get_document();
                auto q = d.find("q");
                if (!q || q->type() != bson::type::document) throw command_error(9, "FailedToParse", "delete statements need q");
                const std::int64_t limit = int_or(d, "limit", 0);
                if (limit != 0 && limit != 1) throw command_error(9, "FailedToParse", "The limit field in delete objects must be 0 or 1. Got " + std::to_string(limit));
                if (collection* target = c.target.data.find(c.db, coll)) n += target->remove(q->get_document(), limit == 1, log);
                ++c.target.opcounters["delete"];
            } catch (const command_error& err) {
                write_error(errors, i, err);
                any_error = true;
                if (ordered) break;
            }
            ++i;
        }
    }
    bson::builder b;
    b.append("n", n);
    if (any_error) b.append("writeErrors", bson::array(errors.extract()));
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_find_and_modify(context& c) {
    const std::string coll = collection_arg(c.req);
    find_and_modify_options o;
    o.query = doc_or_empty(c.req.body, "query");
    o.sort = doc_or_empty(c.req.body, "sort");
    o.fields = doc_or_empty(c.req.body, "fields");
    if (auto u = c.req.body.find("update"); u && u->type() == bson::type::document) o.update = bson::document(u->get_document());
    o.remove = bool_or(c.req.body, "remove", false);
    o.return_new = bool_or(c.req.body, "new", false);
    o.upsert = bool_or(c.req.body, "upsert", false);
    if (o.remove == o.update.has_value())
        co_return error_reply(9, "FailedToParse", "Either an update or remove=true must be specified");
    oplog log;
    collection& target = write_collection(c, coll, log);
    const find_and_modify_result r = target.find_and_modify(o, log);
    bson::builder b;
    b.open_document("lastErrorObject").append("n", r.n);
    if (o.update) b.append("updatedExisting", r.updated_existing);
    if (r.upserted_id) b.append("upserted", (*r.upserted_id)["_id"]);
    b.close_document();
    if (r.value) b.append("value", *r.value);
    else b.append("value", bson::null);
    co_return co_await finish_write(c, std::move(log), b);
}

bson::document cmd_find(context& c) {
    const std::string coll = collection_arg(c.req);
    find_options o;
    o.filter = doc_or_empty(c.req.body, "filter");
    o.sort = doc_or_empty(c.req.body, "sort");
    o.projection = doc_or_empty(c.req.body, "projection");
    o.skip = int_or(c.req.body, "skip", 0);
    std::int64_t limit = int_or(c.req.body, "limit", 0);
    bool single = bool_or(c.req.body, "singleBatch", false);
    if (limit < 0) {
        limit = -limit;
        single = true;
    }
    o.limit = limit;
    if (o.skip < 0) throw command_error(51024, "Location51024", "BSON field 'skip' value must be >= 0, actual value '" + std::to_string(o.skip) + "'");
    std::int64_t batch = int_or(c.req.body, "batchSize", 101);
    if (batch < 0) throw command_error(51024, "Location51024", "BSON field 'batchSize' value must be >= 0");
    if (limit > 0 && (batch == 0 || batch > limit)) batch = limit;
    ++c.target.opcounters["query"];
    std::vector<bson::document> docs;
    if (const collection* target = c.target.data.find(c.db, coll))
        docs = target->find(o);
    else
        (void)matcher::compile(o.filter);  // mongod parses the filter even when the collection is absent
    return cursor_reply(c.self, c.db + "." + coll, std::move(docs), batch, single, bool_or(c.req.body, "noCursorTimeout", false));
}

bson::document cmd_get_more(context& c) {
    const auto id = c.req.body.begin()->is_number() ? c.req.body.begin()->as_int64() : 0;
    auto it = c.self.cursors.find(id);
    if (it == c.self.cursors.end()) throw command_error(43, "CursorNotFound", "cursor id " + std::to_string(id) + " not found");
    ++c.target.opcounters["getmore"];
    cursor& cur = it->second;
    cur.last_used = steady::now();
    const std::int64_t batch = int_or(c.req.body, "batchSize", 0);
    bson::builder b;
    b.open_document("cursor").open_array("nextBatch");
    std::size_t bytes = 0;
    std::int64_t n = 0;
    while (!cur.remaining.empty() && (batch <= 0 || n < batch)) {
        if (n > 0 && bytes + cur.remaining.front().size() > static_cast<std::size_t>(max_bson_size)) break;
        bytes += cur.remaining.front().size();
        b.append(cur.remaining.front().view());
        cur.remaining.pop_front();
        ++n;
    }
    b.close_array();
    const std::string ns = cur.ns;
    std::int64_t out_id = id;
    if (cur.remaining.empty()) {
        c.self.cursors.erase(it);
        out_id = 0;
    }
    b.append("id", out_id).append("ns", ns).close_document().append("ok", 1.0);
    return b.extract();
}

bson::document cmd_kill_cursors(context& c) {
    bson::builder killed(bson::builder::root::array), missing(bson::builder::root::array);
    if (auto ids = c.req.body.find("cursors"); ids && ids->type() == bson::type::array)
        for (const auto& e : ids->get_array()) {
            const std::int64_t id = e.is_number() ? e.as_int64() : 0;
            if (c.self.cursors.erase(id)) killed.append(id);
            else missing.append(id);
        }
    bson::builder b;
    b.append("cursorsKilled", bson::array(killed.extract()))
        .append("cursorsNotFound", bson::array(missing.extract()))
        .append("cursorsAlive", bson::make_array())
        .append("cursorsUnknown", bson::make_array())
        .append("ok", 1.0);
    return b.extract();
}

bson::document cmd_count(context& c) {
    const std::string coll = collection_arg(c.req);
    std::int64_t n = 0;
    if (const collection* target = c.target.data.find(c.db, coll))
        n = target->count(doc_or_empty(c.req.body, "query"), int_or(c.req.body, "skip", 0), int_or(c.req.body, "limit", 0));
    bson::builder b;
    b.append("n", n).append("ok", 1.0);
    return b.extract();
}

bson::document cmd_distinct(context& c) {
    const std::string coll = collection_arg(c.req);
    auto key = c.req.body.find("key");
    if (!key || key->type() != bson::type::string) throw command_error(9, "FailedToParse", "distinct needs a string key");
    bson::builder b;
    if (const collection* target = c.target.data.find(c.db, coll))
        b.append("values", target->distinct(key->get_string(), doc_or_empty(c.req.body, "query")));
    else
        b.append("values", bson::make_array());
    b.append("ok", 1.0);
    return b.extract();
}

bson::document cmd_aggregate(context& c) {
    const bson::element first = *c.req.body.begin();
    auto pipeline = c.req.body.find("pipeline");
    if (!pipeline || pipeline->type() != bson::type::array) throw command_error(14, "TypeMismatch", "'pipeline' option must be specified as an array");
    if (first.type() != bson::type::string)
        throw command_error(73, "InvalidNamespace", "aggregate on a database is not supported by trellis-sim");
    const std::string coll(first.get_string());
    std::vector<bson::document> docs;
    if (const collection* target = c.target.data.find(c.db, coll)) docs = target->aggregate(pipeline->get_array());
    else docs = collection(c.db + "." + coll).aggregate(pipeline->get_array());  // stages like $count still answer
    std::int64_t batch = 101;
    if (auto cur = c.req.body.find("cursor"); cur && cur->type() == bson::type::document) batch = int_or(cur->get_document(), "batchSize", 101);
    return cursor_reply(c.self, c.db + "." + coll, std::move(docs), batch, false, false);
}

// ---------------------------------------------------------------- catalog commands

asio::awaitable<bson::document> cmd_create(context& c) {
    oplog log;
    c.target.data.create(c.db, collection_arg(c.req), log);
    bson::builder b;
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_drop(context& c) {
    oplog log;
    const std::string coll = collection_arg(c.req);
    if (!c.target.data.drop(c.db, coll, log)) co_return error_reply(26, "NamespaceNotFound", "ns not found");
    bson::builder b;
    b.append("ns", c.db + "." + coll).append("nIndexesWas", 1);
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_drop_database(context& c) {
    oplog log;
    c.target.data.drop_database(c.db, log);
    bson::builder b;
    b.append("dropped", c.db);
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_create_indexes(context& c) {
    const std::string coll = collection_arg(c.req);
    oplog log;
    const bool existed = c.target.data.find(c.db, coll) != nullptr;
    collection& target = write_collection(c, coll, log);
    const auto before = static_cast<std::int32_t>(target.indexes().size());
    auto indexes = c.req.body.find("indexes");
    if (!indexes || indexes->type() != bson::type::array) co_return error_reply(9, "FailedToParse", "indexes must be an array");
    for (const auto& e : indexes->get_array()) {
        if (e.type() != bson::type::document) co_return error_reply(9, "FailedToParse", "index specs must be objects");
        const bson::document_view spec = e.get_document();
        index_info info;
        auto key = spec.find("key");
        auto name = spec.find("name");
        if (!key || key->type() != bson::type::document) co_return error_reply(9, "FailedToParse", "index spec needs a key document");
        info.key = bson::document(key->get_document());
        if (name && name->type() == bson::type::string) info.name = std::string(name->get_string());
        info.unique = bool_or(spec, "unique", false);
        target.create_index(info, log);
    }
    bson::builder b;
    b.append("createdCollectionAutomatically", !existed)
        .append("numIndexesBefore", before)
        .append("numIndexesAfter", static_cast<std::int32_t>(target.indexes().size()));
    co_return co_await finish_write(c, std::move(log), b);
}

asio::awaitable<bson::document> cmd_drop_indexes(context& c) {
    const std::string coll = collection_arg(c.req);
    oplog log;
    collection* target = c.target.data.find(c.db, coll);
    if (!target) co_return error_reply(26, "NamespaceNotFound", "ns not found " + c.db + "." + coll);
    const auto before = static_cast<std::int32_t>(target->indexes().size());
    auto index = c.req.body.find("index");
    if (index && index->type() == bson::type::string) {
        target->drop_index(index->get_string(), log);
    } else if (index && index->type() == bson::type::document) {
        std::string name;
        for (const auto& i : target->indexes())
            if (i.key.view() == index->get_document()) name = i.name;
        if (name.empty()) co_return error_reply(27, "IndexNotFound", "can't find index with key: " + bson::to_json(index->get_document()));
        target->drop_index(name, log);
    } else {
        co_return error_reply(9, "FailedToParse", "dropIndexes needs an index name or key");
    }
    bson::builder b;
    b.append("nIndexesWas", before);
    co_return co_await finish_write(c, std::move(log), b);
}

bson::document cmd_list_indexes(context& c) {
    const std::string coll = collection_arg(c.req);
    const collection* target = c.target.data.find(c.db, coll);
    if (!target) throw command_error(26, "NamespaceNotFound", "ns does not exist: " + c.db + "." + coll);
    std::vector<bson::document> docs;
    for (const auto& i : target->indexes()) {
        bson::builder b;
        b.append("v", 2).append("key", i.key).append("name", i.name);
        if (i.unique) b.append("unique", true);
        docs.push_back(b.extract());
    }
    std::int64_t batch = 101;
    if (auto cur = c.req.body.find("cursor"); cur && cur->type() == bson::type::document) batch = int_or(cur->get_document(), "batchSize", 101);
    return cursor_reply(c.self, c.db + "." + coll, std::move(docs), batch, false, false);
}

bson::document filtered(std::vector<bson::document> docs, bson::document_view filter, std::vector<bson::document>& out) {
    const matcher m = matcher::compile(filter);
    for (auto& d : docs)
        if (m.matches(d)) out.push_back(std::move(d));
    return bson::document();
}

bson::document cmd_list_collections(context& c) {
    std::vector<bson::document> all;
    const bool name_only = bool_or(c.req.body, "nameOnly", false);
    for (const auto& name : c.target.data.collection_names(c.db)) {
        bson::builder b;
        b.append("name", name).append("type", "collection");
        if (!name_only) {
            b.append("options", bson::document());
            b.open_document("info").append("readOnly", false).close_document();
            b.open_document("idIndex").append("v", 2).append("key", bson::make_document(bson::kvp("_id", 1))).append("name", "_id_").close_document();
        }
        all.push_back(b.extract());
    }
    std::vector<bson::document> docs;
    filtered(std::move(all), doc_or_empty(c.req.body, "filter"), docs);
    std::int64_t batch = 101;
    if (auto cur = c.req.body.find("cursor"); cur && cur->type() == bson::type::document) batch = int_or(cur->get_document(), "batchSize", 101);
    return cursor_reply(c.self, c.db + ".$cmd.listCollections", std::move(docs), batch, false, false);
}

bson::document cmd_list_databases(context& c) {
    std::vector<bson::document> all;
    std::int64_t total = 0;
    for (const auto& name : c.target.data.database_names()) {
        const auto size = static_cast<std::int64_t>(c.target.data.database_size(name));
        total += size;
        bson::builder b;
        b.append("name", name).append("sizeOnDisk", size).append("empty", size == 0);
        all.push_back(b.extract());
    }
    std::vector<bson::document> docs;
    filtered(std::move(all), doc_or_empty(c.req.body, "filter"), docs);
    const bool name_only = bool_or(c.req.body, "nameOnly", false);
    bson::builder b;
    b.open_array("databases");
    for (const auto& d : docs) {
        if (name_only) b.open_document().append("name", d["name"].get_string()).close_document();
        else b.append(d.view());
    }
    b.close_array();
    if (!name_only) b.append("totalSize", total).append("totalSizeMb", total / (1024 * 1024));
    b.append("ok", 1.0);
    return b.extract();
}

asio::awaitable<bson::document> cmd_copydb(context& c) {
    if (c.self.dep.cfg.max_wire_version >= 8)
        co_return error_reply(59, "CommandNotFound", "no such command: 'copydb'");
    auto from = c.req.body.find("fromdb");
    auto to = c.req.body.find("todb");
    if (!from || !to || from->type() != bson::type::string || to->type() != bson::type::string)
        co_return error_reply(9, "FailedToParse", "copydb needs fromdb and todb strings");
    const std::string fromdb(from->get_string()), todb(to->get_string());
    oplog log;
    for (const auto& name : c.target.data.collection_names(fromdb)) {
        const collection* src = c.target.data.find(fromdb, name);
        if (c.target.data.find(todb, name)) co_return error_reply(48, "NamespaceExists", "collection already exists: " + todb + "." + name);
        collection& dst = c.target.data.create(todb, name, log);
        for (const auto& i : src->indexes())
            if (i.name != "_id_") dst.create_index(i, log);
        for (const auto& d : src->documents()) dst.insert(bson::document(d), log);
    }
    bson::builder b;
    co_return co_await finish_write(c, std::move(log), b);
}

// ---------------------------------------------------------------- replica set commands

bson::document optime_doc(const optime& o) {
    bson::builder b;
    b.append("ts", o.ts).append("t", o.term);
    return b.extract();
}

int state_code(const member& m) {
    if (!m.up) return 8;
    switch (m.current) {
        case role::primary: return 1;
        case role::secondary: return 2;
        case role::arbiter: return 7;
        default: return 0;
    }
}

bson::document cmd_repl_get_status(context& c) {
    auto& d = c.self.dep;
    if (!d.is_replica_set() || c.self.current == role::mongos) throw command_error(76, "NoReplicationEnabled", "not running with --replSet");
    static const char* names[] = {"STARTUP", "PRIMARY", "SECONDARY", "RECOVERING", "", "STARTUP2", "UNKNOWN", "ARBITER", "(not reachable/healthy)"};
    bson::builder b;
    b.append("set", d.cfg.set_name).append("date", bson::date_time(std::chrono::system_clock::now()))
        .append("myState", state_code(c.self)).append("term", d.term);
    b.open_array("members");
    for (member* m : [&] {
             std::vector<member*> v;
             for (auto& x : d.members)
                 if (x->current != role::mongos && !x->removed) v.push_back(x.get());
             return v;
         }()) {
        const int st = state_code(*m);
        b.open_document().append("_id", m->index).append("name", m->address()).append("health", m->reachable() ? 1.0 : 0.0)
            .append("state", st).append("stateStr", names[st]);
        if (m->data_bearing()) {
            b.append("optime", optime_doc(m->applied()));
            b.append("optimeDate", bson::date_time(m->log.empty() ? std::chrono::system_clock::time_point{} : m->log.back().wall));
        }
        if (m == &c.self) b.append("self", true);
        b.close_document();
    }
    b.close_array().append("ok", 1.0);
    return b.extract();
}

bson::document cmd_repl_step_down(context& c) {
    auto& d = c.self.dep;
    if (c.self.current != role::primary) throw command_error(10107, "NotWritablePrimary", "not primary so can't step down");
    const std::int64_t secs = c.req.body.begin()->is_number() ? c.req.body.begin()->as_int64() : 60;
    bson::builder cmd;
    cmd.append("simStepDown", c.self.address()).append("secs", secs);
    return d.control_command(cmd.extract());
}

bson::document cmd_repl_reconfig(context& c) {
    auto& d = c.self.dep;
    if (!d.is_replica_set()) throw command_error(76, "NoReplicationEnabled", "not running with --replSet");
    if (c.self.current != role::primary) throw command_error(10107, "NotWritablePrimary", "replSetReconfig should only be run on a writable PRIMARY");
    const bson::element cfg = *c.req.body.begin();
    if (cfg.type() != bson::type::document) throw command_error(14, "TypeMismatch", "replSetReconfig takes a configuration document");
    const bson::document_view conf = cfg.get_document();
    const std::int64_t version = int_or(conf, "version", d.set_version + 1);
    if (version <= d.set_version)
        throw command_error(103, "NewReplicaSetConfigurationIncompatible",
                            "New config version " + std::to_string(version) + " must be greater than the current " + std::to_string(d.set_version));
    auto members = conf.find("members");
    if (!members || members->type() != bson::type::array) throw command_error(93, "InvalidReplicaSetConfig", "config needs members");
    std::set<member*> listed;
    for (const auto& e : members->get_array()) {
        if (e.type() != bson::type::document) continue;
        const bson::document_view md = e.get_document();
        auto host = md.find("host");
        if (!host || host->type() != bson::type::string) throw command_error(93, "InvalidReplicaSetConfig", "member needs a host");
        member* m = d.find_member(std::string(host->get_string()));
        if (!m) throw command_error(103, "NewReplicaSetConfigurationIncompatible", "trellis-sim cannot add " + std::string(host->get_string()) + "; use simAddMember");
        listed.insert(m);
        m->config.priority = static_cast<int>(int_or(md, "priority", m->config.priority));
        m->config.hidden = bool_or(md, "hidden", m->config.hidden);
        if (m->config.hidden) m->config.priority = 0;
        if (auto tags = md.find("tags"); tags && tags->type() == bson::type::document) {
            m->config.tags.clear();
            for (const auto& t : tags->get_document())
                if (t.type() == bson::type::string) m->config.tags[std::string(t.key())] = std::string(t.get_string());
        }
    }
    for (auto& m : d.members)
        if (m->current != role::mongos && !m->removed && !listed.count(m.get())) {
            m->removed = true;
            d.stop_listening(*m);
        }
    d.set_version = static_cast<int>(version);
    for (auto& m : d.members) m->bump_topology_version();
    bson::builder b;
    b.append("ok", 1.0);
    return b.extract();
}

// ---------------------------------------------------------------- admin

bson::document cmd_build_info(context& c) {
    const std::string v = version_for_wire(c.self.dep.cfg.max_wire_version);
    bson::builder b;
    b.append("version", v).append("gitVersion", "trellis-sim").append("modules", bson::make_array())
        .append("sysInfo", "deprecated");
    b.open_array("versionArray");
    int parts[3] = {0, 0, 0};
    std::sscanf(v.c_str(), "%d.%d.%d", &parts[0], &parts[1], &parts[2]);
    for (int p : parts) b.append(p);
    b.append(0).close_array();
    b.append("bits", 64).append("debug", false).append("maxBsonObjectSize", max_bson_size).append("ok", 1.0);
    return b.extract();
}

bson::document cmd_server_status(context& c) {
    member& m = c.self;
    static const auto started = steady::now();
    const auto up = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started).count();
    bson::builder b;
    b.append("host", m.address()).append("version", version_for_wire(m.dep.cfg.max_wire_version))
        .append("process", m.current == role::mongos ? "mongos" : "mongod").append("pid", static_cast<std::int64_t>(::getpid()))
        .append("uptime", static_cast<double>(up) / 1000).append("uptimeMillis", static_cast<std::int64_t>(up))
        .append("localTime", bson::date_time(std::chrono::system_clock::now()));
    b.open_document("connections").append("current", static_cast<std::int32_t>(m.sessions.size()))
        .append("available", 100000).append("totalCreated", m.connections_created).close_document();
    b.open_document("opcounters");
    for (const char* k : {"insert", "query", "update", "delete", "getmore", "command"}) b.append(k, m.opcounters[k]);
    b.close_document();
    if (m.fsync_lock_count > 0) b.append("fsyncLock", true);
    b.append("ok", 1.0);
    return b.extract();
}

bson::document cmd_fsync(context& c) {
    member& m = c.target;
    bson::builder b;
    if (bool_or(c.req.body, "lock", false)) {
        ++m.fsync_lock_count;
        b.append("info", "now locked against writes, use db.fsyncUnlock() to unlock").append("lockCount", m.fsync_lock_count)
            .append("seeAlso", "http://dochub.mongodb.org/core/fsynccommand");
    } else {
        b.append("numFiles", 1);
    }
    b.append("ok", 1.0);
    return b.extract();
}

bson::document cmd_fsync_unlock(context& c) {
    member& m = c.target;
    if (m.fsync_lock_count == 0) throw command_error(125, "CommandFailed", "fsyncUnlock called when not locked");
    if (--m.fsync_lock_count == 0) m.fsync_unlocked.notify();
    bson::builder b;
    b.append("info", "fsyncUnlock completed").append("lockCount", m.fsync_lock_count).append("ok", 1.0);
    return b.extract();
}

bson::document cmd_current_op(context& c) {
    bson::builder b;
    b.append("inprog", bson::make_array());
    if (c.target.fsync_lock_count > 0) b.append("fsyncLock", true).append("info", "use db.fsyncUnlock() to terminate the fsync write/snapshot lock");
    b.append("ok", 1.0);
    return b.extract();
}

bson::document cmd_configure_fail_point(context& c) {
    const bson::element first = *c.req.body.begin();
    if (first.type() != bson::type::string || first.get_string() != "failCommand")
        throw command_error(2, "BadValue", "trellis-sim supports only the failCommand fail point");
    fail_point fp;
    auto mode = c.req.body.find("mode");
    if (!mode) throw command_error(9, "FailedToParse", "configureFailPoint needs a mode");
    if (mode->type() == bson::type::string) {
        if (mode->get_string() == "alwaysOn") fp.mode = fail_point::mode_kind::always;
        else if (mode->get_string() == "off") fp.mode = fail_point::mode_kind::off;
        else throw command_error(2, "BadValue", "unknown fail point mode " + std::string(mode->get_string()));
    } else if (mode->type() == bson::type::document) {
        const bson::document_view md = mode->get_document();
        if (auto t = md.find("times")) {
            fp.mode = fail_point::mode_kind::times;
            fp.count = t->as_int64();
        } else if (auto s = md.find("skip")) {
            fp.mode = fail_point::mode_kind::skip;
            fp.count = s->as_int64();
        } else {
            throw command_error(2, "BadValue", "mode document needs times or skip");
        }
    }
    if (auto data = c.req.body.find("data"); data && data->type() == bson::type::document) {
        const bson::document_view d = data->get_document();
        if (auto cmds = d.find("failCommands"); cmds && cmds->type() == bson::type::array)
            for (const auto& e : cmds->get_array())
                if (e.type() == bson::type::string) fp.commands.insert(std::string(e.get_string()));
        if (auto e = d.find("errorCode"); e && e->is_number()) fp.error_code = static_cast<int>(e->as_int64());
        fp.close_connection = bool_or(d, "closeConnection", false);
        if (bool_or(d, "blockConnection", false)) fp.block = std::chrono::milliseconds(int_or(d, "blockTimeMS", 0));
        if (auto e = d.find("writeConcernError"); e && e->type() == bson::type::document) fp.write_concern_error = bson::document(e->get_document());
        if (auto e = d.find("errorLabels"); e && e->type() == bson::type::array) fp.error_labels = bson::document(e->get_array());
        if (auto e = d.find("appName"); e && e->type() == bson::type::string) fp.app_name = std::string(e->get_string());
    }
    c.target.fail = fp;
    bson::builder b;
    b.append("count", 0).append("ok", 1.0);
    return b.extract();
}

// Decides whether the fail point fires for this command, counting it down.
bool fail_point_fires(member& m, const session& s, const std::string& name) {
    fail_point& fp = m.fail;
    if (fp.mode == fail_point::mode_kind::off || !fp.commands.count(name)) return false;
    if (fp.app_name && *fp.app_name != s.app_name) return false;
    switch (fp.mode) {
        case fail_point::mode_kind::always: return true;
        case fail_point::mode_kind::times:
            if (fp.count <= 0) return false;
            if (--fp.count == 0) fp.mode = fail_point::mode_kind::off;
            return true;
        case fail_point::mode_kind::skip:
            if (fp.count > 0) {
                --fp.count;
                return false;
            }
            return true;
        case fail_point::mode_kind::off: return false;
    }
    return false;
}

}  // namespace

// ---------------------------------------------------------------- hello

bson::document hello_reply(session& s, const request& req) {
    member& m = s.owner;
    auto& d = m.dep;
    const bool hello_cmd = req.name == "hello";
    const bool writable = m.current == role::primary || m.current == role::master || m.current == role::standalone ||
                          m.current == role::mongos;
    bson::builder b;
    b.append(hello_cmd ? "isWritablePrimary" : "ismaster", writable && m.reachable());
    b.open_document("topologyVersion").append("processId", m.process_id).append("counter", m.tv_counter).close_document();
    if (m.current == role::mongos) b.append("msg", "isdbgrid");
    if (d.is_replica_set() && m.current != role::mongos && m.current != role::standalone) {
        b.append("setName", d.cfg.set_name).append("setVersion", d.set_version);
        b.append("secondary", m.current == role::secondary);
        if (m.current == role::arbiter) b.append("arbiterOnly", true);
        if (m.config.hidden) b.append("hidden", true);
        auto list = [&](const char* key, auto pred) {
            bool any = false;
            for (auto& x : d.members)
                if (!x->removed && x->current != role::mongos && pred(*x)) any = true;
            if (!any) return;
            b.open_array(key);
            for (auto& x : d.members)
                if (!x->removed && x->current != role::mongos && pred(*x)) b.append(x->address());
            b.close_array();
        };
        list("hosts", [](const member& x) { return x.current != role::arbiter && !x.config.hidden && x.config.priority > 0; });
        list("passives", [](const member& x) { return x.current != role::arbiter && !x.config.hidden && x.config.priority == 0; });
        list("arbiters", [](const member& x) { return x.current == role::arbiter; });
        // A partitioned member does not know who the primary is.
        if (d.primary && d.primary->reachable() && m.reachable()) b.append("primary", d.primary->address());
        b.append("me", m.address());
        if (m.current == role::primary) b.append("electionId", d.election_id);
        if (!m.config.tags.empty()) {
            b.open_document("tags");
            for (const auto& [k, v] : m.config.tags) b.append(k, v);
            b.close_document();
        }
    } else if (m.current == role::slave) {
        b.append("me", m.address());
    }
    if (m.data_bearing() && (d.is_replica_set() || d.cfg.topology == topology_kind::master_slave) && m.current != role::standalone) {
        const optime op = m.applied();
        const auto wall = m.log.empty() ? std::chrono::system_clock::now() : m.log.back().wall;
        b.open_document("lastWrite").append("opTime", optime_doc(op)).append("lastWriteDate", bson::date_time(wall))
            .append("majorityOpTime", optime_doc(op)).append("majorityWriteDate", bson::date_time(wall)).close_document();
    }
    b.append("maxBsonObjectSize", max_bson_size).append("maxMessageSizeBytes", max_message_size)
        .append("maxWriteBatchSize", max_write_batch).append("localTime", bson::date_time(std::chrono::system_clock::now()))
        .append("logicalSessionTimeoutMinutes", 30).append("connectionId", static_cast<std::int32_t>(s.connection_id))
        .append("minWireVersion", d.cfg.min_wire_version).append("maxWireVersion", d.cfg.max_wire_version)
        .append("readOnly", false);
    if (bool_or(req.body, "helloOk", false)) b.append("helloOk", true);
    // Compression negotiation: the client's list, in its order, that we also have.
    if (auto offered = req.body.find("compression"); offered && offered->type() == bson::type::array) {
        b.open_array("compression");
        for (const auto& e : offered->get_array())
            if (e.type() == bson::type::string && e.get_string() != "noop" && d.compressors->find(e.get_string()))
                b.append(e.get_string());
        b.close_array();
    }
    add_hello_auth_fields(s, req, b);
    b.append("ok", 1.0);
    return b.extract();
}

// ---------------------------------------------------------------- dispatch

asio::awaitable<command_result> execute(session& s, request& req) {
    member& m = s.owner;
    auto& d = m.dep;
    const std::string& name = req.name;
    command_result out;
    if (req.body.empty()) {
        out.reply = error_reply(59, "CommandNotFound", "no such command: ''");
        co_return out;
    }
    if (d.cfg.verbose) log_line(m.address() + " conn" + std::to_string(s.connection_id) + " " + req.db + " " + bson::to_json(req.body));
    sweep_cursors(m);

    // The first hello of a connection names the application (failCommand's appName).
    const bool is_hello = name == "hello" || name == "isMaster" || name == "ismaster";
    if (is_hello) {
        if (auto client = req.body.find("client"); client && client->type() == bson::type::document)
            if (auto app = client->get_document().find("application"); app && app->type() == bson::type::document)
                if (auto n = app->get_document().find("name"); n && n->type() == bson::type::string) s.app_name = std::string(n->get_string());
    }
    if (req.db.empty() && !req.legacy) {
        out.reply = error_reply(40571, "Location40571", "OP_MSG requests require a $db argument");
        co_return out;
    }

    // Fail points come first, as mongod's failCommand does.
    member& fp_owner = m;
    const bool fired = name != "configureFailPoint" && fail_point_fires(fp_owner, s, name);
    const std::optional<bson::document> attach_wce = fired ? fp_owner.fail.write_concern_error : std::nullopt;
    // With a writeConcernError, failCommand's errorLabels go on the reply too, as mongod does.
    const std::optional<bson::document> attach_labels = attach_wce ? fp_owner.fail.error_labels : std::nullopt;
    auto attach_write_concern_error = [&] {
        if (!attach_wce || !out.reply["ok"].as_bool()) return;
        bson::builder b;
        for (const auto& e : out.reply.view())
            if (e.key() != "writeConcernError") b.append(e);
        b.append("writeConcernError", *attach_wce);
        if (attach_labels && !out.reply.view().contains("errorLabels")) b.append("errorLabels", bson::array(*attach_labels));
        out.reply = b.extract();
    };
    if (fired) {
        const fail_point& fp = fp_owner.fail;
        if (fp.block) {
            asio::steady_timer t(d.io, *fp.block);
            co_await t.async_wait(use_awaitable);
        }
        if (fp.close_connection) {
            out.close_connection = true;
            co_return out;
        }
        if (fp.error_code) {
            bson::document labels;
            if (fp.error_labels) labels = *fp.error_labels;
            else if (is_write_command(name) && retry_key_of(req) && retryable_code(*fp.error_code) && d.cfg.max_wire_version >= 9)
                labels = retryable_label();
            out.reply = error_reply(*fp.error_code, code_name_of(*fp.error_code), "Failing command via 'failCommand' failpoint", labels);
            co_return out;
        }
        // Only writeConcernError (or only a block): run the command, then attach it.
    }

    if (d.auth_enabled() && !s.authenticated && !allowed_without_auth(name)) {
        out.reply = error_reply(13, "Unauthorized", "command " + name + " requires authentication");
        co_return out;
    }

    // Roles: who may write, who may read.
    member* target = &m;
    if (m.current == role::mongos) {
        target = d.primary;
        if (!target || !target->reachable()) {
            if (needs_primary(name) || is_read_command(name)) {
                out.reply = error_reply(133, "FailedToSatisfyReadPreference", "Could not find host matching read preference { mode: \"primary\" } for set " + d.cfg.set_name);
                co_return out;
            }
            target = &m;
        }
    } else if (needs_primary(name) && m.current != role::primary && m.current != role::master && m.current != role::standalone) {
        bson::document labels;
        if (retry_key_of(req) && d.cfg.max_wire_version >= 9) labels = retryable_label();
        out.reply = error_reply(10107, "NotWritablePrimary", "not primary", labels);
        co_return out;
    } else if (is_read_command(name) && m.current == role::arbiter) {
        out.reply = error_reply(13436, "NotPrimaryOrSecondary", "node is not in primary or recovering state");
        co_return out;
    } else if (is_read_command(name) && (m.current == role::secondary || m.current == role::slave) && !req.secondary_ok) {
        out.reply = error_reply(13435, "NotPrimaryNoSecondaryOk", "not primary and secondaryOk=false");
        co_return out;
    }

    // Retryable writes: the same lsid + txnNumber is applied once.
    if (is_write_command(name)) {
        if (auto key = retry_key_of(req)) {
            if (auto it = target->retries.find(*key); it != target->retries.end()) {
                out.reply = it->second;
                attach_write_concern_error();  // a fail point fires on a retry too
                co_return out;
            }
        }
        // fsync {lock: true} blocks writes until fsyncUnlock.
        while (target->fsync_lock_count > 0 && d.running) co_await target->fsync_unlocked.wait_until(steady::now() + std::chrono::seconds(1));
    }

    context c{s, req, m, *target, req.db};
    try {
        if (is_hello) {
            // Awaitable hello: wait for a topology change or maxAwaitTimeMS.
            auto tv = req.body.find("topologyVersion");
            auto await_ms = req.body.find("maxAwaitTimeMS");
            if (tv && await_ms && tv->type() == bson::type::document && await_ms->is_number()) {
                const bson::document_view tvd = tv->get_document();
                auto pid = tvd.find("processId");
                auto counter = tvd.find("counter");
                if (pid && counter && pid->type() == bson::type::oid && pid->get_oid() == m.process_id &&
                    counter->is_number() && counter->as_int64() == m.tv_counter) {
                    const auto deadline = steady::now() + std::chrono::milliseconds(await_ms->as_int64());
                    while (m.tv_counter == counter->as_int64() && steady::now() < deadline && d.running)
                        co_await m.changed.wait_until(deadline);
                }
            }
            out.reply = hello_reply(s, req);
        } else if (name == "ping") {
            out.reply = bson::make_document(bson::kvp("ok", 1.0));
        } else if (name == "insert") {
            out.reply = co_await cmd_insert(c);
        } else if (name == "update") {
            out.reply = co_await cmd_update(c);
        } else if (name == "delete") {
            out.reply = co_await cmd_delete(c);
        } else if (name == "findAndModify" || name == "findandmodify") {
            out.reply = co_await cmd_find_and_modify(c);
        } else if (name == "find") {
            out.reply = cmd_find(c);
        } else if (name == "getMore") {
            out.reply = cmd_get_more(c);
        } else if (name == "killCursors") {
            out.reply = cmd_kill_cursors(c);
        } else if (name == "count") {
            out.reply = cmd_count(c);
        } else if (name == "distinct") {
            out.reply = cmd_distinct(c);
        } else if (name == "aggregate") {
            out.reply = cmd_aggregate(c);
        } else if (name == "create") {
            out.reply = co_await cmd_create(c);
        } else if (name == "drop") {
            out.reply = co_await cmd_drop(c);
        } else if (name == "dropDatabase") {
            out.reply = co_await cmd_drop_database(c);
        } else if (name == "createIndexes") {
            out.reply = co_await cmd_create_indexes(c);
        } else if (name == "dropIndexes" || name == "deleteIndexes") {
            out.reply = co_await cmd_drop_indexes(c);
        } else if (name == "listIndexes") {
            out.reply = cmd_list_indexes(c);
        } else if (name == "listCollections") {
            out.reply = cmd_list_collections(c);
        } else if (name == "listDatabases") {
            out.reply = cmd_list_databases(c);
        } else if (name == "copydb") {
            out.reply = co_await cmd_copydb(c);
        } else if (name == "buildInfo" || name == "buildinfo") {
            out.reply = cmd_build_info(c);
        } else if (name == "serverStatus") {
            out.reply = cmd_server_status(c);
        } else if (name == "fsync") {
            out.reply = cmd_fsync(c);
        } else if (name == "fsyncUnlock") {
            out.reply = cmd_fsync_unlock(c);
        } else if (name == "currentOp") {
            out.reply = cmd_current_op(c);
        } else if (name == "getLastError" || name == "getlasterror") {
            bson::builder b;
            b.append("connectionId", static_cast<std::int32_t>(s.connection_id)).append("n", 0).append("syncMillis", 0)
                .append("writtenTo", bson::null).append("err", bson::null).append("ok", 1.0);
            out.reply = b.extract();
        } else if (name == "endSessions" || name == "killSessions" || name == "refreshSessions") {
            out.reply = bson::make_document(bson::kvp("ok", 1.0));
        } else if (name == "replSetGetStatus") {
            out.reply = cmd_repl_get_status(c);
        } else if (name == "replSetStepDown") {
            out.reply = cmd_repl_step_down(c);
        } else if (name == "replSetReconfig") {
            out.reply = cmd_repl_reconfig(c);
        } else if (name == "configureFailPoint") {
            out.reply = cmd_configure_fail_point(c);
        } else if (name == "saslStart" || name == "saslContinue" || name == "authenticate" || name == "logout" || name == "getnonce") {
            out.reply = auth_command(s, req);
        } else if (name == "whatsmyuri") {
            bson::builder b;
            b.append("you", s.peer).append("ok", 1.0);
            out.reply = b.extract();
        } else {
            out.reply = error_reply(59, "CommandNotFound", "no such command: '" + name + "'");
        }
    } catch (const command_error& e) {
        out.reply = error_reply(e);
    } catch (const trellis::bson_error& e) {
        out.reply = error_reply(2, "BadValue", e.what());
    }
    attach_write_concern_error();
    co_return out;
}

}  // namespace trellis::sim
