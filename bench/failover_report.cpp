#include "failover_report.hpp"

#include <algorithm>
#include <cmath>

#include <boost/json.hpp>

namespace trellis_bench::failover {

namespace {

namespace json = boost::json;

double number(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) throw report_error("the PyMongo summary has no \"" + std::string(key) + "\"");
    if (v->is_double()) return v->get_double();
    if (v->is_int64()) return static_cast<double>(v->get_int64());
    if (v->is_uint64()) return static_cast<double>(v->get_uint64());
    throw report_error("the PyMongo summary's \"" + std::string(key) + "\" is not a number");
}

std::int64_t integer(const json::object& o, std::string_view key, std::optional<std::int64_t> fallback = std::nullopt) {
    const json::value* v = o.if_contains(key);
    if (v == nullptr) {
        if (fallback) return *fallback;
        throw report_error("the PyMongo summary has no \"" + std::string(key) + "\"");
    }
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
        return static_cast<std::int64_t>(v->get_uint64());
    throw report_error("the PyMongo summary's \"" + std::string(key) + "\" is not an integer");
}

bool positive(double x) { return std::isfinite(x) && x > 0; }

}  // namespace

double median(std::vector<double> samples) {
    if (samples.empty()) throw report_error("the median of no samples");
    std::sort(samples.begin(), samples.end());
    const std::size_t n = samples.size();
    return n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
}

pymongo_summary parse_pymongo_summary(std::string_view line) {
    boost::system::error_code ec;
    const json::value v = json::parse(line, ec);
    if (ec) throw report_error("the PyMongo summary is not JSON (" + ec.message() + "): " + std::string(line));
    if (!v.is_object()) throw report_error("the PyMongo summary is not a JSON object: " + std::string(line));
    const json::object& o = v.get_object();

    pymongo_summary s;
    s.median_ms = number(o, "median_ms");
    const json::value* samples = o.if_contains("samples");
    if (samples == nullptr || !samples->is_array() || samples->get_array().empty())
        throw report_error("the PyMongo summary's \"samples\" is not a non-empty array");
    for (const json::value& x : samples->get_array()) {
        double ms = 0;
        if (x.is_double()) ms = x.get_double();
        else if (x.is_int64()) ms = static_cast<double>(x.get_int64());
        else if (x.is_uint64()) ms = static_cast<double>(x.get_uint64());
        else throw report_error("a PyMongo sample is not a number");
        if (!positive(ms)) throw report_error("a PyMongo sample is not a positive time");
        s.samples_ms.push_back(ms);
    }
    if (!positive(s.median_ms)) throw report_error("the PyMongo median is not a positive time");
    if (std::abs(median(s.samples_ms) - s.median_ms) > 1e-3)
        throw report_error("the PyMongo summary's median_ms is not the median of its samples");
    s.lost = integer(o, "lost");
    if (s.lost < 0) throw report_error("the PyMongo summary's \"lost\" is negative");
    s.acknowledged = integer(o, "acknowledged", 0);
    s.counted = integer(o, "counted", 0);
    s.failed_writes = integer(o, "failed_writes", 0);
    if (const json::value* p = o.if_contains("pymongo"); p != nullptr && p->is_string())
        s.pymongo_version = std::string(p->get_string());
    return s;
}

std::optional<pymongo_summary> find_pymongo_summary(const std::vector<std::string>& lines) {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it)
        if (it->find("\"median_ms\"") != std::string::npos) return parse_pymongo_summary(*it);
    return std::nullopt;
}

double failover_ratio(double trellis_ms, double pymongo_ms) {
    if (!positive(trellis_ms) || !positive(pymongo_ms))
        throw report_error("a failover ratio needs two positive times, got trellis " + std::to_string(trellis_ms) +
                           " ms and pymongo " + std::to_string(pymongo_ms) + " ms");
    return trellis_ms / pymongo_ms;
}

std::string failover_json(double trellis_ms, double pymongo_ms) {
    const double ratio = failover_ratio(trellis_ms, pymongo_ms);
    json::array tasks;
    tasks.push_back(json::object{{"name", task_name},
                                 {"trellis_ms", trellis_ms},
                                 {"pymongo_ms", pymongo_ms},
                                 {"ratio", ratio}});
    const json::object root{{"tasks", std::move(tasks)}};
    return json::serialize(root) + "\n";
}

}  // namespace trellis_bench::failover
