// trellis-sim's command dispatch, in process (command_harness: no sockets). Input: byte 0's bit 0
// adds "$db": "test" to commands that lack one; the rest is a run of BSON documents, each a
// command, run in order on one fresh standalone member (so that state carries from one to the
// next: insert, then find). Documents the validator refuses end the run, as a connection would.
//   - every command gets a reply, never an exception (the session would close the connection);
//   - the reply is valid BSON with "ok" 0 or 1 (a number or a bool); an error reply (ok 0) has a
//     string "errmsg" and a numeric "code", as mongod's do.
// A command still waiting after 50 ms (an awaitable hello, blockConnection) ends the run.
#include <cstring>

#include "fuzz_check.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/sim/command_harness.hpp"

namespace bson = trellis::bson;
using trellis::fuzz::hex;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const bool add_db = (data[0] & 1) != 0;
    std::span<const std::uint8_t> rest(data + 1, size - 1);
    trellis::sim::command_harness member;
    for (int n = 0; n < 8 && rest.size() >= 5; ++n) {
        std::int32_t len = 0;
        std::memcpy(&len, rest.data(), 4);
        if (len < 5 || static_cast<std::size_t>(len) > rest.size()) break;
        const auto piece = rest.first(static_cast<std::size_t>(len));
        rest = rest.subspan(static_cast<std::size_t>(len));
        if (bson::find_error(piece)) break;
        bson::document command(bson::document_view(piece.data(), piece.size()));
        if (add_db && !command.contains("$db")) {
            bson::builder b;
            b.concat(command);
            b.append("$db", "test");
            command = b.extract();
        }
        const std::string shown = bson::to_json(command, bson::json_mode::relaxed);
        trellis::sim::command_harness::outcome out;
        try {
            out = member.run(command, std::chrono::milliseconds(50));
        } catch (const std::exception& e) {
            FUZZ_CHECK(false, "command " + shown + " threw instead of replying: " + e.what());
        }
        if (out.waiting || out.closed) break;
        FUZZ_CHECK(out.reply.has_value(), "no reply to " + shown);
        const bson::document& reply = *out.reply;
        const auto failure = bson::find_error(reply.bytes());
        FUZZ_CHECK(!failure, "invalid BSON in the reply to " + shown + ": " + (failure ? failure->message : std::string()));
        const auto ok = reply.find("ok");
        FUZZ_CHECK(ok.has_value(), "no \"ok\" in the reply to " + shown + ": " + bson::to_json(reply));
        FUZZ_CHECK(ok->is_number() || ok->type() == bson::type::boolean, "\"ok\" is not a number: " + bson::to_json(reply));
        const double v = ok->type() == bson::type::boolean ? (ok->get_bool() ? 1 : 0) : ok->as_double();
        FUZZ_CHECK(v == 0 || v == 1, "\"ok\" is neither 0 nor 1 in the reply to " + shown + ": " + bson::to_json(reply));
        if (v == 0) {
            const auto errmsg = reply.find("errmsg");
            const auto code = reply.find("code");
            FUZZ_CHECK(errmsg && errmsg->type() == bson::type::string, "an error reply without errmsg to " + shown + ": " + bson::to_json(reply));
            FUZZ_CHECK(code && code->is_number(), "an error reply without a code to " + shown + ": " + bson::to_json(reply));
        }
    }
    return 0;
}
