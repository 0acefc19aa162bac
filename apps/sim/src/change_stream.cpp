// Change events derived from the oplog, as mongod's change streams shape them.
#include "change_stream.hpp"

#include <algorithm>
#include <cstdio>

namespace trellis::sim {

namespace {

using scope = change_stream_cursor::scope;
constexpr std::uint32_t end_of_write = 0xFFFFFFFFu;  // a position after every entry of a write

// ---------------------------------------------------------------- resume tokens

// {_data: "82" + seconds, increment and entry index (8 hex digits each) + "01" for an invalidate}.
bson::document make_token(stream_position p, bool invalidate = false) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "82%08X%08X%08X%s", p.ts.seconds, p.ts.increment, p.index, invalidate ? "01" : "");
    return bson::make_document(bson::kvp("_data", std::string_view(buf)));
}

struct parsed_token {
    stream_position pos;
    bool invalidate = false;
};

parsed_token parse_token(const bson::element& e, std::string_view option) {
    const auto bad = [&](const std::string& why) {
        return command_error(9, "FailedToParse", "$changeStream." + std::string(option) + ": " + why);
    };
    if (e.type() != bson::type::document) throw bad("a resume token must be an object");
    const auto data = e.get_document().find("_data");
    if (!data || data->type() != bson::type::string) throw bad("a resume token needs a string _data field");
    const std::string_view s = data->get_string();
    const bool hex = std::all_of(s.begin(), s.end(), [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)); });
    if ((s.size() != 26 && s.size() != 28) || !hex || s.substr(0, 2) != "82")
        throw bad("'" + std::string(s) + "' is not a resume token of this deployment");
    const auto field = [&](std::size_t at) { return static_cast<std::uint32_t>(std::stoul(std::string(s.substr(at, 8)), nullptr, 16)); };
    parsed_token t;
    t.pos.ts = {field(2), field(10)};
    t.pos.index = field(18);
    t.invalidate = s.size() == 28;
    return t;
}

// ---------------------------------------------------------------- events

std::pair<std::string, std::string> split_namespace(std::string_view ns) {
    const auto dot = ns.find('.');
    if (dot == std::string_view::npos) return {std::string(ns), std::string()};
    return {std::string(ns.substr(0, dot)), std::string(ns.substr(dot + 1))};
}

bool internal_db(std::string_view db) { return db == "admin" || db == "config" || db == "local"; }

// Whether the stream sees changes to db.coll (coll empty: the database itself).
bool watches(const change_stream_cursor& cs, const std::string& db, const std::string& coll) {
    switch (cs.level) {
        case scope::collection: return db == cs.db && (coll == cs.coll || coll.empty());
        case scope::database: return db == cs.db && !coll.starts_with("system.");
        case scope::cluster: return !internal_db(db) && !coll.starts_with("system.");
    }
    return false;
}

// updateDescription's fields: what changed, dotted into sub-documents both versions have.
void diff(bson::document_view before, bson::document_view after, const std::string& prefix, bson::builder& updated,
          bson::builder& removed) {
    for (const auto& e : after) {
        const std::string path = prefix + std::string(e.key());
        const auto old = before.find(e.key());
        if (old && old->type() == e.type() && old->raw_value().size() == e.raw_value().size() &&
            std::equal(e.raw_value().begin(), e.raw_value().end(), old->raw_value().begin()))
            continue;
        if (old && old->type() == bson::type::document && e.type() == bson::type::document)
            diff(old->get_document(), e.get_document(), path + ".", updated, removed);
        else
            updated.append(path, e);
    }
    for (const auto& e : before)
        if (!after.find(e.key())) removed.append(prefix + std::string(e.key()));
}

// One event's common head: _id, operationType, clusterTime, wallTime, ns.
void head(bson::builder& b, const oplog_record& rec, stream_position pos, std::string_view type, const std::string& db,
          const std::string& coll, bool invalidate = false) {
    b.append("_id", make_token(pos, invalidate)).append("operationType", type).append("clusterTime", rec.op.ts);
    b.append("wallTime", bson::date_time(rec.wall));
    if (type == "invalidate") return;
    b.open_document("ns").append("db", db);
    if (!coll.empty()) b.append("coll", coll);
    b.close_document();
}

