// Suite uri-options (uri-options/tests): the URI options spec's tests share the connection
// string format, so they run through the same checks (connection_string.cpp).
#include "runner.hpp"

namespace trellis::spec {

// Defined in connection_string.cpp.
void run_connection_string_format(std::string_view file, const boost::json::value& test, reporter& out);

extern const suite uri_options_suite;
const suite uri_options_suite{"uri-options", "URI options: values, warnings and forbidden combinations",
                              &run_connection_string_format};

}  // namespace trellis::spec
