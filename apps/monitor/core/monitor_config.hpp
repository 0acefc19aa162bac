// A TOML file for the monitor: the client's file (docs/configuration.md) plus a [monitor]
// table, which the client's reader does not know and never sees:
//
//   [monitor]
//   alert_no_primary_s = 5         # alert: no primary for longer than 5 s
//   alert_rtt_p99_ms = 50          # alert: a member's RTT p99 above 50 ms
//   alert_failed_heartbeats = 3    # alert: 3 failed heartbeats in a row
//   canary_writes = false          # w:majority canary writes (off by default)
//   canary_interval_ms = 1000
//   rtt_window = 200               # raw samples kept per member for the percentiles
#pragma once

#include <QString>

#include <filesystem>
#include <string_view>

#include "alerts.hpp"
#include "trellis/config.hpp"

namespace trellis::monitor {

struct monitor_settings {
    alert_rules alerts;
    bool canary_writes = false;
    int canary_interval_ms = 1000;
    int rtt_window = 200;
};

struct monitor_file {
    trellis::config client;
    monitor_settings monitor;
};

/// Parses the text: [monitor] here, the rest by trellis::parse_config. Throws config_error
/// (trellis::error) with the file name for either part.
monitor_file parse_monitor_config(std::string_view toml_text, std::string_view source_name,
                                  const std::filesystem::path& base_directory = {});
monitor_file load_monitor_config(const std::filesystem::path& file);

}  // namespace trellis::monitor