// The events of one oplog entry for this stream (none, one, or an event and an invalidate).
std::vector<bson::document> events_of(const change_stream_cursor& cs, const member& target, const oplog_record& rec,
                                      bson::document_view e, stream_position pos) {
    std::vector<bson::document> out;
    const auto op = e.find("op"), ns_field = e.find("ns"), o_field = e.find("o");
    if (!op || !ns_field || !o_field || o_field->type() != bson::type::document) return out;
    const std::string_view kind = op->get_string();
    auto [db, coll] = split_namespace(ns_field->get_string());
    const bson::document_view o = o_field->get_document();
    const auto invalidate = [&] {
        bson::builder inv;
        head(inv, rec, pos, "invalidate", db, coll, true);
        out.push_back(inv.extract());
    };

    if (kind == "n") {  // renameCollection's marker
        const auto from = o.find("renameCollection"), to = o.find("to");
        if (!from || !to) return out;
        auto [fdb, fcoll] = split_namespace(from->get_string());
        auto [tdb, tcoll] = split_namespace(to->get_string());
        if (!watches(cs, fdb, fcoll)) return out;
        bson::builder b;
        head(b, rec, pos, "rename", fdb, fcoll);
        b.open_document("to").append("db", tdb).append("coll", tcoll).close_document();
        out.push_back(b.extract());
        if (cs.level == scope::collection) invalidate();
        return out;
    }
    if (kind == "c") {
        if (o.empty()) return out;
        const bson::element cmd = *o.begin();
        const std::string name(cmd.key());
        const std::string target_coll = cmd.type() == bson::type::string ? std::string(cmd.get_string()) : std::string();
        if (name == "drop") {
            if (!watches(cs, db, target_coll)) return out;
            bson::builder b;
            head(b, rec, pos, "drop", db, target_coll);
            out.push_back(b.extract());
            if (cs.level == scope::collection) invalidate();
        } else if (name == "dropDatabase") {
            // A collection stream was invalidated by its collection's drop, logged before this.
            if (cs.level == scope::collection || !watches(cs, db, "")) return out;
            bson::builder b;
            head(b, rec, pos, "dropDatabase", db, "");
            out.push_back(b.extract());
            if (cs.level == scope::database) invalidate();
        } else if (cs.show_expanded_events && !o.find("viewOn") &&
                   (name == "create" || name == "createIndexes" || name == "dropIndexes" || name == "collMod")) {
            if (!watches(cs, db, target_coll)) return out;
            bson::builder b;
            head(b, rec, pos, name == "collMod" ? "modify" : name, db, target_coll);
            b.append("nsType", "collection");
            b.open_document("operationDescription");
            if (name == "createIndexes") {
                b.open_array("indexes").open_document();
                for (const auto& f : o)
                    if (f.key() != "createIndexes") b.append(f.key(), f);
                b.close_document().close_array();
            } else if (name == "dropIndexes") {
                b.open_array("indexes").open_document().append("name", o["index"]).close_document().close_array();
            }
            b.close_document();
            out.push_back(b.extract());
        }
        return out;
    }
    if (!watches(cs, db, coll) || coll.empty()) return out;
    const auto pre = e.find("pre");
    bson::builder b;
    if (kind == "i") {
        head(b, rec, pos, "insert", db, coll);
        b.open_document("documentKey").append("_id", o["_id"]).close_document();
        b.append("fullDocument", o);
    } else if (kind == "u") {
        const bool replacement = e.find("replace") != std::nullopt;
        const auto o2 = e.find("o2");
        head(b, rec, pos, replacement ? "replace" : "update", db, coll);
        b.open_document("documentKey").append("_id", o2 ? o2->get_document()["_id"] : o["_id"]).close_document();
        if (!replacement) {
            bson::builder updated, removed(bson::builder::root::array);
            if (pre) diff(pre->get_document(), o, "", updated, removed);
            b.open_document("updateDescription").append("updatedFields", updated.extract())
                .append("removedFields", bson::array(removed.extract())).append("truncatedArrays", bson::make_array())
                .close_document();
        }
        if (replacement || cs.full_document == "whenAvailable" || cs.full_document == "required") {
            b.append("fullDocument", o);
        } else if (cs.full_document == "updateLookup") {
            // The document as it is now (null once deleted), as mongod's lookup.
            const collection* c = target.data.find(db, coll);
            std::optional<bson::document> now;
            if (c) {
                find_options q;
                q.filter = bson::make_document(bson::kvp("_id", o["_id"]));
                auto found = c->find(q);
                if (!found.empty()) now = std::move(found.front());
            }
            if (now) b.append("fullDocument", *now);
            else b.append("fullDocument", bson::null);
        }
    } else if (kind == "d") {
        head(b, rec, pos, "delete", db, coll);
        b.open_document("documentKey").append("_id", o["_id"]).close_document();
    } else {
        return out;
    }
    if ((kind == "u" || kind == "d") && cs.full_document_before_change != "off" && pre)
        b.append("fullDocumentBeforeChange", pre->get_document());
    out.push_back(b.extract());
    return out;
}

