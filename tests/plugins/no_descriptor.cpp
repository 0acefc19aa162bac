// Test "plugin": a shared library without a Trellis descriptor.
extern "C" __attribute__((visibility("default"))) int not_a_trellis_plugin() { return 42; }
