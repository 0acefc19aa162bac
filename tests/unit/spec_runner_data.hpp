#pragma once

#include <QByteArray>

namespace {

// One good case, one whose Extended JSON is deliberately wrong, one decode error
// that is in fact valid BSON (so the runner must report it failed), one good parse error.
inline const QByteArray mixed = R"json({
  "description": "runner self-test", "bson_type": "0x10", "test_key": "i",
  "valid": [
    {"description": "good", "canonical_bson": "0C0000001069000100000000",
     "canonical_extjson": "{\"i\": {\"$numberInt\": \"1\"}}", "relaxed_extjson": "{\"i\": 1}"},
    {"description": "wrong json", "canonical_bson": "0C0000001069000100000000",
     "canonical_extjson": "{\"i\": {\"$numberInt\": \"2\"}}"}
  ],
  "decodeErrors": [{"description": "not an error", "bson": "0C0000001069000100000000"}],
  "parseErrors": [{"description": "bad int", "string": "{\"i\": {\"$numberInt\": 1}}"}]
})json";

}  // namespace
