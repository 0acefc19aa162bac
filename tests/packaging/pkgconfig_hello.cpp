// Compiled and linked with nothing but `pkg-config --cflags --libs trellis` from an installed
// prefix: a document built, printed as Extended JSON and parsed back.
#include <iostream>

#include <trellis/bson/builder.hpp>
#include <trellis/bson/json.hpp>
#include <trellis/uri.hpp>

int main() {
    using namespace trellis::bson;
    const document d = make_document(kvp("hello", "pkg-config"), kvp("n", 3));
    const std::string json = to_json(d.view(), json_mode::relaxed);
    const document back = from_json(json);
    const auto uri = trellis::parse_uri("mongodb://a:1,b:2/?replicaSet=rs0");
    std::cout << json << " hosts=" << uri.options.hosts.size() << '\n';
    return back["n"].as_int64() == 3 ? 0 : 1;
}
