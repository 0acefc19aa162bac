// Secrets (issue #14): a password and the SCRAM client proofs must appear nowhere a user can see
// them: not in any event (SDAM, CMAP, command, callback failures) serialised to text, not in error
// messages (a wrong password included), not in the trellis CLI's output (its commands with the
// password in the URI, `trellis config check` on a TOML file holding it). The proofs are not
// guessed: a verbose trellis-sim logs every command it receives (getLog "global"), and the test
// reads the saslStart/saslContinue payloads (and speculativeAuthenticate's) from there, then
// looks for each payload's base64, its decoded text and its p= proof in everything captured.
#include <QtTest/QtTest>

#include <QProcess>
#include <QTemporaryDir>
#include <mutex>
#include <sstream>

#include "cli_runner.hpp"
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/errors.hpp"
#include "trellis/sim/deployment.hpp"

namespace bson = trellis::bson;

namespace {

const std::string user = "keeper";
const std::string password = "Tr3ll1s-Sekr1t-Pw";
const std::string wrong_password = "N0t-The-Pw-9z";

std::string base64(const std::string& raw) {
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < raw.size(); i += 3) {
        const unsigned v = (unsigned char)raw[i] << 16 | (unsigned char)raw[i + 1] << 8 | (unsigned char)raw[i + 2];
        out += {a[v >> 18 & 63], a[v >> 12 & 63], a[v >> 6 & 63], a[v & 63]};
    }
    if (raw.size() - i == 1) {
        const unsigned v = (unsigned char)raw[i] << 16;
        out += {a[v >> 18 & 63], a[v >> 12 & 63], '=', '='};
    } else if (raw.size() - i == 2) {
        const unsigned v = (unsigned char)raw[i] << 16 | (unsigned char)raw[i + 1] << 8;
        out += {a[v >> 18 & 63], a[v >> 12 & 63], a[v >> 6 & 63], '='};
    }
    return out;
}


std::string describe(const trellis::sdk::server_description& s) {
    std::ostringstream o;
    o << "{" << s.address << " " << trellis::sdk::to_string(s.type);
    if (s.error) o << " error=" << *s.error;
    if (s.set_name) o << " set=" << *s.set_name;
    if (s.me) o << " me=" << *s.me;
    for (const auto& h : s.hosts) o << " host=" << h;
    o << "}";
    return o.str();
}
std::string describe(const trellis::sdk::topology_description& t) {
    std::string s = "[" + std::string(trellis::sdk::to_string(t.type));
    if (t.compatibility_error) s += " " + *t.compatibility_error;
    for (const auto& sd : t.servers) s += " " + describe(sd);
    return s + "]";
}

// Every field of any event that can hold text, as one line.
template <class E>
std::string serialise(const E& ev) {
    std::ostringstream o;
    o << E::type_name;
    if constexpr (requires { ev.address; }) o << " address=" << ev.address;
    if constexpr (requires { ev.command_name; }) o << " command=" << ev.command_name << " db=" << ev.database_name;
    if constexpr (requires { ev.command; }) o << " body=" << bson::to_json(ev.command.view());
    if constexpr (requires { ev.failure; }) o << " failure=" << ev.failure;
    if constexpr (requires { ev.error.message(); }) o << " error=" << ev.error.message();
    if constexpr (requires { ev.reason; }) o << " reason=" << trellis::to_string(ev.reason);
    if constexpr (requires { ev.reply.view(); }) o << " reply=" << bson::to_json(ev.reply.view());
    if constexpr (requires { ev.reply->view(); })
        if (ev.reply) o << " reply=" << bson::to_json(ev.reply->view());
    if constexpr (requires { ev.new_description; })
        o << " previous=" << describe(ev.previous_description) << " new=" << describe(ev.new_description);
    return o.str();
}

struct capture {
    std::mutex mutex;
    std::vector<std::string> lines;
    int callback_failures = 0;
    void add(std::string s) {
        const std::lock_guard lock(mutex);
        lines.push_back(std::move(s));
    }
    std::string all() {
        const std::lock_guard lock(mutex);
        std::string s;
        for (const auto& l : lines) s += l + "\n";
        return s;
    }
    trellis::client_settings settings() {
        trellis::client_settings s;
        s.on_sdam = [this](const trellis::sdam_event& e) { add(std::visit([](const auto& ev) { return serialise(ev); }, e)); };
        s.on_cmap = [this](const trellis::cmap_event& e) {
            add(std::visit([](const auto& ev) { return serialise(ev); }, e));
            // One handler failure, so that on_callback_failure has something to report.
            if (std::holds_alternative<trellis::connection_checked_out_event>(e) && callback_failures == 0)
                throw std::runtime_error("the test's CMAP handler refuses this event");
        };
        s.on_command = [this](const trellis::command_event& e) { add(std::visit([](const auto& ev) { return serialise(ev); }, e)); };
        s.on_callback_failure = [this](const trellis::callback_failure& f) {
            ++callback_failures;
            add("callback failure where=" + f.where + " what=" + f.what);
        };
        return s;
    }
};