// Runs the stream's later stages on one event. mongod 4.2+ (wire 8) refuses an event whose _id
// they changed; older ones returned it (drivers then refuse it themselves).
std::optional<bson::document> through_stages(const change_stream_cursor& cs, bson::document event, bool check_id) {
    if (cs.stages.view().empty()) return event;
    const bson::document token(event.view()["_id"].get_document());
    std::vector<bson::document> one;
    one.push_back(std::move(event));
    auto result = run_pipeline(std::move(one), cs.stages.view());
    if (result.empty()) return std::nullopt;
    const auto id = result.front().view().find("_id");
    if (check_id && (!id || id->type() != bson::type::document || bson::document(id->get_document()) != token))
        throw command_error(280, "ChangeStreamFatalError",
                            "Encountered an event whose _id field, which contains the resume token, was modified by the "
                            "pipeline. Modifying the _id field of an event makes it impossible to resume the stream from "
                            "that point. Only transformations that retain the unmodified _id field are allowed.");
    return std::move(result.front());
}

struct scan_result {
    std::vector<bson::document> events;
    bson::document post_batch_token;
};

// The events after cs.after, at most `batch` (0: no limit); moves cs.after on.
scan_result scan(change_stream_cursor& cs, const member& target, std::int64_t batch) {
    scan_result r;
    const auto& log = target.log;
    auto it = std::lower_bound(log.begin(), log.end(), cs.after.ts,
                               [](const oplog_record& rec, bson::timestamp ts) { return rec.op.ts < ts; });
    bool full = false;
    for (; it != log.end() && !full && !cs.invalidated; ++it) {
        const oplog_record& rec = *it;
        // A rename is logged as its parts after a marker: the stream sees the marker only.
        const bool rename = !rec.entries.empty() && rec.entries.front().view()["op"].get_string() == "n";
        for (std::size_t k = 0; k < rec.entries.size(); ++k) {
            const stream_position pos{rec.op.ts, static_cast<std::uint32_t>(k + 1)};
            if (pos <= cs.after) continue;
            cs.after = pos;
            if (rename && k > 0) continue;
            for (auto& ev : events_of(cs, target, rec, rec.entries[k].view(), pos)) {
                const bool inv = ev.view()["operationType"].get_string() == "invalidate";
                if (auto kept = through_stages(cs, std::move(ev), target.dep.cfg.max_wire_version >= 8))
                    r.events.push_back(std::move(*kept));
                if (inv) cs.invalidated = true;
            }
            if (cs.invalidated || (batch > 0 && static_cast<std::int64_t>(r.events.size()) >= batch)) {
                full = true;
                break;
            }
        }
        if (!full && !cs.invalidated) cs.after = {rec.op.ts, end_of_write};
    }
    r.post_batch_token = make_token(cs.after, cs.invalidated);
    return r;
}

bson::document batch_reply(std::int64_t id, const std::string& ns, const char* batch_name, scan_result r) {
    bson::builder b;
    b.open_document("cursor").open_array(batch_name);
    for (const auto& ev : r.events) b.append(ev.view());
    b.close_array().append("postBatchResumeToken", r.post_batch_token).append("id", id).append("ns", ns).close_document();
    b.append("ok", 1.0);
    return b.extract();
}

