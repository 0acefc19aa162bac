// trellis bson dump | from-json | validate
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "cli.hpp"
#include "trellis/bson/document.hpp"
#include "trellis/bson/json.hpp"

namespace trellis::cli {
namespace {

namespace bson = trellis::bson;

constexpr const char* bson_usage =
    "usage: trellis bson SUBCOMMAND ...\n"
    "  dump FILE.bson [--canonical]\n"
    "      Prints each document of FILE (concatenated BSON documents, as mongodump writes)\n"
    "      as one line of relaxed Extended JSON, or canonical with --canonical.\n"
    "  from-json FILE.json -o FILE.bson [--legacy-dates]\n"
    "      Converts Extended JSON (one document, or several one after another, e.g. one per\n"
    "      line) to concatenated BSON. --legacy-dates accepts {\"$date\": <milliseconds>}.\n"
    "  validate FILE.bson\n"
    "      Checks every document; reports the first invalid byte.\n"
    "FILE may be '-' for standard input (and -o - for standard output).\n";

bool wants_help(args a) {
    for (auto s : a)
        if (s == "--help" || s == "-h") return true;
    return false;
}

std::string errno_text() { return std::strerror(errno); }

// Reads concatenated BSON documents one at a time, keeping the file offset of each.
class bson_file_reader {
public:
    explicit bson_file_reader(std::string_view path) : name_(path) {
        if (path == "-") {
            in_ = &std::cin;
        } else {
            file_.open(std::string(path), std::ios::binary);
            if (!file_) throw data_error{std::string(path) + ": cannot open: " + errno_text()};
            in_ = &file_;
        }
    }

    // The next document's bytes, or false at a clean end of file. Throws data_error
    // naming the file offset of the first invalid byte.
    bool next(std::vector<std::uint8_t>& doc) {
        std::uint8_t header[4];
        in_->read(reinterpret_cast<char*>(header), 4);
        const auto got = static_cast<std::size_t>(in_->gcount());
        if (got == 0) return false;
        if (got < 4)
            fail(offset_, "truncated document header: " + std::to_string(got) + " of 4 length bytes");
        std::int32_t length;
        std::memcpy(&length, header, 4);
        if (length < 5) fail(offset_, "document length " + std::to_string(length) + " is below the minimum of 5");
        // Grow as the bytes actually arrive, so an absurd length cannot force a huge allocation.
        doc.assign(header, header + 4);
        std::size_t remaining = static_cast<std::size_t>(length) - 4;
        char chunk[65536];
        while (remaining > 0) {
            in_->read(chunk, static_cast<std::streamsize>(std::min(remaining, sizeof chunk)));
            const auto n = static_cast<std::size_t>(in_->gcount());
            if (n == 0)
                fail(offset_ + doc.size(), "document length " + std::to_string(length) + " runs past the end of the file (" +
                                               std::to_string(doc.size()) + " bytes available)");
            doc.insert(doc.end(), chunk, chunk + n);
            remaining -= n;
        }
        if (auto failure = bson::find_error(doc)) fail(offset_ + failure->offset, failure->message);
        start_ = offset_;
        offset_ += doc.size();
        ++count_;
        return true;
    }

    std::size_t count() const noexcept { return count_; }
    std::size_t bytes() const noexcept { return offset_; }
    std::size_t start() const noexcept { return start_; }

private:
    [[noreturn]] void fail(std::size_t at, const std::string& what) const {
        throw data_error{name_ + ": invalid BSON at byte " + std::to_string(at) + " (document " + std::to_string(count_ + 1) +
                         " starting at byte " + std::to_string(offset_) + "): " + what};
    }

