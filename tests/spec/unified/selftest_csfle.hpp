// The unified runner's own check of the clientEncryption entity and its operations (not spec
// data), for unified_selftest. Its key vault starts with one data key the test makes at run time
// (@KEY_DOCUMENT@, _id @KEY_ID@ in base64) under the local master key it gives the runner for the
// $$placeholder (TRELLIS_TEST_KMS_LOCAL_KEY). A header of its own, hidden from moc: moc does not
// parse unified_selftest.cpp with a third raw string in it.
#pragma once

namespace selftest {

inline constexpr const char* csfle_template = R"json({
 "description": "the runner's clientEncryption entity and operations (its own checks, not spec data)",
 "schemaVersion": "1.8",
 "runOnRequirements": [
  {
   "csfle": true
  }
 ],
 "createEntities": [
  {
   "client": {
    "id": "client0"
   }
  },
  {
   "clientEncryption": {
    "id": "ce0",
    "clientEncryptionOpts": {
     "keyVaultClient": "client0",
     "keyVaultNamespace": "keyvault.datakeys",
     "kmsProviders": {
      "local": {
       "key": {
        "$$placeholder": 1
       }
      }
     }
    }
   }
  },
  {
   "database": {
    "id": "db0",
    "client": "client0",
    "databaseName": "keyvault"
   }
  },
  {
   "collection": {
    "id": "coll0",
    "database": "db0",
    "collectionName": "datakeys"
   }
  }
 ],
 "initialData": [
  {
   "databaseName": "keyvault",
   "collectionName": "datakeys",
   "documents": [
    @KEY_DOCUMENT@
   ]
  }
 ],
 "tests": [
  {
   "description": "createDataKey, encrypt, a missing key, key alt names, getKey(s), rewrap, deleteKey",
   "operations": [
    {
     "name": "createDataKey",
     "object": "ce0",
     "arguments": {
      "kmsProvider": "local",
      "opts": {
       "keyAltNames": [
        "abc"
       ]
      }
     },
     "expectResult": {
      "$$type": "binData"
     },
     "saveResultAsEntity": "key0"
    },
    {
     "name": "encrypt",
     "object": "ce0",
     "arguments": {
      "value": "hello",
      "opts": {
       "keyAltName": "abc",
       "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
      }
     },
     "expectResult": {
      "$$type": "binData"
     },
     "saveResultAsEntity": "ct"
    },
    {
     "name": "encrypt",
     "object": "ce0",
     "arguments": {
      "value": "hello",
      "opts": {
       "keyId": {
        "$binary": {
         "base64": "AAAjYWxrZXlsb2NhbGtleQ==",
         "subType": "04"
        }
       },
       "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Random"
      }
     },
     "expectError": {
      "isError": true
     }
    },
    {
     "name": "getKeyByAltName",
     "object": "ce0",
     "arguments": {
      "keyAltName": "abc"
     },
     "expectResult": {
      "keyAltNames": [
       "abc"
      ]
     }
    },
    {
     "name": "getKeys",
     "object": "ce0",
     "expectResult": [
      {
       "_id": {
        "$binary": {
         "base64": "@KEY_ID@",
         "subType": "04"
        }
       }
      },
      {
       "keyAltNames": [
        "abc"
       ]
      }
     ]
    },
    {
     "name": "encrypt",
     "object": "ce0",
     "arguments": {
      "value": {
       "$numberInt": "7"
      },
      "opts": {
       "keyId": {
        "$binary": {
         "base64": "@KEY_ID@",
         "subType": "04"
        }
       },
       "algorithm": "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic"
      }
     },
     "expectResult": {
      "$$type": "binData"
     }
    },
    {
     "name": "addKeyAltName",
     "object": "ce0",
     "arguments": {
      "id": {
       "$binary": {
        "base64": "@KEY_ID@",
        "subType": "04"
       }
      },
      "keyAltName": "x"
     },
     "expectResult": {
      "_id": {
       "$binary": {
        "base64": "@KEY_ID@",
        "subType": "04"
       }
      },
      "keyAltNames": {
       "$$exists": false
      }
     }
    },
    {
     "name": "addKeyAltName",
     "object": "ce0",
     "arguments": {
      "id": {
       "$binary": {
        "base64": "@KEY_ID@",
        "subType": "04"
       }
      },
      "keyAltName": "y"
     },
     "expectResult": {
      "keyAltNames": [
       "x"
      ]
     }
    },
    {
     "name": "removeKeyAltName",
     "object": "ce0",
     "arguments": {
      "id": {
       "$binary": {
        "base64": "@KEY_ID@",
        "subType": "04"
       }
      },
      "keyAltName": "x"
     },
     "expectResult": {
      "keyAltNames": [
       "x",
       "y"
      ]
     }
    },
    {
     "name": "removeKeyAltName",
     "object": "ce0",
     "arguments": {
      "id": {
       "$binary": {
        "base64": "@KEY_ID@",
        "subType": "04"
       }
      },
      "keyAltName": "y"
     },
     "expectResult": {
      "keyAltNames": [
       "y"
      ]
     }
    },
    {
     "name": "getKey",
     "object": "ce0",
     "arguments": {
      "id": {
       "$binary": {
        "base64": "@KEY_ID@",
        "subType": "04"
       }
      }
     },
     "expectResult": {
      "_id": {
       "$binary": {
        "base64": "@KEY_ID@",
        "subType": "04"
       }
      },
      "keyAltNames": {
       "$$exists": false
      }
     }
    },
    {
     "name": "rewrapManyDataKey",
     "object": "ce0",
     "arguments": {
      "filter": {},
      "opts": {
       "provider": "local"
      }
     },
     "expectResult": {
      "bulkWriteResult": {
       "insertedCount": 0,
       "matchedCount": 2,
       "modifiedCount": 2,
       "deletedCount": 0,
       "upsertedCount": 0,
       "upsertedIds": {},
       "insertedIds": {}
      }
     }
    },
    {
     "name": "rewrapManyDataKey",
     "object": "ce0",
     "arguments": {
      "filter": {
       "keyAltNames": "zzz"
      }
     },
     "expectResult": {
      "bulkWriteResult": {
       "$$exists": false
      }
     }
    },
    {
     "name": "find",
     "object": "coll0",
     "arguments": {
      "filter": {},
      "projection": {
       "_id": 0,
       "keyAltNames": 1
      }
     },
     "expectResult": [
      {},
      {
       "keyAltNames": [
        "abc"
       ]
      }
     ]
    },
    {
     "name": "deleteKey",
     "object": "ce0",
     "arguments": {
      "id": {
       "$binary": {
        "base64": "@KEY_ID@",
        "subType": "04"
       }
      }
     },
     "expectResult": {
      "deletedCount": 1
     }
    },
    {
     "name": "getKey",
     "object": "ce0",
     "arguments": {
      "id": {
       "$binary": {
        "base64": "@KEY_ID@",
        "subType": "04"
       }
      }
     },
     "expectResult": null
    }
   ]
  }
 ]
})json";

}  // namespace selftest
