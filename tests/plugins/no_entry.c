/* A shared object that is not an mcpgate plugin: it exports a function, but not
 * mcpgate_plugin_entry. The gateway must refuse it with "has no mcpgate_plugin_entry". */
__attribute__((visibility("default"))) int not_the_plugin_entry(void);

int not_the_plugin_entry(void) { return 42; }
