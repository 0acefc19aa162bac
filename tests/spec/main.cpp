// trellis-spec SUITE [OPTION...] [PATH...]
//
// Each PATH is a JSON file or a folder walked recursively for *.json. With no
// PATH, the suite's folder under $TRELLIS_SPEC_DIR (default: the shared specs
// beside the checkout) is used, and when that folder is absent the run is
// reported skipped with exit code 77 (CTest's SKIP_RETURN_CODE), never passed.
// --spec-subdir SUB names a folder under $TRELLIS_SPEC_DIR the same way (absent: 77), for suites
// whose data lives in several folders (unified: unified-format/valid-pass, crud-unified, ...).
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "runner.hpp"

#ifndef TRELLIS_DEFAULT_SPEC_DIR
#define TRELLIS_DEFAULT_SPEC_DIR "../shared/specs"
#endif

namespace fs = std::filesystem;
using namespace trellis::spec;

namespace {

constexpr int exit_skipped = 77;

void usage(std::ostream& os) {
    os << "usage: trellis-spec SUITE [OPTION...] [PATH...]\n"
          "Runs specification JSON tests. Each PATH is a file or a folder searched recursively for *.json;\n"
          "without PATH, $TRELLIS_SPEC_DIR/SUITE (default " TRELLIS_DEFAULT_SPEC_DIR "/SUITE) is used.\n"
          "Prints PASS/FAIL/SKIP per test case and ends with 'N passed, M failed[, K skipped]'.\n"
          "Options:\n"
          "  --spec-subdir SUB     use $TRELLIS_SPEC_DIR/SUB (exit 77 when absent); may be repeated\n"
          "  --uri URI             run against this deployment (unified; also $TRELLIS_TEST_URI), not trellis-sim\n"
          "  --expect-failure      every test must be reported failing: a FAIL counts as caught (PASS),\n"
          "                        a pass or skip as missed (FAIL) -- for unified-format/valid-fail\n"
          "  --summary-by-reason   end with the skip counts grouped by reason\n"
          "Exit status: 0 when nothing failed, 1 when something failed, 2 usage error, 77 spec data absent.\n"
          "Suites:\n";
    for (const suite& s : suites()) os << "  " << s.name << "  " << s.summary << '\n';
}

bool read_file(const fs::path& p, std::string& out) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
        usage(argc < 2 ? std::cerr : std::cout);
        return argc < 2 ? 2 : 0;
    }
    const std::string_view name = argv[1];
    const auto it = std::find_if(suites().begin(), suites().end(), [&](const suite& s) { return s.name == name; });
    if (it == suites().end()) {
        std::cerr << "trellis-spec: unknown suite \"" << name << "\"\n";
        usage(std::cerr);
        return 2;
    }

    std::vector<fs::path> roots;
    std::vector<bool> in_spec_dir;  // per root: resolved under the spec folder (absent: skipped)
    const char* env = std::getenv("TRELLIS_SPEC_DIR");
    const fs::path spec_dir(env && *env ? env : TRELLIS_DEFAULT_SPEC_DIR);
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "trellis-spec: " << arg << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--expect-failure") {
            options().expect_failure = true;
        } else if (arg == "--summary-by-reason") {
            options().summary_by_reason = true;
        } else if (arg == "--uri") {
            options().uri = value();
        } else if (arg == "--spec-subdir") {
            roots.push_back(spec_dir / value());
            in_spec_dir.push_back(true);
        } else if (arg.starts_with("--")) {
            std::cerr << "trellis-spec: unknown option " << arg << '\n';
            usage(std::cerr);
            return 2;
        } else {
            roots.emplace_back(argv[i]);
            in_spec_dir.push_back(false);
        }
    }
    if (roots.empty()) {
        // The seedlist suite's data keeps the spec's folder name.
        roots.push_back(spec_dir / (name == "seedlist" ? std::string("initial-dns-seedlist-discovery") : std::string(name)));
        in_spec_dir.push_back(true);
    }

    reporter out{std::string(name)};
    std::vector<std::pair<fs::path, std::string>> files;  // path, name to print
    for (std::size_t r = 0; r < roots.size(); ++r) {
        const fs::path& root = roots[r];
        const bool defaulted = in_spec_dir[r];
        std::error_code ec;
        if (fs::is_directory(root, ec)) {
            for (const auto& entry : fs::recursive_directory_iterator(root, ec))
                if (entry.is_regular_file() && entry.path().extension() == ".json")
                    files.emplace_back(entry.path(), fs::relative(entry.path(), root).generic_string());
        } else if (fs::is_regular_file(root, ec)) {
            files.emplace_back(root, root.filename().generic_string());
        } else if (defaulted) {
            // Printed directly: not a test verdict, so --expect-failure does not turn it around.
            std::cout << "SKIP " << name << ' ' << root.generic_string() << ": all: spec data not found (set TRELLIS_SPEC_DIR)\n";
            std::cout << "0 passed, 0 failed, 1 skipped\n";
            return exit_skipped;
        } else {
            std::cerr << "trellis-spec: no such file or folder: " << root << '\n';
            return 2;
        }
    }
    std::sort(files.begin(), files.end());

    for (const auto& [path, shown] : files) {
        std::string text;
        if (!read_file(path, text)) {
            out.fail(shown, "(file)", "cannot read " + path.string());
            continue;
        }
        boost::system::error_code ec;
        const boost::json::value test = boost::json::parse(text, ec);
        if (ec) {
            out.fail(shown, "(file)", "not valid JSON: " + ec.message());
            continue;
        }
        try {
            it->run_file(shown, test, out);
        } catch (const std::exception& e) {
            out.fail(shown, "(file)", std::string("unexpected exception: ") + e.what());
        }
    }

    if (options().summary_by_reason && !out.skip_reasons().empty()) {
        std::vector<std::pair<std::size_t, std::string>> by_count;
        for (const auto& [reason, n] : out.skip_reasons()) by_count.emplace_back(n, reason);
        std::stable_sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        std::cout << "skipped by reason:\n";
        for (const auto& [n, reason] : by_count) std::cout << "  " << n << "  " << reason << '\n';
    }
    std::cout << out.passed() << " passed, " << out.failed() << " failed";
    if (out.skipped() > 0) std::cout << ", " << out.skipped() << " skipped";
    std::cout << '\n';
    return out.failed() == 0 ? 0 : 1;
}
