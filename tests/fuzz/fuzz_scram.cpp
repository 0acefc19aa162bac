// The SCRAM client conversation (auth-scram's sans-io core). Input: byte 0 picks the hash (bit 0)
// and the mode (bit 1); the rest is split at the first NUL byte.
//   hostile mode: the two parts are the server-first and server-final messages. client_final()
//     and verify_server_final() fail only with scram_error; a client-final message, when one is
//     made, is "c=biws,r=<the server's nonce>,p=<proof>"; a server-final message cannot be
//     accepted unless it carries the signature (random bytes never do).
//   honest mode: the two parts are a user name and a password, conversed with trellis-sim's own
//     SCRAM server (an independent implementation) using a salt and an iteration count taken from
//     the input: every step succeeds and the client accepts the server's signature.
// The client refuses iteration counts below its minimum (4096); here the minimum is 1 so that
// the fuzzer is not slowed by PBKDF2, and inputs asking for more than 4096 are skipped.
#include <charconv>

#include "auth/scram.hpp"
#include "fuzz_check.hpp"
#include "scram_core.hpp"

namespace scram = trellis::auth_scram;
namespace simauth = trellis::sim::auth;

namespace {

const std::string client_nonce = "fyko+d2lbbFgONRv9qkxdawL";

// Whether any "i=" attribute asks for more than 4096 iterations (or cannot be read cheaply).
bool costly(std::string_view message) {
    std::size_t start = 0;
    while (start <= message.size()) {
        const std::size_t end = std::min(message.find(',', start), message.size());
        const std::string_view part = message.substr(start, end - start);
        if (part.starts_with("i=")) {
            std::string_view digits = part.substr(2);
            while (!digits.empty() && (digits[0] == ' ' || digits[0] == '+' || (digits[0] >= '\t' && digits[0] <= '\r')))
                digits.remove_prefix(1);
            long long n = 0;
            const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
            (void)p;
            if (ec == std::errc::result_out_of_range || n > 4096) return true;
        }
        start = end + 1;
    }
    return false;
}

void hostile(scram::hash_kind hash, std::string_view server_first, std::string_view server_final) {
    if (costly(server_first)) return;
    // Not the RFC vectors' password, so that their server-final messages (in the seeds) are wrong.
    scram::scram_client client(hash, "user", "not-pencil", client_nonce);
    std::string final_message;
    try {
        final_message = client.client_final(server_first, 1);
    } catch (const scram::scram_error& e) {
        FUZZ_CHECK(std::string_view(e.what()).size() > 0, "an error without a message");
        return;
    }
    FUZZ_CHECK(final_message.starts_with("c=biws,r=" + client_nonce), "client-final " + final_message);
    FUZZ_CHECK(final_message.find(",p=") != std::string::npos, "client-final without a proof: " + final_message);
    try {
        client.verify_server_final(server_final);
        // Accepted: the message must then carry the exact signature (HMAC over this exchange),
        // which no input can be expected to hold.
        FUZZ_CHECK(false, "server-final \"" + std::string(server_final) + "\" accepted without the server's signature");
    } catch (const scram::scram_error&) {
    }
}

void honest(scram::hash_kind hash, std::string_view user, std::string_view password, std::uint8_t knob) {
    const simauth::mechanism mech = hash == scram::hash_kind::sha1 ? simauth::mechanism::scram_sha_1 : simauth::mechanism::scram_sha_256;
    if (user.empty()) return;  // the credential rules refuse SCRAM without a user name
    std::string key_password;
    try {
        key_password = scram::prepare_password(hash, user, password);
    } catch (const std::invalid_argument&) {
        return;  // SASLprep refuses the password: no conversation (the plugin reports it typed)
    }
    const int iterations = 1 + knob % 16;
    simauth::bytes salt(1 + knob % 20);
    for (std::size_t i = 0; i < salt.size(); ++i) salt[i] = static_cast<std::uint8_t>(i * 37 + knob);
    simauth::random_source fixed = [](std::span<std::uint8_t> out) {
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(i + 1);
    };
    simauth::scram_conversation server(mech, std::string(user), key_password, salt, iterations, fixed);
    scram::scram_client client(hash, std::string(user), key_password, client_nonce);

    const auto first = server.step(client.client_first());
    FUZZ_CHECK(first.ok(), "the server refused client-first " + client.client_first() + ": " + first.error().reason);
    std::string final_message;
    try {
        final_message = client.client_final(first->server_message, 1);
    } catch (const scram::scram_error& e) {
        FUZZ_CHECK(false, "the client refused the server-first " + first->server_message + ": " + e.what());
    }
    const auto last = server.step(final_message);
    FUZZ_CHECK(last.ok(), "the server refused the client's proof for user \"" + std::string(user) + "\": " + last.error().reason);
    try {
        client.verify_server_final(last->server_message);
    } catch (const scram::scram_error& e) {
        FUZZ_CHECK(false, "the client refused the server's signature " + last->server_message + ": " + e.what());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const auto hash = (data[0] & 1) ? scram::hash_kind::sha256 : scram::hash_kind::sha1;
    const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    const std::size_t nul = rest.find('\0');
    const std::string_view a = rest.substr(0, nul);
    const std::string_view b = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
    if (data[0] & 2) honest(hash, a, b, data[0]);
    else hostile(hash, a, b);
    return 0;
}