    std::string name_;
    std::ifstream file_;
    std::istream* in_ = nullptr;
    std::size_t offset_ = 0, start_ = 0, count_ = 0;
};

int dump(args a) {
    if (wants_help(a)) {
        std::cout << "usage: trellis bson dump FILE.bson [--canonical]\n"
                     "Prints each document as one line of Extended JSON (relaxed; canonical with --canonical).\n";
        return exit_ok;
    }
    std::string_view path;
    auto mode = bson::json_mode::relaxed;
    for (auto s : a) {
        if (s == "--canonical") mode = bson::json_mode::canonical;
        else if (s == "--relaxed") mode = bson::json_mode::relaxed;
        else if (s.starts_with("--") ) throw usage_error{"bson dump: unknown option " + std::string(s)};
        else if (path.empty()) path = s;
        else throw usage_error{"bson dump: more than one FILE given"};
    }
    if (path.empty()) throw usage_error{"bson dump: FILE.bson is required"};
    bson_file_reader reader(path);
    std::vector<std::uint8_t> doc;
    std::string line;
    while (reader.next(doc)) {
        line.clear();
        bson::to_json(bson::document_view(doc.data(), doc.size()), line, mode);
        line += '\n';
        std::cout << line;
    }
    std::cout.flush();
    return exit_ok;
}

int validate(args a) {
    if (wants_help(a)) {
        std::cout << "usage: trellis bson validate FILE.bson\n"
                     "Checks lengths, terminators, element types, UTF-8 and nesting of every document.\n"
                     "Prints a summary and exits 0, or names the first invalid byte and exits 1.\n";
        return exit_ok;
    }
    if (a.size() != 1 || a[0].starts_with("--")) throw usage_error{"bson validate: exactly one FILE.bson is required"};
    bson_file_reader reader(a[0]);
    std::vector<std::uint8_t> doc;
    while (reader.next(doc)) {
    }
    std::cout << a[0] << ": valid, " << reader.count() << " document(s), " << reader.bytes() << " bytes\n";
    return exit_ok;
}

int from_json(args a) {
    if (wants_help(a)) {
        std::cout << "usage: trellis bson from-json FILE.json -o FILE.bson [--legacy-dates]\n"
                     "Converts Extended JSON documents (one, or several one after another) to concatenated BSON.\n"
                     "--legacy-dates accepts the old shell form {\"$date\": <milliseconds>}.\n";
        return exit_ok;
    }
    std::string_view input, output;
    bson::json_parse_options options;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i] == "-o" || a[i] == "--output") {
            if (i + 1 >= a.size()) throw usage_error{"bson from-json: -o needs a FILE"};
            output = a[++i];
        } else if (a[i] == "--legacy-dates") {
            options.legacy_date_numbers = true;
        } else if (a[i].starts_with("--")) {
            throw usage_error{"bson from-json: unknown option " + std::string(a[i])};
        } else if (input.empty()) {
            input = a[i];
        } else {
            throw usage_error{"bson from-json: more than one input FILE given"};
        }
    }
    if (input.empty()) throw usage_error{"bson from-json: FILE.json is required"};
    if (output.empty()) throw usage_error{"bson from-json: -o FILE.bson is required"};

    std::string text;
    {
        std::ostringstream ss;
        if (input == "-") {
            ss << std::cin.rdbuf();
        } else {
            std::ifstream in{std::string(input), std::ios::binary};
            if (!in) throw data_error{std::string(input) + ": cannot open: " + errno_text()};
            ss << in.rdbuf();
        }
        text = ss.str();
    }
    // Convert everything before writing anything, so a bad input leaves no partial output.
    std::string bytes;
    std::size_t count = 0;
    try {
        bson::json_reader reader(text, options);
        while (auto doc = reader.next()) {
            bytes.append(reinterpret_cast<const char*>(doc->data()), doc->size());
            ++count;
        }
    } catch (const trellis::bson_error& e) {
        throw data_error{std::string(input) + ": " + e.what()};
    }
    if (count == 0) throw data_error{std::string(input) + ": no document found"};
    if (output == "-") {
        std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        std::cout.flush();
    } else {
        std::ofstream out{std::string(output), std::ios::binary | std::ios::trunc};
        if (!out) throw data_error{std::string(output) + ": cannot create: " + errno_text()};
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        out.close();
        if (!out) throw data_error{std::string(output) + ": write failed: " + errno_text()};
        std::cerr << "wrote " << count << " document(s), " << bytes.size() << " bytes to " << output << '\n';
    }
    return exit_ok;
}

}  // namespace

int bson_command(args a) {
    if (a.empty()) throw usage_error{"bson: a subcommand is required (dump, from-json, validate)"};
    if (a[0] == "--help" || a[0] == "-h") {
        std::cout << bson_usage;
        return exit_ok;
    }
    if (a[0] == "dump") return dump(a.subspan(1));
    if (a[0] == "from-json") return from_json(a.subspan(1));
    if (a[0] == "validate") return validate(a.subspan(1));
    throw usage_error{"bson: unknown subcommand \"" + std::string(a[0]) + "\""};
}

}  // namespace trellis::cli
