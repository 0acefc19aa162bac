// The unified runner's own checks, written in the unified test format (not specification
// data): every test of the first document (and of selftest_csfle.hpp's) must pass, every test of
// the second must be reported failing (trellis-spec unified --expect-failure). Each runs against
// in-process trellis-sim.
#include <QtTest/QtTest>

#include <QProcess>
#include <QProcessEnvironment>
#include <QTemporaryDir>

#include <string>

#ifndef Q_MOC_RUN  // moc cannot parse the raw string in it
#include "selftest_csfle.hpp"
#endif
#include "trellis/bson/builder.hpp"
#include "trellis/bson/json.hpp"
#include "trellis/client.hpp"
#include "trellis/client_encryption.hpp"
#include "trellis/sim/deployment.hpp"

namespace {

constexpr const char* must_pass = R"json({
 "description": "the runner must pass each of these tests (its own checks, not spec data)",
 "schemaVersion": "1.13",
 "createEntities": [
  {
   "client": {
    "id": "client0",
    "useMultipleMongoses": false,
    "observeEvents": [
     "commandStartedEvent",
     "commandSucceededEvent",
     "connectionCheckedOutEvent"
    ]
   }
  },
  {
   "database": {
    "id": "database0",
    "client": "client0",
    "databaseName": "selftest"
   }
  },
  {
   "collection": {
    "id": "collection0",
    "database": "database0",
    "collectionName": "coll"
   }
  }
 ],
 "initialData": [
  {
   "collectionName": "coll",
   "databaseName": "selftest",
   "documents": [
    {
     "_id": 1,
     "x": 11,
     "d": {
      "a": 1.0
     }
    }
   ]
  }
 ],
 "tests": [
  {
   "description": "sessions: the session's lsid; refused when of another client or ended",
   "operations": [
    {"name": "createEntities", "object": "testRunner", "arguments": {"entities": [
     {"client": {"id": "client1"}},
     {"session": {"id": "session0", "client": "client0"}},
     {"session": {"id": "session1", "client": "client1"}}]}},
    {"name": "insertOne", "object": "collection0", "arguments": {"session": "session0", "document": {"_id": 2}}},
    {"name": "assertSessionNotDirty", "object": "testRunner", "arguments": {"session": "session0"}},
    {"name": "find", "object": "collection0", "arguments": {"session": "session1", "filter": {}},
     "expectError": {"isClientError": true, "errorContains": "different client"}},
    {"name": "endSession", "object": "session0"},
    {"name": "find", "object": "collection0", "arguments": {"session": "session0", "filter": {}},
     "expectError": {"isClientError": true, "errorContains": "has ended"}}
   ],
   "expectEvents": [{"client": "client0", "events": [
    {"commandStartedEvent": {"command": {"insert": "coll", "lsid": {"$$sessionLsid": "session0"}}}},
    {"commandSucceededEvent": {"commandName": "insert"}}]}]
  },
  {
   "description": "matching: flexible numerics, operators, root-level extra fields",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {},
      "sort": {
       "_id": 1
      }
     },
     "expectResult": [
      {
       "_id": {
        "$numberLong": "1"
       },
       "x": {
        "$$type": [
         "int",
         "long"
        ]
       },
       "d": {
        "a": {
         "$$lte": 1
        }
       },
       "nope": {
        "$$exists": false
       }
      }
     ]
    },
    {
     "name": "insertOne",
     "object": "collection0",
     "arguments": {
      "document": {
       "_id": 2,
       "x": 22.0
      }
     },
     "expectResult": {
      "$$unsetOrMatches": {
       "insertedId": {
        "$$unsetOrMatches": 2
       }
      }
     }
    },
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {
       "_id": 2
      }
     },
     "expectResult": [
      {
       "_id": 2,
       "x": 22
      }
     ],
     "saveResultAsEntity": "found"
    },
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {
       "_id": 2
      }
     },
     "expectResult": {
      "$$matchesEntity": "found"
     }
    }
   ],
   "expectEvents": [
    {
     "client": "client0",
     "ignoreExtraEvents": true,
     "events": [
      {
       "commandStartedEvent": {
        "commandName": "find",
        "databaseName": "selftest",
        "command": {
         "find": "coll",
         "filter": {},
         "sort": {
          "_id": 1
         }
        }
       }
      },
      {
       "commandSucceededEvent": {
        "commandName": "find",
        "reply": {
         "ok": 1,
         "cursor": {
          "id": {
           "$$type": [
            "int",
            "long"
           ]
          },
          "ns": "selftest.coll",
          "firstBatch": {
           "$$type": "array"
          }
         }
        }
       }
      }
     ]
    }
   ],
   "outcome": [
    {
     "collectionName": "coll",
     "databaseName": "selftest",
     "documents": [
      {
       "_id": 1,
       "x": 11,
       "d": {
        "a": 1
       }
      },
      {
       "_id": 2,
       "x": 22
      }
     ]
    }
   ]
  },
  {
   "description": "an alwaysOn fail point is set and fires",
   "runOnRequirements": [
    {
     "topologies": [
      "replicaset"
     ]
    }
   ],
   "operations": [
    {
     "name": "failPoint",
     "object": "testRunner",
     "arguments": {
      "client": "client0",
      "failPoint": {
       "configureFailPoint": "failCommand",
       "mode": "alwaysOn",
       "data": {
        "failCommands": [
         "delete"
        ],
        "errorCode": 8
       }
      }
     }
    },
    {
     "name": "deleteMany",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectError": {
      "errorCode": 8,
      "isClientError": false
     }
    },
    {
     "name": "assertNumberConnectionsCheckedOut",
     "object": "testRunner",
     "arguments": {
      "client": "client0",
      "connections": 0
     }
    }
   ]
  },
  {
   "description": "the fail point of the previous test was turned off",
   "runOnRequirements": [
    {
     "topologies": [
      "replicaset"
     ]
    }
   ],
   "operations": [
    {
     "name": "deleteMany",
     "object": "collection0",
     "arguments": {
      "filter": {
       "_id": 1
      }
     },
     "expectResult": {
      "deletedCount": 1
     }
    }
   ],
   "outcome": [
    {
     "collectionName": "coll",
     "databaseName": "selftest",
     "documents": []
    }
   ]
  },
  {
   "description": "a sharded deployment, through one mongos",
   "runOnRequirements": [
    {
     "topologies": [
      "sharded"
     ]
    }
   ],
   "operations": [
    {
     "name": "runCommand",
     "object": "database0",
     "arguments": {
      "commandName": "ping",
      "command": {
       "ping": 1
      }
     },
     "expectResult": {
      "ok": 1
     }
    },
    {
     "name": "assertCollectionExists",
     "object": "testRunner",
     "arguments": {
      "databaseName": "selftest",
      "collectionName": "coll"
     }
    },
    {
     "name": "assertCollectionNotExists",
     "object": "testRunner",
     "arguments": {
      "databaseName": "selftest",
      "collectionName": "nope"
     }
    }
   ]
  },
  {
   "description": "dropDatabase (a Trellis name, database::drop) removes the collections",
   "operations": [
    {
     "name": "assertCollectionExists",
     "object": "testRunner",
     "arguments": {
      "databaseName": "selftest",
      "collectionName": "coll"
     }
    },
    {
     "name": "dropDatabase",
     "object": "database0"
    },
    {
     "name": "assertCollectionNotExists",
     "object": "testRunner",
     "arguments": {
      "databaseName": "selftest",
      "collectionName": "coll"
     }
    },
    {
     "name": "listDatabaseNames",
     "object": "client0",
     "expectResult": {
      "$$type": "array"
     }
    }
   ]
  }
 ]
})json";

