// The spec's "Error handling" for application errors.
#include "trellis/reply.hpp"
#include <algorithm>
#include <array>
#include <stdexcept>

#include "trellis/errors.hpp"
#include "trellis/sdam.hpp"

namespace trellis::sdam {

namespace {

constexpr std::array<std::int32_t, 5> recovering_codes{11600, 11602, 13436, 189, 91};
constexpr std::array<std::int32_t, 3> not_writable_primary_codes{10107, 13435, 10058};
constexpr std::array<std::int32_t, 2> shutdown_codes{11600, 91};

template <std::size_t N>
bool has(const std::array<std::int32_t, N>& codes, std::int32_t code) noexcept {
    return std::find(codes.begin(), codes.end(), code) != codes.end();
}

bool contains(std::string_view text, std::string_view part) noexcept { return text.find(part) != std::string_view::npos; }

std::optional<std::int32_t> code_of(bson::document_view doc) noexcept {
    const auto e = doc.find("code");
    if (!e || !e->is_number()) return std::nullopt;
    const double d = e->as_double();
    if (!(d >= -2147483648.0 && d <= 2147483647.0)) return std::nullopt;
    return static_cast<std::int32_t>(d);
}

std::string message_of(bson::document_view doc) {
    for (const char* key : {"errmsg", "$err", "err"}) {
        const auto e = doc.find(key);
        if (e && e->type() == bson::type::string) return std::string(e->get_string());
    }
    return {};
}

std::optional<topology_version> topology_version_of(bson::document_view reply) noexcept {
    const auto e = reply.find("topologyVersion");
    if (!e || e->type() != bson::type::document) return std::nullopt;
    const bson::document_view tv = e->get_document();
    const auto pid = tv.find("processId");
    const auto counter = tv.find("counter");
    if (!pid || pid->type() != bson::type::oid || !counter) return std::nullopt;
    if (counter->type() == bson::type::int64) return topology_version{pid->get_oid(), counter->get_int64()};
    if (counter->type() == bson::type::int32) return topology_version{pid->get_oid(), counter->get_int32()};
    return std::nullopt;
}

std::string describe(const command_error& e) {
    std::string kind = is_recovering(e) ? "node is recovering" : "not writable primary";
    if (is_shutdown(e)) kind = "node is shutting down";
    std::string text = kind + " error";
    if (e.code) text += " (code " + std::to_string(*e.code) + ")";
    if (!e.message.empty()) text += ": " + e.message;
    return text;
}

}  // namespace

std::string_view to_string(error_kind k) noexcept {
    switch (k) {
        case error_kind::network: return "network";
        case error_kind::network_timeout: return "timeout";
        case error_kind::command: return "command";
        case error_kind::authentication: return "authentication";
    }
    return "unknown";
}

std::optional<command_error> command_error_of(bson::document_view reply) {
    if (!reply_ok(reply)) return command_error{code_of(reply), message_of(reply), topology_version_of(reply)};
    const auto wce = reply.find("writeConcernError");
    if (wce && wce->type() == bson::type::document) {
        const bson::document_view w = wce->get_document();
        return command_error{code_of(w), message_of(w), topology_version_of(reply)};
    }
    return std::nullopt;
}

bool is_recovering(const command_error& e) noexcept {
    if (e.code) return has(recovering_codes, *e.code);
    return contains(e.message, "not master or secondary") || contains(e.message, "node is recovering");
}

bool is_not_writable_primary(const command_error& e) noexcept {
    if (e.code) return has(not_writable_primary_codes, *e.code);
    if (is_recovering(e)) return false;
    return contains(e.message, "not master");
}

bool is_shutdown(const command_error& e) noexcept { return e.code && has(shutdown_codes, *e.code); }

bool is_state_change(const command_error& e) noexcept { return is_recovering(e) || is_not_writable_primary(e); }

error_response handle_application_error(const topology_description& current, const application_error& error,
                                        std::int64_t pool_generation) {
    if ((error.kind == error_kind::command) && !error.command)
        throw std::invalid_argument("handle_application_error: a command error needs its command_error (code, message)");
    error_response r{current, false, false, std::nullopt, false, false, {}};
    const std::string address = normalize_address(error.address);
    const server_description* server = current.find(address);
    if (!server) {
        r.reason = address + " is not in the topology: ignored";
        return r;
    }
    if (error.generation < pool_generation) {
        r.reason = "stale: connection generation " + std::to_string(error.generation) + " < pool generation " +
                   std::to_string(pool_generation) + ": ignored";
        return r;
    }
    const bool load_balanced = current.type == topology_type::load_balanced;

    auto mark_unknown = [&](std::string text, std::optional<topology_version> tv) {
        if (load_balanced) return;
        server_description unknown = unknown_server(address, std::move(text));
        unknown.topology_version = std::move(tv);
        unknown.last_update_time = server->last_update_time;
        update_result u = update(current, std::move(unknown));
        r.marked_unknown = u.applied;
        r.topology = std::move(u.topology);
    };
    auto clear = [&] {
        if (load_balanced) {
            if (error.service_id) {
                r.clear_pool = true;
                r.clear_service_id = error.service_id;
            }
        } else
            r.clear_pool = true;
    };

    if (error.command && is_state_change(*error.command)) {
        const command_error& e = *error.command;
        if (compare_topology_version(server->topology_version, e.topology_version) >= 0) {
            r.reason = "stale: the error's topologyVersion is not newer than the server's: ignored";
            return r;
        }
        mark_unknown(describe(e) + " from " + address, e.topology_version);
        const bool old_server = error.max_wire_version < wire_version_4_2;
        if (is_shutdown(e) || old_server) clear();
        r.request_check = !load_balanced;
        r.reason = describe(e) + (r.marked_unknown ? ": server marked Unknown" : "") +
                   (r.clear_pool ? (is_shutdown(e) ? ", pool cleared (shutting down)" : ", pool cleared (server < 4.2)")
                                 : "") +
                   (r.request_check ? ", immediate check requested" : "");
        return r;
    }

    const bool network_like = error.kind == error_kind::network ||
                              (!error.handshake_completed && (error.kind == error_kind::network_timeout ||
                                                              error.kind == error_kind::authentication));
    if (network_like &&
        std::find(error.error_labels.begin(), error.error_labels.end(), "SystemOverloadedError") != error.error_labels.end()) {
        // The current SDAM text: a backpressure-labelled error may be the server shedding load;
        // marking it Unknown and clearing its pool would make that worse.
        r.reason = std::string(to_string(error.kind)) + " error " + (error.handshake_completed ? "after" : "before") +
                   " the handshake completed on " + address + " carries SystemOverloadedError: ignored";
        return r;
    }
    if (network_like) {
        std::string text = std::string(to_string(error.kind)) + " error " +
                           (error.handshake_completed ? "after" : "before") + " the handshake completed on " + address;
        if (!error.message.empty()) text += ": " + error.message;
        if (error.command && !error.command->message.empty()) text += ": " + error.command->message;
        mark_unknown(text, std::nullopt);
        clear();
        r.cancel_check = !load_balanced;
        r.reason = text + (r.marked_unknown ? ": server marked Unknown" : "") + (r.clear_pool ? ", pool cleared" : "");
        return r;
    }

    if (error.kind == error_kind::network_timeout)
        r.reason = "network timeout after the handshake completed: the server is not marked Unknown";
    else
        r.reason = "command error that is not a state change error: nothing to do";
    return r;
}

}  // namespace trellis::sdam