const std::set<std::string_view>& allowed_stages() {
    static const std::set<std::string_view> names{"$match", "$project", "$addFields", "$set", "$unset",
                                                  "$replaceRoot", "$replaceWith", "$redact"};
    return names;
}

// Other stages mongod knows: refused after $changeStream (20); any other name is unrecognized (40324).
const std::set<std::string_view>& known_stages() {
    static const std::set<std::string_view> names{
        "$bucket", "$bucketAuto", "$collStats", "$count", "$currentOp", "$densify", "$documents", "$facet",
        "$fill", "$geoNear", "$graphLookup", "$group", "$indexStats", "$limit", "$listLocalSessions",
        "$listSessions", "$lookup", "$merge", "$out", "$sample", "$search", "$setWindowFields", "$skip",
        "$sort", "$sortByCount", "$unionWith", "$unwind", "$changeStreamSplitLargeEvent"};
    return names;
}

}  // namespace

bson::document open_change_stream(member& self, member& target, const std::string& db, const request& req,
                                  bson::array_view stages, std::int64_t batch_size) {
    if (!self.dep.is_replica_set() && self.current != role::mongos)
        throw command_error(40573, "Location40573", "The $changeStream stage is only supported on replica sets");
    change_stream_cursor cs;
    const bson::element first = *req.body.begin();
    const bson::document_view spec_doc = (*stages.begin()).get_document();
    const bson::element spec = *spec_doc.begin();
    if (spec.type() != bson::type::document)
        throw command_error(50808, "Location50808", "$changeStream stage expects a document as argument");
    std::optional<parsed_token> resume_after, start_after;
    std::optional<bson::timestamp> start_at;
    bool all_for_cluster = false;
    for (const auto& f : spec.get_document()) {
        const std::string_view k = f.key();
        const auto enumeration = [&](std::initializer_list<std::string_view> allowed, std::string& out) {
            if (f.type() != bson::type::string)
                throw command_error(14, "TypeMismatch", "BSON field '$changeStream." + std::string(k) + "' is the wrong type '" +
                                                            std::string(bson::type_name(f.type())) + "', expected type 'string'");
            if (std::find(allowed.begin(), allowed.end(), f.get_string()) == allowed.end())
                throw command_error(2, "BadValue", "Enumeration value '" + std::string(f.get_string()) + "' for field '$changeStream." +
                                                       std::string(k) + "' is not a valid value.");
            out = std::string(f.get_string());
        };
        if (k == "fullDocument") enumeration({"default", "updateLookup", "whenAvailable", "required"}, cs.full_document);
        else if (k == "fullDocumentBeforeChange") enumeration({"off", "whenAvailable", "required"}, cs.full_document_before_change);
        else if (k == "resumeAfter") resume_after = parse_token(f, k);
        else if (k == "startAfter") start_after = parse_token(f, k);
        else if (k == "startAtOperationTime") {
            if (f.type() != bson::type::timestamp)
                throw command_error(14, "TypeMismatch", "BSON field '$changeStream.startAtOperationTime' is the wrong type '" +
                                                            std::string(bson::type_name(f.type())) + "', expected type 'timestamp'");
            start_at = f.get_timestamp();
        } else if (k == "allChangesForCluster") all_for_cluster = f.as_bool();
        else if (k == "showExpandedEvents") cs.show_expanded_events = f.as_bool();
        else
            throw command_error(40415, "Location40415", "BSON field '$changeStream." + std::string(k) + "' is an unknown field.");
    }
    if ((resume_after ? 1 : 0) + (start_after ? 1 : 0) + (start_at ? 1 : 0) > 1)
        throw command_error(40674, "Location40674", "Only one type of resume option is allowed, but multiple were found.");
    if (resume_after && resume_after->invalidate)
        throw command_error(260, "InvalidResumeToken",
                            "Attempting to resume a change stream using 'resumeAfter' is not allowed from an invalidate "
                            "notification.");

    // What it watches: the collection, the database ({aggregate: 1}) or the cluster (admin, allChangesForCluster).
    cs.db = db;
    if (first.type() == bson::type::string) {
        cs.level = scope::collection;
        cs.coll = std::string(first.get_string());
        if (internal_db(db)) throw command_error(73, "InvalidNamespace", "$changeStream may not be opened on the internal " + db + " database");
        if (all_for_cluster)
            throw command_error(73, "InvalidNamespace", "A collection change stream on " + db + "." + cs.coll +
                                                            " cannot set allChangesForCluster: run it on admin with {aggregate: 1}");
    } else if (all_for_cluster) {
        if (db != "admin")
            throw command_error(73, "InvalidNamespace", "$changeStream with allChangesForCluster must run on the admin database, not " + db);
        cs.level = scope::cluster;
    } else {
        if (internal_db(db)) throw command_error(73, "InvalidNamespace", "$changeStream may not be opened on the internal " + db + " database");
        cs.level = scope::database;
    }

    bson::builder rest(bson::builder::root::array);
    bool skipped = false;
    for (const auto& st : stages) {
        if (!skipped) {
            skipped = true;
            continue;
        }
        const std::string_view name = st.type() == bson::type::document && !st.get_document().empty()
                                          ? st.get_document().begin()->key() : std::string_view();
        if (name == "$changeStream")
            throw command_error(40602, "Location40602", "$changeStream is only valid as the first stage in a pipeline");
        if (!allowed_stages().count(name)) {
            if (!known_stages().count(name))
                throw command_error(40324, "Location40324", "Unrecognized pipeline stage name: '" + std::string(name) + "'");
            throw command_error(20, "IllegalOperation", std::string(name) + " is not permitted in a $changeStream pipeline");
        }
        rest.append_value(st);
    }
    cs.stages = bson::array(rest.extract());

    // Where it starts: after a token, at an operation time, or now.
    if (resume_after) cs.after = resume_after->pos;
    else if (start_after) cs.after = start_after->pos;
    else if (start_at) cs.after = {*start_at, 0};
    else cs.after = {target.applied().ts, end_of_write};

    scan_result r = scan(cs, target, batch_size);
    const std::string ns = first.type() == bson::type::string ? db + "." + cs.coll : db + ".$cmd.aggregate";
    std::int64_t id = 0;
    if (!cs.invalidated) {
        do id = static_cast<std::int64_t>(self.rng() & 0x3FFFFFFFFFFFFFFFULL);
        while (id == 0 || self.cursors.count(id));
        cursor c;
        c.id = id;
        c.ns = ns;
        c.last_used = steady::now();
        c.stream = std::make_shared<change_stream_cursor>(std::move(cs));
        self.cursors[id] = std::move(c);
    }
    return batch_reply(id, ns, "firstBatch", std::move(r));
}

