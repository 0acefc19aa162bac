// Suite rtt: the round-trip-time moving average (server-selection/tests/rtt). Each file gives
// the current average ("NULL": no sample yet), one new sample and the expected new average, all
// in milliseconds; sdam::rtt_estimator computes it.
#include <cmath>
#include <sstream>

#include "runner.hpp"
#include "trellis/sdam.hpp"

namespace trellis::spec {
namespace {

namespace json = boost::json;
using millis = std::chrono::duration<double, std::milli>;

std::optional<double> number(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v) return std::nullopt;
    if (v->is_int64()) return static_cast<double>(v->get_int64());
    if (v->is_uint64()) return static_cast<double>(v->get_uint64());
    if (v->is_double()) return v->get_double();
    return std::nullopt;
}

std::string shown(const json::object* o, std::string_view key) {
    if (!o || !o->contains(key)) return "?";
    if (const auto n = number(*o, key)) {
        std::ostringstream text;
        text << *n << " ms";
        return text.str();
    }
    return json::serialize(o->at(key));
}

void run_file(std::string_view file, const json::value& test, reporter& out) {
    const auto* o = test.if_object();
    const std::string name = "average " + shown(o, "avg_rtt_ms") + ", sample " + shown(o, "new_rtt_ms");
    if (!o || !o->contains("avg_rtt_ms")) return out.fail(file, name, "malformed test file: no avg_rtt_ms");
    const auto sample = number(*o, "new_rtt_ms");
    const auto expected = number(*o, "new_avg_rtt");
    if (!sample || !expected) return out.fail(file, name, "malformed test file: new_rtt_ms or new_avg_rtt is not a number");

    sdam::rtt_estimator rtt;
    const json::value& previous = o->at("avg_rtt_ms");
    if (const auto avg = number(*o, "avg_rtt_ms"))
        rtt = sdam::rtt_estimator(std::chrono::duration_cast<sdam::rtt_estimator::duration>(millis(*avg)));
    else if (!(previous.is_string() && previous.get_string() == "NULL"))
        return out.fail(file, name, "malformed test file: avg_rtt_ms is neither a number nor \"NULL\"");

    rtt.add_sample(std::chrono::round<std::chrono::nanoseconds>(millis(*sample)));
    const double got = std::chrono::duration_cast<millis>(*rtt.average()).count();
    if (std::fabs(got - *expected) > 1e-9 * std::max(1.0, std::fabs(*expected))) {
        std::ostringstream why;
        why.precision(17);
        why << "new average " << got << " ms, expected " << *expected << " ms";
        return out.fail(file, name, why.str());
    }
    out.pass(file, name);
}

}  // namespace

extern const suite rtt_suite;
const suite rtt_suite{"rtt", "round-trip-time moving average (alpha 0.2)", run_file};

}  // namespace trellis::spec
