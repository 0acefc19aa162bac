// The TOML configuration reader. Input: text taken as a configuration file.
//   - parse_config() fails only with config_error, whose line and column lie inside the text
//     (or are 0 when no place is to blame) and whose diagnostic starts with the file name;
//   - accepted options pass validate(); every [plugins.<name>] table is valid BSON;
//   - parsing is a function of the text: a second parse gives the same options and tables.
#include <algorithm>

#include "fuzz_check.hpp"
#include "trellis/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    trellis::config cfg;
    try {
        cfg = trellis::parse_config(text, "fuzz.toml");
    } catch (const trellis::config_error& e) {
        const std::size_t lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
        FUZZ_CHECK(e.line() <= lines, "error line " + std::to_string(e.line()) + " beyond the " + std::to_string(lines) +
                                          " lines of the text: " + e.diagnostic());
        FUZZ_CHECK(e.line() != 0 || e.column() == 0, "a column without a line: " + e.diagnostic());
        FUZZ_CHECK(e.column() <= size + 1, "error column beyond the text: " + e.diagnostic());
        FUZZ_CHECK(e.diagnostic().rfind("fuzz.toml", 0) == 0, "the diagnostic does not name the file: " + e.diagnostic());
        FUZZ_CHECK(!e.message().empty(), "an error without a message");
        return 0;
    }
    try {
        trellis::validate(cfg.options);
    } catch (const trellis::configuration_error& e) {
        FUZZ_CHECK(false, std::string("parse_config accepted options that validate() refuses: ") + e.what());
    }
    for (const auto& [name, table] : cfg.plugins.tables) {
        const auto failure = trellis::bson::find_error(table.bytes());
        FUZZ_CHECK(!failure, "[plugins." + name + "] became invalid BSON: " + (failure ? failure->message : std::string()));
    }
    const trellis::config again = trellis::parse_config(text, "fuzz.toml");
    FUZZ_CHECK(again.options == cfg.options && again.topology == cfg.topology && again.plugins.paths == cfg.plugins.paths &&
                   again.plugins.cursor_manager == cfg.plugins.cursor_manager && again.plugins.tables == cfg.plugins.tables,
               "two parses of the same text differ");
    return 0;
}
