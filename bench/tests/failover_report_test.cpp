// The pure parts of `trellis-bench failover` (bench/failover_report.hpp): the PyMongo
// summary line, the median, the ratio and the --json document.
#include <QtTest/QtTest>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "failover_report.hpp"

using namespace trellis_bench::failover;

namespace {
// A summary line as pymongo_failover.py prints it.
const std::string good_summary =
    R"({"median_ms": 412.5, "samples": [500.25, 412.5, 398.0, 430.75, 401.0], "lost": 0, "acknowledged": 5210, )"
    R"("counted": 5211, "unacknowledged_applied": 1, "failed_writes": 3, "stepdowns": 5, "heartbeat_ms": 500, )"
    R"("no_reelect_secs": 2, "w": "majority", "pymongo": "3.11.0"})";
}  // namespace

class FailoverReportTest : public QObject {
    Q_OBJECT

private slots:
    void median_of_odd_and_even_counts() {
        QCOMPARE(median({3.0, 1.0, 2.0}), 2.0);
        QCOMPARE(median({4.0, 1.0, 3.0, 2.0}), 2.5);
        QCOMPARE(median({7.0}), 7.0);
        QVERIFY_THROWS_EXCEPTION(report_error, median({}));
    }

    void json_holds_both_medians_and_their_ratio() {
        const std::string text = failover_json(300.0, 400.0);
        QVERIFY(text.ends_with("\n"));
        QCOMPARE(text.find('\n'), text.size() - 1);  // one line
        const boost::json::value v = boost::json::parse(text);
        const boost::json::array& tasks = v.at("tasks").as_array();
        QCOMPARE(tasks.size(), std::size_t(1));
        const boost::json::object& t = tasks[0].as_object();
        QCOMPARE(t.size(), std::size_t(4));
        QCOMPARE(std::string(t.at("name").as_string()), std::string("failover_first_write"));
        QCOMPARE(t.at("trellis_ms").to_number<double>(), 300.0);
        QCOMPARE(t.at("pymongo_ms").to_number<double>(), 400.0);
        QCOMPARE(t.at("ratio").to_number<double>(), 0.75);
        QCOMPARE(failover_ratio(600.0, 400.0), 1.5);
    }

    void json_refuses_a_missing_or_bogus_time() {
        QVERIFY_THROWS_EXCEPTION(report_error, failover_json(0.0, 400.0));
        QVERIFY_THROWS_EXCEPTION(report_error, failover_json(300.0, -1.0));
        QVERIFY_THROWS_EXCEPTION(report_error, failover_json(std::numeric_limits<double>::quiet_NaN(), 400.0));
        QVERIFY_THROWS_EXCEPTION(report_error, failover_json(300.0, std::numeric_limits<double>::infinity()));
    }

    void parses_the_scripts_summary() {
        const pymongo_summary s = parse_pymongo_summary(good_summary);
        QCOMPARE(s.median_ms, 412.5);
        QCOMPARE(s.samples_ms, (std::vector<double>{500.25, 412.5, 398.0, 430.75, 401.0}));
        QCOMPARE(s.lost, std::int64_t(0));
        QCOMPARE(s.acknowledged, std::int64_t(5210));
        QCOMPARE(s.counted, std::int64_t(5211));
        QCOMPARE(s.failed_writes, std::int64_t(3));
        QCOMPARE(s.pymongo_version, std::string("3.11.0"));
        // Integers are numbers too; a lost write is reported, not hidden.
        const pymongo_summary t = parse_pymongo_summary(R"({"median_ms": 400, "samples": [400], "lost": 2})");
        QCOMPARE(t.median_ms, 400.0);
        QCOMPARE(t.lost, std::int64_t(2));
    }

    void rejects_a_bad_summary() {
        QVERIFY_THROWS_EXCEPTION(report_error, parse_pymongo_summary("median_ms 400"));
        QVERIFY_THROWS_EXCEPTION(report_error, parse_pymongo_summary("[1, 2]"));
        QVERIFY_THROWS_EXCEPTION(report_error, parse_pymongo_summary(R"({"samples": [400], "lost": 0})"));
        QVERIFY_THROWS_EXCEPTION(report_error, parse_pymongo_summary(R"({"median_ms": 400, "samples": [], "lost": 0})"));
        QVERIFY_THROWS_EXCEPTION(report_error, parse_pymongo_summary(R"({"median_ms": 400, "samples": [400]})"));
        QVERIFY_THROWS_EXCEPTION(report_error,
                                 parse_pymongo_summary(R"({"median_ms": 400, "samples": [400, "x"], "lost": 0})"));
        QVERIFY_THROWS_EXCEPTION(report_error, parse_pymongo_summary(R"({"median_ms": 0, "samples": [0], "lost": 0})"));
        QVERIFY_THROWS_EXCEPTION(report_error, parse_pymongo_summary(R"({"median_ms": 400, "samples": [400], "lost": -1})"));
        QVERIFY_THROWS_EXCEPTION(report_error, parse_pymongo_summary(R"({"median_ms": 400, "samples": [400], "lost": 0.5})"));
        // The median must be the median of the samples.
        QVERIFY_THROWS_EXCEPTION(report_error,
                                 parse_pymongo_summary(R"({"median_ms": 300, "samples": [100, 400, 500], "lost": 0})"));
    }

    void finds_the_summary_after_the_per_stepdown_lines() {
        const std::vector<std::string> lines{
            R"({"stepdown": 1, "ms": 500.25, "old_primary": "127.0.0.1:1", "acknowledged_by": "127.0.0.1:2"})",
            R"({"stepdown": 2, "ms": 412.5, "old_primary": "127.0.0.1:2", "acknowledged_by": "127.0.0.1:3"})",
            good_summary,
        };
        const auto s = find_pymongo_summary(lines);
        QVERIFY(s.has_value());
        QCOMPARE(s->median_ms, 412.5);
        QVERIFY(!find_pymongo_summary({lines[0], lines[1]}).has_value());
        QVERIFY(!find_pymongo_summary({}).has_value());
    }
};

QTEST_GUILESS_MAIN(FailoverReportTest)
#include "failover_report_test.moc"
