// Change streams of a simulated member: aggregate with a first $changeStream stage reads change
// events from the member's oplog (the replication log every write already goes to), and the
// cursor's getMore waits (awaitData) for new ones.
#pragma once

#include "session.hpp"
#include "state.hpp"

namespace trellis::sim {

/// Where a change stream stands in the oplog: after the entry `index` (1-based; 0: before
/// the first) of the write at `ts`. A resume token's _data encodes it.
struct stream_position {
    bson::timestamp ts;
    std::uint32_t index = 0;
    friend auto operator<=>(const stream_position&, const stream_position&) = default;
};

/// What a change stream cursor keeps between getMores.
struct change_stream_cursor {
    enum class scope { collection, database, cluster } level = scope::collection;
    std::string db, coll;                   // what it watches (coll empty: a database or the cluster)
    std::string full_document = "default";  // default, updateLookup, whenAvailable, required
    std::string full_document_before_change = "off";
    bool show_expanded_events = false;
    bson::array stages;        // the stages after $changeStream, applied to each event
    stream_position after;     // events after this position come next
    bool invalidated = false;  // an invalidate event was returned: the cursor ends
};

/// aggregate whose first stage is $changeStream: validates the stage, opens the cursor on
/// `self` reading `target`'s oplog and answers with its first batch. Throws command_error.
bson::document open_change_stream(member& self, member& target, const std::string& db, const request& req,
                                  bson::array_view stages, std::int64_t batch_size);

/// getMore of a change stream cursor: the events since, waiting up to maxTimeMS (1 s) for one.
asio::awaitable<bson::document> change_stream_get_more(member& self, member& target, std::int64_t id,
                                                       const request& req, const running_op& op);

}  // namespace trellis::sim
