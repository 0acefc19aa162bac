// Suite unified: the MongoDB unified test format (schema 1.x), shared declarations.
//
// Values: every value the runner compares is canonical Extended JSON held in a boost::json
// value ({"$numberInt": "1"}, {"$date": {"$numberLong": ...}}, ...). Expected values from the
// test files are brought to that form by a round trip through BSON (canonical()), actual values
// come from BSON (from_bson()). Comparisons of numbers are type-agnostic as the format asks.
//
// Outcomes: an operation or assertion throws test_failure (the test FAILs), test_skip (the test
// is SKIPped: the feature, operation or option does not exist in Trellis; the reason is a fixed
// phrase so that skips can be counted by reason) or anything else (an unexpected error: FAIL).
#pragma once

#include <boost/json.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/bson/document.hpp"
#include "trellis/change_stream.hpp"
#include "trellis/client.hpp"
#include "trellis/client_encryption.hpp"
#include "trellis/collection.hpp"
#include "trellis/cursor.hpp"
#include "trellis/database.hpp"
#include "trellis/gridfs.hpp"
#include "trellis/session.hpp"

namespace trellis::spec::unified {

namespace json = boost::json;

struct test_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct test_skip : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------- values

json::value from_bson(bson::document_view doc);
/// A test file's (relaxed or canonical) Extended JSON value in canonical form.
json::value canonical(const json::value& v);
/// A JSON object as a BSON document (Extended JSON understood).
bson::document to_bson(const json::value& object);
std::string show(const json::value& v);

/// The numeric value of a canonical number ({"$numberInt"}, {"$numberLong"}, {"$numberDouble"}, or
/// a plain JSON number); nullopt for anything else. `integral` tells int32/int64 from double.
struct number {
    double d = 0;
    std::int64_t i = 0;
    bool integral = false;
};
std::optional<number> number_of(const json::value& v);
/// $type's name of a canonical value: "int", "long", "double", "string", "object", ...
std::string type_of(const json::value& v);

// ---------------------------------------------------------------- entities

/// What a client entity observed, in order, as the format names it:
/// {"commandStartedEvent": {...}} etc. Filled on the client's thread; read under the mutex.
struct event_log {
    std::mutex mutex;
    std::vector<json::object> command;  // observed (filtered) command events
    std::vector<json::object> cmap;     // observed CMAP events
    std::vector<json::object> sdam;     // observed SDAM events
    std::int64_t checked_out = 0;       // ConnectionCheckedOut - ConnectionCheckedIn
    std::string last_configure_fail_point_address;
    bool listening = true;
};

struct client_entity {
    std::shared_ptr<event_log> log;
    std::unique_ptr<trellis::client> client;
};

struct entity {
    enum class kind { client, database, collection, cursor, session, bucket, value, change_stream, client_encryption } k =
        kind::value;
    std::shared_ptr<client_entity> client;
    std::optional<trellis::database> db;
    std::optional<trellis::collection> coll;
    std::shared_ptr<trellis::cursor> cursor;
    std::shared_ptr<trellis::change_stream> stream;
    std::shared_ptr<trellis::client_session> session;
    std::shared_ptr<trellis::gridfs::bucket> bucket;
    std::shared_ptr<trellis::client_encryption> encryption;
    json::value value;  // a BSON entity (saveResultAsEntity), canonical
    std::string client_id;  // for database and collection entities
};

class entity_map {
public:
    void add(const std::string& id, entity e);
    /// The entity; test_failure naming it when undefined or of another kind.
    entity& get(const std::string& id, entity::kind k);
    entity* find(const std::string& id);
    void clear();
    std::vector<std::shared_ptr<client_entity>> clients() const;
    std::vector<std::pair<std::string, entity::kind>> kinds() const;

private:
    std::map<std::string, entity> map_;
    std::vector<std::string> order_;
};

// ---------------------------------------------------------------- matching

/// Matches an expected value (canonical, may hold $$ operators) against an actual one (nullptr:
/// absent). Throws test_failure with the path and the difference.
void match(const json::value& expected, const json::value* actual, bool root, entity_map& entities,
           const std::string& path = "");
/// An iterable result: the same number of elements, each a root-level document.
void match_documents(const json::value& expected, const json::value& actual, entity_map& entities,
                     const std::string& path);
/// Exact comparison of collection data (key order ignored, numbers type-agnostic, no extra keys).
void match_exact(const json::value& expected, const json::value& actual, const std::string& path);

// ---------------------------------------------------------------- the run

/// Where the tests run: one deployment (in-process sim or --uri) and its internal client.
struct target {
    std::string name;      // "single", "replicaset", "sharded", or the URI's
    std::string uri;       // for client entities
    std::vector<std::string> mongoses;  // sharded: every router's host:port
    std::string version;   // buildInfo version
    std::string topology;  // "single", "replicaset", "sharded", "load-balanced"
    bool auth = false;
    bool sim = true;  // an in-process trellis-sim deployment (false: --uri)
    std::string last_file;  // the file of the last test run here (a sim starts each file afresh)
    std::string credentials;  // "user:password@" for deployments with authentication
    /// A URI for one server (a mongos, or a member with directConnection), keeping the
    /// deployment's credentials and options (TLS, authSource, ...) but not replicaSet.
    std::string uri_for(const std::string& address, bool direct) const;
    std::unique_ptr<trellis::client> internal;
    // Direct clients by host:port, for disabling fail points where they were set.
    std::map<std::string, std::unique_ptr<trellis::client>> direct;
    trellis::client& direct_client(const std::string& address);
};

struct failpoint_record {
    std::string address;
    std::string name;
};

struct test_context {
    target& where;
    entity_map entities;
    std::vector<failpoint_record> failpoints;
    std::string schema_version;
    /// Inside withTransaction's callback: an operation's error, once its expectError matched,
    /// is thrown on to the driver (which decides whether to retry).
    bool rethrow_errors = false;
};

/// Creates the entities of a createEntities list (used by the test and by the operation).
void create_entities(test_context& ctx, const json::array& list);
/// Static checks of a createEntities list, before anything runs (undefined references, malformed
/// options): test_failure.
void validate_entities(const json::array& list, entity_map* existing = nullptr);

trellis::read_preference read_preference_of(const json::value& v);
/// readConcern, writeConcern, readPreference and maxCommitTimeMS of `o` (other keys ignored).
trellis::transaction_options transaction_options_of(const json::object& o, std::string_view what);
trellis::write_concern write_concern_of(const json::value& v);

/// Matches one observed event ({"commandStartedEvent": {...}}) against an expected one (canonical).
void match_event(const json::value& expected, const json::object& actual, entity_map& entities, const std::string& path);

/// Runs one operation with its assertions.
void run_operation(test_context& ctx, const json::object& op);

/// A fixed phrase for grouping: "operation updateOne not implemented".
[[noreturn]] inline void skip(const std::string& reason) { throw test_skip(reason); }
[[noreturn]] inline void fail(const std::string& reason) { throw test_failure(reason); }

/// A field of an object, or `fallback` (a value that outlives the call: null_value(), ...).
const json::value& null_value();
const json::value& empty_array();
const json::value& empty_string();
inline const json::value& field(const json::object& o, std::string_view key, const json::value& fallback = null_value()) {
    const json::value* v = o.if_contains(key);
    return v ? *v : fallback;
}

const json::object& object_of(const json::value& v, std::string_view what);
const json::array& array_of(const json::value& v, std::string_view what);
std::string string_of(const json::value& v, std::string_view what);
std::int64_t integer_of(const json::value& v, std::string_view what);

}  // namespace trellis::spec::unified