constexpr const char* must_fail = R"json({
 "description": "the runner must report each of these tests failing",
 "schemaVersion": "1.0",
 "createEntities": [
  {
   "client": {
    "id": "client0",
    "observeEvents": [
     "commandStartedEvent"
    ]
   }
  },
  {
   "database": {
    "id": "database0",
    "client": "client0",
    "databaseName": "adhoc"
   }
  },
  {
   "collection": {
    "id": "collection0",
    "database": "database0",
    "collectionName": "coll"
   }
  }
 ],
 "initialData": [
  {
   "collectionName": "coll",
   "databaseName": "adhoc",
   "documents": [
    {
     "_id": 1,
     "x": {
      "a": 1,
      "b": 2
     },
     "y": [
      1,
      2
     ],
     "z": 1.5
    }
   ]
  }
 ],
 "tests": [
  {
   "description": "an lsid that is not the session's",
   "operations": [
    {"name": "createEntities", "object": "testRunner", "arguments": {"entities": [
     {"session": {"id": "session0", "client": "client0"}}]}},
    {"name": "insertOne", "object": "collection0", "arguments": {"document": {"_id": 5}}}
   ],
   "expectEvents": [{"client": "client0", "events": [
    {"commandStartedEvent": {"command": {"insert": "coll", "lsid": {"$$sessionLsid": "session0"}}}}]}]
  },
  {
   "description": "nested extra key",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectResult": [
      {
       "_id": 1,
       "x": {
        "a": 1
       }
      }
     ]
    }
   ]
  },
  {
   "description": "array length",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectResult": [
      {
       "_id": 1,
       "y": [
        1
       ]
      }
     ]
    }
   ]
  },
  {
   "description": "exists false",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectResult": [
      {
       "_id": 1,
       "z": {
        "$$exists": false
       }
      }
     ]
    }
   ]
  },
  {
   "description": "1 is not 1.5",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectResult": [
      {
       "_id": 1,
       "z": 1
      }
     ]
    }
   ]
  },
  {
   "description": "type mismatch",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectResult": [
      {
       "_id": {
        "$$type": "string"
       }
      }
     ]
    }
   ]
  },
  {
   "description": "lte",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectResult": [
      {
       "_id": 1,
       "z": {
        "$$lte": 1
       }
      }
     ]
    }
   ]
  },
  {
   "description": "result count",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectResult": []
    }
   ]
  },
  {
   "description": "events count",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     }
    }
   ],
   "expectEvents": [
    {
     "client": "client0",
     "events": []
    }
   ]
  },
  {
   "description": "event content",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     }
    }
   ],
   "expectEvents": [
    {
     "client": "client0",
     "events": [
      {
       "commandStartedEvent": {
        "command": {
         "find": "other"
        }
       }
      }
     ]
    }
   ]
  },
  {
   "description": "outcome",
   "operations": [],
   "outcome": [
    {
     "collectionName": "coll",
     "databaseName": "adhoc",
     "documents": [
      {
       "_id": 1,
       "x": {
        "a": 1,
        "b": 2
       },
       "y": [
        1,
        2
       ]
      }
     ]
    }
   ]
  },
  {
   "description": "expected error missing",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectError": {
      "isError": true
     }
    }
   ]
  },
  {
   "description": "error code",
   "operations": [
    {
     "name": "insertOne",
     "object": "collection0",
     "arguments": {
      "document": {
       "_id": 1
      }
     },
     "expectError": {
      "errorCode": 11001
     }
    }
   ]
  },
  {
   "description": "client vs server error",
   "operations": [
    {
     "name": "insertOne",
     "object": "collection0",
     "arguments": {
      "document": {
       "_id": 1
      }
     },
     "expectError": {
      "isClientError": true
     }
    }
   ]
  },
  {
   "description": "unexpected error",
   "operations": [
    {
     "name": "insertOne",
     "object": "collection0",
     "arguments": {
      "document": {
       "_id": 1
      }
     }
    }
   ]
  },
  {
   "description": "undefined entity in matchesEntity",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectResult": [
      {
       "_id": {
        "$$matchesEntity": "nope"
       }
      }
     ]
    }
   ]
  },
  {
   "description": "unknown operator",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {}
     },
     "expectResult": [
      {
       "_id": {
        "$$nope": 1
       }
      }
     ]
    }
   ]
  },
  {
   "description": "unknown argument",
   "operations": [
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {},
      "bogus": 1
     }
    }
   ]
  },
  {
   "description": "saved entity mismatch",
   "operations": [
    {
     "name": "insertOne",
     "object": "collection0",
     "arguments": {
      "document": {
       "_id": 5
      }
     },
     "saveResultAsEntity": "r"
    },
    {
     "name": "find",
     "object": "collection0",
     "arguments": {
      "filter": {
       "_id": 5
      }
     },
     "expectResult": [
      {
       "_id": {
        "$$matchesEntity": "r"
       }
      }
     ]
    }
   ]
  }
 ]
})json";

}  // namespace

