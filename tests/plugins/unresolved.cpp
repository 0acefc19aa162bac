// Test "plugin": a shared library that needs a symbol nothing defines, so dlopen (RTLD_NOW)
// fails with the loader's "undefined symbol" error.
extern "C" int trellis_test_symbol_nobody_defines();
extern "C" __attribute__((visibility("default"))) int uses_a_missing_symbol() { return trellis_test_symbol_nobody_defines(); }