asio::awaitable<bson::document> change_stream_get_more(member& self, member& target, std::int64_t id, const request& req,
                                                       const running_op& op) {
    std::int64_t batch = 0;
    if (auto e = req.body.find("batchSize"); e && e->is_number()) batch = e->as_int64();
    std::int64_t wait_ms = 1000;
    if (auto e = req.body.find("maxTimeMS"); e && e->is_number()) wait_ms = e->as_int64();
    const auto deadline = steady::now() + std::chrono::milliseconds(wait_ms);
    for (;;) {
        auto it = self.cursors.find(id);
        if (it == self.cursors.end() || !it->second.stream)
            throw command_error(43, "CursorNotFound", "cursor id " + std::to_string(id) + " not found");
        it->second.last_used = steady::now();
        change_stream_cursor& cs = *it->second.stream;
        scan_result r;
        try {
            r = scan(cs, target, batch);
        } catch (const command_error&) {
            self.cursors.erase(it);  // a fatal error kills the stream, as mongod's
            throw;
        }
        if (!r.events.empty() || cs.invalidated || !self.dep.running || op.killed || steady::now() >= deadline) {
            const std::string ns = it->second.ns;
            std::int64_t out_id = id;
            if (cs.invalidated) {
                self.cursors.erase(it);
                out_id = 0;
            }
            co_return batch_reply(out_id, ns, "nextBatch", std::move(r));
        }
        co_await self.dep.data_changed.wait_until(deadline);
    }
}

}  // namespace trellis::sim