class UnifiedSelftest : public QObject {
    Q_OBJECT

    void run(const char* document, QStringList flags, int expected_passed,
             const QProcessEnvironment& env = QProcessEnvironment::systemEnvironment()) {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QFile f(dir.filePath("selftest.json"));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(document);
        f.close();
        QProcess p;
        p.setProcessEnvironment(env);
        p.setProcessChannelMode(QProcess::MergedChannels);
        p.start(QStringLiteral(TRELLIS_SPEC_PATH), QStringList{"unified"} + flags + QStringList{f.fileName()});
        QVERIFY(p.waitForFinished(60000));
        const QString out = QString::fromUtf8(p.readAll());
        QVERIFY2(p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0, qPrintable(out));
        QVERIFY2(out.contains(QStringLiteral("%1 passed, 0 failed").arg(expected_passed)), qPrintable(out));
    }

private slots:
    void every_check_passes() { run(must_pass, {}, 6); }
    void every_mismatch_is_caught() { run(must_fail, {"--expect-failure"}, 19); }
    // clientEncryption (local KMS, its key a $$placeholder the runner takes from the
    // environment): the key vault starts with a data key made here under that master key.
    void client_encryption_operations() {
        QByteArray master(96, 0);
        for (int i = 0; i < master.size(); ++i) master[i] = static_cast<char>(i * 37 + 11);
        trellis::sim::deployment d(trellis::sim::sim_config{});
        d.start();
        trellis::client c(d.uri());
        trellis::bson::builder providers;
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(master.constData());
        providers.open_document("local")
            .append("key", trellis::bson::binary{trellis::bson::binary_subtype::generic,
                                                 std::span<const std::uint8_t>(bytes, static_cast<std::size_t>(master.size()))})
            .close_document();
        trellis::client_encryption_options o;
        o.key_vault_client = &c;
        o.key_vault_namespace = "keyvault.datakeys";
        o.kms_providers = providers.extract();
        trellis::client_encryption ce(std::move(o));
        const auto id = ce.create_data_key("local");
        const auto key = ce.get_key(id);
        QVERIFY(key.has_value());
        std::string document = selftest::csfle_template;
        const auto replace_all = [&](const std::string& token, const std::string& with) {
            for (auto at = document.find(token); at != std::string::npos; at = document.find(token, at + with.size()))
                document.replace(at, token.size(), with);
        };
        replace_all("@KEY_DOCUMENT@", trellis::bson::to_json(*key, trellis::bson::json_mode::canonical));
        replace_all("@KEY_ID@", QByteArray(reinterpret_cast<const char*>(id.bytes.data()), 16).toBase64().toStdString());
        auto env = QProcessEnvironment::systemEnvironment();
        env.insert(QStringLiteral("TRELLIS_TEST_KMS_LOCAL_KEY"), QString::fromLatin1(master.toBase64()));
        run(document.c_str(), {}, 1, env);
    }
};

QTEST_GUILESS_MAIN(UnifiedSelftest)
#include "unified_selftest.moc"
