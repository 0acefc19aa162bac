#include "wire/compression.hpp"

#include <array>
#include <string>

#include "trellis/errors.hpp"

namespace trellis::wire {

void noop_compressor::compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) const {
    out.insert(out.end(), in.begin(), in.end());
}

void noop_compressor::decompress(std::span<const std::uint8_t> in, std::size_t uncompressed_size,
                                 std::vector<std::uint8_t>& out) const {
    // Never produce more than announced (the compressor contract). A payload
    // shorter than announced is left for the codec's size check, which can
    // say where in the message the sizes came from.
    if (in.size() > uncompressed_size) {
        throw protocol_error(errc::compression_error,
                             "noop compressor: the payload is " + std::to_string(in.size()) +
                                 " bytes, more than the announced uncompressedSize of " +
                                 std::to_string(uncompressed_size));
    }
    out.insert(out.end(), in.begin(), in.end());
}

compressor_registry compressor_registry::with_builtins() {
    compressor_registry r;
    r.add(std::make_shared<noop_compressor>());
    return r;
}

void compressor_registry::add(std::shared_ptr<const compressor> c) {
    if (!c) throw protocol_error(errc::compression_error, "compressor_registry::add: null compressor");
    for (const auto& e : entries_) {
        if (e->id() == c->id()) {
            throw protocol_error(errc::compression_error,
                                 "compressor_registry::add: compressor id " + std::to_string(c->id()) + " (\"" +
                                     std::string(c->name()) + "\") is already registered as \"" +
                                     std::string(e->name()) + "\"");
        }
        if (e->name() == c->name()) {
            throw protocol_error(errc::compression_error,
                                 "compressor_registry::add: compressor name \"" + std::string(c->name()) +
                                     "\" is already registered with id " + std::to_string(e->id()));
        }
    }
    entries_.push_back(std::move(c));
}

std::shared_ptr<const compressor> compressor_registry::find(std::uint8_t id) const noexcept {
    for (const auto& e : entries_) {
        if (e->id() == id) return e;
    }
    return nullptr;
}

std::shared_ptr<const compressor> compressor_registry::find(std::string_view name) const noexcept {
    for (const auto& e : entries_) {
        if (e->name() == name) return e;
    }
    return nullptr;
}

std::vector<std::string_view> compressor_registry::names() const {
    std::vector<std::string_view> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) out.push_back(e->name());
    return out;
}

const compressor_registry& default_compressor_registry() {
    static const compressor_registry instance = compressor_registry::with_builtins();
    return instance;
}

namespace {

bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char ch) { return (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

}  // namespace

bool is_compressible_command(std::string_view command_name) noexcept {
    static constexpr std::array<std::string_view, 11> never_compressed = {
        "hello",      "isMaster",   "saslStart",       "saslContinue",   "getnonce", "authenticate",
        "createUser", "updateUser", "copydbSaslStart", "copydbgetnonce", "copydb",
    };
    for (auto name : never_compressed) {
        if (iequals_ascii(command_name, name)) return false;
    }
    return true;
}

}  // namespace trellis::wire
