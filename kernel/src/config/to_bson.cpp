// [plugins.<name>] tables to BSON. A plugin sees its settings as a bson::document_view, so no
// plugin (and no public header) depends on the TOML library the kernel happens to use.
#include <chrono>
#include <cstdint>

#include "config/internal.hpp"
#include "trellis/bson/builder.hpp"

namespace trellis::config_detail {
namespace {

// Milliseconds since the Unix epoch. TOML's local date-times and dates carry no offset; they
// are taken as UTC, the only reading that does not depend on where the process runs.
std::int64_t epoch_millis(const toml::date& d, const toml::time& t, std::int64_t offset_minutes) {
    using namespace std::chrono;
    const sys_days day{year{d.year} / month{d.month} / std::chrono::day{d.day}};
    const milliseconds ms = duration_cast<milliseconds>(day.time_since_epoch()) + hours{t.hour} + minutes{t.minute} +
                            seconds{t.second} + duration_cast<milliseconds>(nanoseconds{t.nanosecond}) -
                            minutes{offset_minutes};
    return ms.count();
}

class converter {
public:
    explicit converter(const source_file& source) : source_(source) {}

    void table(bson::builder& b, const toml::table& t, const std::string& path) {
        for (const auto& [key, node] : in_file_order(t)) {
            const std::string child = join_key(path, key->str());
            // BSON keys are C strings; TOML allows "\u0000" in a quoted key.
            if (key->str().find('\0') != std::string_view::npos)
                source_.fail(key->source().begin, child,
                             child + ": a key with a NUL character cannot become a BSON key");
            value(b, key->str(), *node, child);
        }
    }

private:
    // key is empty inside an array, where BSON generates the keys.
    void value(bson::builder& b, std::optional<std::string_view> key, const toml::node& node, const std::string& path) {
        const auto put = [&](const auto& v) {
            if (key) b.append(*key, v);
            else b.append(v);
        };
        switch (node.type()) {
            case toml::node_type::string: put(std::string_view(node.as_string()->get())); return;
            case toml::node_type::integer: put(static_cast<std::int64_t>(node.as_integer()->get())); return;
            case toml::node_type::floating_point: put(node.as_floating_point()->get()); return;
            case toml::node_type::boolean: put(node.as_boolean()->get()); return;
            case toml::node_type::date_time: {
                const toml::date_time& dt = node.as_date_time()->get();
                const std::int64_t offset = dt.offset ? dt.offset->minutes : 0;
                put(bson::date_time(epoch_millis(dt.date, dt.time, offset)));
                return;
            }
            case toml::node_type::date:
                put(bson::date_time(epoch_millis(node.as_date()->get(), toml::time{}, 0)));
                return;
            case toml::node_type::time:
                source_.fail(node.source().begin, path,
                             path + ": a time of day without a date has no BSON type; write it as a string, got " +
                                 describe(node));
            case toml::node_type::table:
                if (key) b.open_document(*key);
                else b.open_document();
                table(b, *node.as_table(), path);
                b.close_document();
                return;
            case toml::node_type::array: {
                if (key) b.open_array(*key);
                else b.open_array();
                std::size_t i = 0;
                for (const toml::node& element : *node.as_array())
                    value(b, std::nullopt, element, path + "[" + std::to_string(i++) + "]");
                b.close_array();
                return;
            }
            case toml::node_type::none: break;
        }
        source_.fail(node.source().begin, path, path + ": a value of an unknown type");
    }

    const source_file& source_;
};

}  // namespace

bson::document to_bson(const source_file& source, const toml::table& table, const std::string& path) {
    bson::builder b;
    converter(source).table(b, table, path);
    return b.extract();
}

}  // namespace trellis::config_detail
