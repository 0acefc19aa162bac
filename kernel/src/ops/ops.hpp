// The operation layer: one value type per operation, each in its own file here. Each builds its
// command from the selected connection's description (limits, wire version) and parses the reply
// into a typed result or a typed error. Pure: no I/O, tested without a network
// (tests/unit/ops_test.cpp). The client's execute() does the rest (selection, sessions, retries,
// SDAM feedback).
#pragma once

#include "ops/aggregate.hpp"
#include "ops/common.hpp"
#include "ops/count.hpp"
#include "ops/cursor_command.hpp"
#include "ops/delete.hpp"
#include "ops/distinct.hpp"
#include "ops/find.hpp"
#include "ops/indexes.hpp"
#include "ops/update.hpp"
