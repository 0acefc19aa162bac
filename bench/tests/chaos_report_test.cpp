// The pure parts of `trellis-bench chaos` (bench/chaos.hpp): reconciling what the writers
// were told with what the final read found, and the --json document.
#include <QtTest/QtTest>

#include <string>
#include <vector>

#include <boost/json.hpp>

#include "chaos.hpp"

using namespace trellis_bench::chaos;

class ChaosReportTest : public QObject {
    Q_OBJECT

private slots:
    void everything_acknowledged_and_found_is_clean() {
        const std::set<write_id> attempted{{0, 0}, {0, 1}, {1, 0}};
        const reconciliation r = reconcile(attempted, attempted, {{1, 0}, {0, 1}, {0, 0}});
        QCOMPARE(r.lost, 0);
        QCOMPARE(r.duplicated, 0);
        QCOMPARE(r.failed_present, 0);
        QCOMPARE(r.unknown, 0);
    }

    void missing_acknowledged_write_is_lost() {
        const std::set<write_id> attempted{{0, 0}, {0, 1}, {2, 7}};
        const reconciliation r = reconcile(attempted, attempted, {{0, 0}});
        QCOMPARE(r.lost, 2);
        QCOMPARE(r.lost_ids.size(), std::size_t{2});
        QCOMPARE(r.lost_ids[0], (write_id{0, 1}));
        QCOMPARE(r.lost_ids[1], (write_id{2, 7}));
    }

    void failed_write_may_be_missing_or_present() {
        const std::set<write_id> attempted{{0, 0}, {0, 1}, {0, 2}};
        const std::set<write_id> acknowledged{{0, 0}};
        const reconciliation r = reconcile(attempted, acknowledged, {{0, 0}, {0, 2}});
        QCOMPARE(r.lost, 0);             // {0, 1} failed and is absent: fine
        QCOMPARE(r.failed_present, 1);   // {0, 2} failed but was applied: fine, counted
    }

    void an_id_found_twice_is_one_duplicate() {
        const std::set<write_id> attempted{{0, 0}, {1, 0}};
        const reconciliation r = reconcile(attempted, {{0, 0}}, {{0, 0}, {1, 0}, {0, 0}, {0, 0}, {1, 0}});
        QCOMPARE(r.duplicated, 2);  // {0, 0} three times and {1, 0} twice
        QCOMPARE(r.duplicated_ids.size(), std::size_t{2});
        QCOMPARE(r.lost, 0);
    }

    void an_id_never_written_is_unknown_and_fails_the_run() {
        const reconciliation r = reconcile({{0, 0}}, {{0, 0}}, {{0, 0}, {5, 5}});
        QCOMPARE(r.unknown, 1);
        report rep;
        rep.unknown = r.unknown;
        QVERIFY(report_failed(rep));
    }

    void report_fails_on_lost_duplicated_or_hung_only() {
        report r;
        r.acknowledged = 100;
        r.failed = 5;
        r.faults = 3;
        r.slow = 2;  // allowed: a retry may wait out connectTimeoutMS
        QVERIFY(!report_failed(r));
        report lost = r;
        lost.lost = 1;
        QVERIFY(report_failed(lost));
        report dup = r;
        dup.duplicated = 1;
        QVERIFY(report_failed(dup));
        report hung = r;
        hung.hung = 1;
        QVERIFY(report_failed(hung));
    }

    void json_has_the_issue_keys_and_the_detail() {
        report r;
        r.acknowledged = 1234;
        r.failed = 7;
        r.failed_by_error["NotWritablePrimary (10107)"] = 4;
        r.failed_by_error["server selection timed out"] = 3;
        r.lost = 0;
        r.duplicated = 0;
        r.hung = 1;
        r.slow = 2;
        r.faults = 9;
        r.faults_by_kind["kill primary"] = 9;
        r.seconds = 30;
        r.seed = 14;
        r.writers = 4;
        const std::string text = report_json(r);
        QVERIFY(text.ends_with("\n"));
        QCOMPARE(text.find('\n'), text.size() - 1);
        const boost::json::object o = boost::json::parse(text).as_object();
        for (const char* key : {"acknowledged", "failed", "lost", "duplicated", "hung", "faults", "seconds", "seed"})
            QVERIFY2(o.contains(key), key);
        QCOMPARE(o.at("acknowledged").as_int64(), 1234);
        QCOMPARE(o.at("failed").as_int64(), 7);
        QCOMPARE(o.at("hung").as_int64(), 1);
        QCOMPARE(o.at("slow").as_int64(), 2);
        QCOMPARE(o.at("faults").as_int64(), 9);
        QCOMPARE(o.at("seconds").as_int64(), 30);
        QCOMPARE(o.at("seed").to_number<std::uint64_t>(), std::uint64_t{14});
        QCOMPARE(o.at("failed_by_error").at("NotWritablePrimary (10107)").as_int64(), 4);
        QCOMPARE(o.at("faults_by_kind").at("kill primary").as_int64(), 9);
    }
};

QTEST_GUILESS_MAIN(ChaosReportTest)
#include "chaos_report_test.moc"