// Each binary "payload" in d, at any depth.
void payloads_in(bson::document_view d, std::vector<std::string>& out) {
    for (const auto& e : d) {
        if (e.type() == bson::type::document) payloads_in(e.get_document(), out);
        else if (e.type() == bson::type::binary && e.key() == "payload") {
            const auto b = e.get_binary();
            out.emplace_back(reinterpret_cast<const char*>(b.bytes.data()), b.bytes.size());
        }
    }
}

}  // namespace

class SecretsTest : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    std::unique_ptr<trellis::sim::deployment> sim_;
    std::string everything_;  // all the captured text

    std::string uri(const std::string& pw, const std::string& options) const {
        return "mongodb://" + user + ":" + pw + "@" + sim_->members()[0] + "/?serverSelectionTimeoutMS=3000&" + options;
    }

    // The SASL payloads the simulator received so far, from its own log.
    std::vector<std::string> sasl_payloads() {
        trellis::client reader(uri(password, "authMechanism=SCRAM-SHA-256"));
        const auto reply = reader["admin"].run_command(bson::from_json(R"({"getLog": "global"})"));
        std::vector<std::string> found;
        for (const auto& line : reply["log"].get_array()) {
            const auto entry = bson::from_json(std::string(line.get_string()));
            const std::string msg(entry["msg"].get_string());
            const auto brace = msg.find('{');
            if (brace == std::string::npos || msg.find("payload") == std::string::npos) continue;
            payloads_in(bson::from_json(msg.substr(brace)).view(), found);
        }
        return found;
    }

    void run_client(capture& cap, const std::string& u) {
        trellis::client c(u, cap.settings());
        auto db = c["secrets"];
        cap.add("ping: " + bson::to_json(db.run_command(bson::from_json(R"({"ping": 1})")).view()));
        cap.add("insert: " + bson::to_json(db.run_command(bson::from_json(R"({"insert": "c", "documents": [{"a": 1}]})")).view()));
        cap.add("find: " + bson::to_json(db.run_command(bson::from_json(R"({"find": "c", "filter": {}})")).view()));
        try {
            db.run_command(bson::from_json(R"({"noSuchCommand": 1})"));
            cap.add("noSuchCommand succeeded");
        } catch (const std::exception& e) {
            cap.add(std::string("noSuchCommand: ") + e.what());
        }
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        trellis::sim::sim_config cfg;
        cfg.users.push_back({user, password, "admin"});
        cfg.verbose = true;  // logs every command received, payloads included: where the proofs come from
        sim_ = std::make_unique<trellis::sim::deployment>(cfg);
        sim_->start();
    }
    void cleanupTestCase() {
        if (sim_) sim_->stop();
    }

    void driver_events_and_errors() {
        capture cap;
        for (const char* mech : {"SCRAM-SHA-256", "SCRAM-SHA-1"}) {
            run_client(cap, uri(password, std::string("authMechanism=") + mech));
            capture bad;
            try {
                trellis::client c(uri(wrong_password, std::string("authMechanism=") + mech), bad.settings());
                c["secrets"].run_command(bson::from_json(R"({"ping": 1})"));
                QFAIL("the wrong password was accepted");
            } catch (const std::exception& e) {
                cap.add(std::string("wrong password: ") + e.what());
                QVERIFY2(std::string(e.what()).find("authentication failed") != std::string::npos, e.what());
            }
            cap.add(bad.all());  // the failing client's events too
        }
        {
            capture negotiated;  // no authMechanism: saslSupportedMechs and speculative authentication
            run_client(negotiated, uri(password, "appName=secrets"));
            cap.add(negotiated.all());
        }
        QVERIFY(cap.callback_failures >= 1);
        const std::string text = cap.all();
        // It did capture: the command events and a callback failure are there.
        QVERIFY(text.find("CommandStarted") != std::string::npos);
        QVERIFY(text.find("ServerHeartbeatSucceeded") != std::string::npos || text.find("ServerDescriptionChanged") != std::string::npos);
        QVERIFY(text.find("ConnectionCheckedOut") != std::string::npos);
        QVERIFY(text.find("callback failure") != std::string::npos);
        everything_ += text;
    }

    void cli_output() {
        const std::string good = uri(password, "authMechanism=SCRAM-SHA-256");
        const std::string good1 = uri(password, "authMechanism=SCRAM-SHA-1");
        const std::string bad = uri(wrong_password, "authMechanism=SCRAM-SHA-256");
        QTemporaryDir tmp;
        const QString toml = tmp.filePath("secret.toml");
        {
            QFile f(toml);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(("[client]\nuri = \"" + good + "\"\n[auth]\nusername = \"" + user + "\"\npassword = \"" + password +
                     "\"\n[tls]\ncertificate_key_file_password = \"" + password + "\"\n")
                        .c_str());
        }
        const QString broken = tmp.filePath("broken.toml");
        {
            QFile f(broken);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(("[auth]\npassword = \"" + password + "\" trailing\n").c_str());
        }
        const QString q = QString::fromStdString(good), q1 = QString::fromStdString(good1), b = QString::fromStdString(bad);
        const std::vector<QStringList> runs = {
            {"ping", q},
            {"hello", q1},
            {"run", q, "secrets", R"({"ping": 1})"},
            {"run", q, "secrets", R"({"noSuchCommand": 1})"},
            {"insert", q, "secrets.c", R"({"b": 2})"},
            {"find", q1, "secrets.c", "{}"},
            {"topology", q, "--json"},
            {"ping", b},
            {"topology", b},
            {"ping", q + "&noSuchOption=1"},
            {"ping", q.left(q.indexOf('@')) + "@"},
            {"config", "check", toml},
            {"config", "check", broken},
        };
        bool some_failure = false, masked = false;
        for (const auto& args : runs) {
            const auto r = trellis_test::run_cli(args);
            QVERIFY2(r.code >= 0, qPrintable(trellis_test::report(r)));  // neither hung nor crashed
            const std::string out = r.out.toStdString(), err = r.err.toStdString();
            if (r.code != 0) some_failure = true;
            if (out.find("***") != std::string::npos) masked = true;
            everything_ += "$ trellis " + args.join(' ').toStdString() + "\n" + out + err;
        }
        QVERIFY(some_failure);  // the wrong password and the broken file did fail
        QVERIFY(masked);        // config check shows the password as ***
        everything_ += "";
    }

    void nothing_secret_appears() {
        QVERIFY(!everything_.empty());
        if (const char* dump = std::getenv("TRELLIS_SECRETS_DUMP")) {  // to see what was captured
            QFile f(dump);
            if (f.open(QIODevice::WriteOnly)) f.write(everything_.c_str());
        }
        const auto payloads = sasl_payloads();
        // saslStart and saslContinue, for SHA-1 and SHA-256, from several clients and the CLI.
        QVERIFY2(payloads.size() >= 8, qPrintable(QString::number(payloads.size())));
        std::vector<std::string> proofs;
        for (const auto& p : payloads)
            if (const auto at = p.find(",p="); at != std::string::npos) proofs.push_back(p.substr(at + 3));
        QVERIFY2(proofs.size() >= 4, qPrintable(QString::number(proofs.size())));
        // The CLI's URIs put the password in its arguments, which everything_ quotes: leave those lines out.
        std::string seen;
        std::istringstream lines(everything_);
        for (std::string line; std::getline(lines, line);)
            if (!line.starts_with("$ trellis ")) seen += line + "\n";
        auto absent = [&](const std::string& secret, const char* what) {
            const auto at = seen.find(secret);
            const std::string around = at == std::string::npos ? "" : seen.substr(at > 200 ? at - 200 : 0, 400);
            QVERIFY2(at == std::string::npos, qPrintable(QString("%1 \"%2\" appears in: %3")
                                                             .arg(what, QString::fromStdString(secret), QString::fromStdString(around))));
        };
        absent(password, "the password");
        absent(wrong_password, "the wrong password");
        for (const auto& p : proofs) absent(p, "a SCRAM client proof");
        for (const auto& p : payloads) {
            absent(base64(p), "a SASL payload's base64");
            absent(p, "a SASL payload");
        }
        // And the check can see them: the sim's own log holds them (getLog), so a leak would show.
        QVERIFY(std::string(payloads.front()).find("n=" + user) != std::string::npos ||
                std::string(payloads.back()).find("r=") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(SecretsTest)
#include "secrets_test.moc"
